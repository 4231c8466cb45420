// Package spool is the agent's on-disk, append-only, fsync'd outbox of defect
// events.
//
// An event is appended to the spool before it is published (to MQTT) and
// acknowledged once it is safe elsewhere: in broker mode when the broker has
// confirmed it (Ack on its PUBACK); in stored mode when the consumer of
// record's stored watermark covers it (AckThrough), the PUBACK only marking
// it sent (MarkSent, in memory). After a reconnect or a process restart,
// including kill -9 or a power loss, every record that was not acknowledged
// is replayed, in order: in stored mode, records sent but not stored too.
//
// # Guarantees
//
//   - Durable on return: when Append returns a nil error the record has been
//     written and fsync'd (and, for a new segment file, so has the directory).
//     Concurrent Appends share fsyncs (group commit). A record becomes visible
//     to Read only once it is durable; a record whose write failed is never
//     visible (a partial write is truncated away, or left behind as a torn
//     tail that the next Open removes).
//   - Order: sequence numbers are strictly increasing and never reused, also
//     across restarts (gaps are possible: dropped, damaged or failed records).
//     Read returns pending records in sequence order.
//   - At least once: acknowledgements are kept in memory and persisted lazily
//     as the highest contiguous acknowledged sequence number (file "acked",
//     rewritten by atomic rename at most every ~100 ms and on Close, without
//     fsync). After a crash, records acknowledged shortly before it, and
//     records acknowledged out of order beyond the first pending one, are
//     replayed again. Sent marks (MarkSent) are not persisted: after a
//     restart a record sent but not acknowledged is pending and unsent. If Append returns an error after the record was written
//     (a failed fsync), the record may still be replayed. Consumers must
//     deduplicate by event id.
//
// # What is dropped, and when
//
// The spool is bounded by Options.MaxBytes. When an Append would take the
// segment files beyond it, the oldest whole segment files are deleted,
// acknowledged or not, until the new record fits (the active segment is never
// deleted, so the bound can be exceeded by at most one record). The
// unacknowledged records lost that way are counted in Stats.Dropped and
// logged with level Warn. That holds for records sent but not stored too: the
// bound is the same in both modes. Missing tells which seqs above a
// watermark the spool will never return, and why (for a MissingDoc).
//
// Damage found by Open never stops it: a torn tail of the last segment (a
// short record, or a bad record at its end, as left by a crash in the middle
// of a write) is truncated; a damaged record elsewhere is logged with level
// Error and the rest of its segment is skipped. A record that cannot be read
// back later (I/O error, checksum mismatch) is logged and left out of Read; it
// stays pending until it is acknowledged or dropped.
//
// # On-disk format
//
// The directory holds segment files named "%020d.seg" after the first
// sequence number they were created for (so lexical order is sequence order),
// and the file "acked" (the decimal highest contiguous acknowledged sequence
// number and a newline; in stored mode, the stored watermark as far as the
// spool held the records it covers). A segment is a sequence of records, each:
//
//	length  uint32, little endian: payload length (at most 1 MiB)
//	crc     uint32, little endian: CRC-32C (Castagnoli) of seq and payload
//	seq     uint64, little endian
//	payload length bytes
//
// A new segment starts when the active one would exceed
// Options.SegmentBytes. A segment whose records are all acknowledged is
// deleted unless it is the active (newest) one; the newest segment is never
// deleted, so its name keeps sequence numbers from going backwards.
//
// One process at a time may use a directory; the spool takes no lock.
package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	// maxPayload is the largest payload Append accepts.
	maxPayload = 1 << 20
	headerSize = 16
	// maxSeq bounds sequence numbers read from disk, so that a damaged file
	// cannot exhaust the sequence space.
	maxSeq = 1 << 62

	defaultMaxBytes     = 256 << 20
	defaultSegmentBytes = 4 << 20

	segSuffix   = ".seg"
	segNameLen  = 20 + len(segSuffix)
	ackedName   = "acked"
	ackedTmp    = "acked.tmp"
	ackInterval = 100 * time.Millisecond
	filePerm    = 0o640
	dirPerm     = 0o750
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Options configures a Spool. The zero value gives the defaults.
type Options struct {
	// MaxBytes bounds the spool on disk (default 256 MiB). When an append would
	// exceed it, the oldest whole segments are deleted, acknowledged or not, and
	// their unacknowledged records counted in Stats.Dropped (and logged with Warn).
	MaxBytes int64
	// SegmentBytes is the size at which a new segment file starts (default
	// 4 MiB; clamped so that MaxBytes >= 2*SegmentBytes).
	SegmentBytes int64
	Logger       *slog.Logger // default slog.Default()
}

// Stats is a snapshot of a Spool's state.
type Stats struct {
	Pending   int    // records appended and not yet acknowledged (nor dropped)
	Bytes     int64  // bytes on disk in segment files
	Segments  int    // segment files
	Appended  uint64 // since Open
	Acked     uint64 // since Open
	Dropped   uint64 // unacknowledged records deleted by the drop-oldest policy since Open
	OldestSeq uint64 // seq of the oldest pending record, 0 if none
	NextSeq   uint64 // seq the next Append will get
	// Sent counts the pending records marked sent (MarkSent): delivered to
	// the broker, kept until a stored watermark (AckThrough) covers them.
	Sent int
	// Stored is the highest watermark given to AckThrough since Open (0:
	// none).
	Stored uint64
}

// entry indexes one record of a segment.
type entry struct {
	seq   uint64
	off   int64  // offset of the record header in the segment file
	n     uint32 // payload length
	acked bool
	sent  bool // published and acknowledged by the broker (MarkSent), not yet acked
}

type segment struct {
	base    uint64 // from the file name
	path    string
	f       *os.File
	size    int64
	ents    []entry // in seq order
	first   int     // ents[:first] are all acknowledged
	pending int
}

// lastSeq is the highest seq the segment holds; math.MaxUint64 for an empty
// one (only the active segment can be empty), which keeps the segments
// sorted by it.
func (g *segment) lastSeq() uint64 {
	if len(g.ents) == 0 {
		return math.MaxUint64
	}
	return g.ents[len(g.ents)-1].seq
}

// Spool is an on-disk outbox. All methods are safe for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64
	segBytes int64
	log      *slog.Logger
	notify   chan struct{}

	// syncMu serializes fsyncs of the active segment (group commit). Lock
	// order: syncMu before mu.
	syncMu sync.Mutex

	mu         sync.Mutex
	closed     bool
	segs       []*segment // in seq order; the last one is active
	active     *segment
	next       uint64 // seq of the next Append
	durable    uint64 // every seq <= durable that was written is fsync'd
	rotateNext bool   // the active segment must not be appended to
	bytes      int64
	pending    int
	appended   uint64
	acked      uint64
	dropped    uint64
	sent       int    // pending records marked sent
	stored     uint64 // highest AckThrough watermark since Open
	gone       uint64 // highest seq acknowledged or dropped since Open
	wbuf       []byte
	flushArmed bool
	timer      *time.Timer

	ackMu      sync.Mutex // serializes writes of the acked file
	ackWritten uint64
	ackStopped bool
}

// Open opens the spool in dir, creating the directory if needed, and
// recovers its state: records are validated, a torn tail is truncated, and
// records up to the persisted acknowledgement cursor are not replayed.
func Open(dir string, o Options) (*Spool, error) {
	if o.MaxBytes <= 0 {
		o.MaxBytes = defaultMaxBytes
	}
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = defaultSegmentBytes
	}
	if o.SegmentBytes > o.MaxBytes/2 {
		o.SegmentBytes = o.MaxBytes / 2
	}
	if o.SegmentBytes < 1 {
		o.SegmentBytes = 1
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Spool{
		dir:      dir,
		maxBytes: o.MaxBytes,
		segBytes: o.SegmentBytes,
		log:      o.Logger.With("spool", dir),
		notify:   make(chan struct{}, 1),
	}
	if err := os.MkdirAll(dir, dirPerm); err != nil {
		return nil, fmt.Errorf("spool %s: create directory: %w", dir, err)
	}
	if err := s.recover(); err != nil {
		for _, g := range s.segs {
			_ = g.f.Close()
		}
		return nil, err
	}
	if s.pending > 0 {
		s.signal()
	}
	return s, nil
}

// recover scans the directory and builds the index.
func (s *Spool) recover() error {
	cursor := s.readAcked()
	s.ackWritten = cursor
	s.next = 1
	if cursor >= s.next {
		s.next = cursor + 1
	}

	des, err := os.ReadDir(s.dir)
	if err != nil {
		return fmt.Errorf("spool %s: read directory: %w", s.dir, err)
	}
	var segs []*segment
	for _, de := range des {
		name := de.Name()
		if name == ackedTmp {
			_ = os.Remove(filepath.Join(s.dir, name))
			continue
		}
		base, ok := parseSegName(name)
		if !ok || !de.Type().IsRegular() {
			continue
		}
		if base == 0 || base > maxSeq {
			s.log.Error("spool: ignoring segment with an invalid name", "file", name)
			continue
		}
		segs = append(segs, &segment{base: base, path: filepath.Join(s.dir, name)})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].base < segs[j].base })

	var prev uint64 // seq of the last valid record so far
	for i, g := range segs {
		last := i == len(segs)-1
		if g.base > s.next {
			s.next = g.base
		}
		flag := os.O_RDONLY
		if last {
			flag = os.O_RDWR // the newest segment stays the active one
		}
		f, err := os.OpenFile(g.path, flag, 0)
		if err != nil {
			s.log.Error("spool: skipping unreadable segment", "file", filepath.Base(g.path), "err", err)
			continue
		}
		g.f = f
		var ok bool
		if prev, ok = s.scan(g, prev, last); !ok {
			_ = f.Close()
			continue
		}
		for j := range g.ents {
			if g.ents[j].seq <= cursor {
				g.ents[j].acked = true
			} else {
				g.pending++
			}
		}
		s.pending += g.pending
		s.bytes += g.size
		s.segs = append(s.segs, g)
		if last {
			s.active = g
		}
	}
	if prev >= s.next {
		s.next = prev + 1
	}
	// New segments are named after s.next: no file may carry that name or
	// a higher one, except an empty active segment that is appended to.
	for _, g := range segs {
		if g.base >= s.next && (g != s.active || s.rotateNext) {
			s.next = g.base + 1
		}
	}

	// Delete segments with nothing to replay, except the active one.
	kept := s.segs[:0]
	for _, g := range s.segs {
		if g.pending == 0 && g != s.active {
			_ = g.f.Close()
			if err := os.Remove(g.path); err != nil {
				s.log.Warn("spool: remove segment", "file", filepath.Base(g.path), "err", err)
			}
			s.bytes -= g.size
			continue
		}
		kept = append(kept, g)
	}
	clear(s.segs[len(kept):])
	s.segs = kept

	if s.active == nil {
		if err := s.createSegment(); err != nil {
			return err
		}
	} else if err := s.active.f.Sync(); err != nil {
		// Make what a crashed predecessor left in the page cache durable.
		return fmt.Errorf("spool %s: sync segment: %w", s.dir, err)
	}
	s.durable = s.next - 1
	return nil
}

func parseSegName(name string) (uint64, bool) {
	if len(name) != segNameLen || !strings.HasSuffix(name, segSuffix) {
		return 0, false
	}
	digits := name[:20]
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(digits, 10, 64)
	return v, err == nil
}

func segName(base uint64) string { return fmt.Sprintf("%020d%s", base, segSuffix) }

// recordProblem is what scan found wrong at an offset.
type recordProblem int

const (
	recOK recordProblem = iota
	recShort
	recBad
)

// checkRecord validates the record at off. buf is scratch space; the
// possibly grown buffer is returned.
func checkRecord(r io.ReaderAt, size, off int64, prev, base uint64, buf []byte) (e entry, p recordProblem, _ []byte) {
	if size-off < headerSize {
		return e, recShort, buf
	}
	var h [headerSize]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return e, recShort, buf
	}
	n := binary.LittleEndian.Uint32(h[0:4])
	sum := binary.LittleEndian.Uint32(h[4:8])
	seq := binary.LittleEndian.Uint64(h[8:16])
	if n > maxPayload {
		return e, recBad, buf
	}
	if off+headerSize+int64(n) > size {
		return e, recShort, buf
	}
	if cap(buf) < int(n) {
		buf = make([]byte, n)
	}
	payload := buf[:n]
	if _, err := r.ReadAt(payload, off+headerSize); err != nil {
		return e, recShort, buf
	}
	if checksum(h[8:16], payload) != sum || seq <= prev || seq < base || seq > maxSeq {
		return e, recBad, buf
	}
	return entry{seq: seq, off: off, n: n}, recOK, buf
}

func checksum(seq, payload []byte) uint32 {
	return crc32.Update(crc32.Checksum(seq, castagnoli), castagnoli, payload)
}

// scan indexes the valid records of g (whose file is open) and returns the
// seq of the last one (or prev if none), and false if the file cannot be
// used at all. The last segment's torn tail is truncated.
func (s *Spool) scan(g *segment, prev uint64, last bool) (uint64, bool) {
	name := filepath.Base(g.path)
	fi, err := g.f.Stat()
	if err != nil {
		s.log.Error("spool: skipping unreadable segment", "file", name, "err", err)
		return prev, false
	}
	size := fi.Size()
	var buf []byte
	var off int64
	for off < size {
		e, p, b := checkRecord(g.f, size, off, prev, g.base, buf)
		buf = b
		if p == recOK {
			g.ents = append(g.ents, e)
			prev = e.seq
			off += headerSize + int64(e.n)
			continue
		}
		if last && s.tornTail(g.f, size, off, prev, g.base, p, buf) {
			s.log.Warn("spool: truncating torn tail", "file", name, "offset", off, "bytes", size-off)
			if err := g.f.Truncate(off); err != nil {
				s.log.Error("spool: truncate torn tail", "file", name, "err", err)
				s.rotateNext = true
				break
			}
			size = off
			break
		}
		s.log.Error("spool: damaged record, skipping the rest of the segment",
			"file", name, "offset", off, "skipped_bytes", size-off)
		if last {
			s.rotateNext = true
		}
		// Records after the damage are not replayed, but their seqs were
		// handed out: do not hand them out again.
		if hi := highSeq(g.f, size, off, buf); hi > s.next-1 && hi < maxSeq {
			s.next = hi + 1
		}
		break
	}
	g.size = size
	return prev, true
}

// tornTail reports whether the problem p at off is the end of an interrupted
// write rather than damage in the middle: a short record, or a bad record
// not followed by a valid one.
func (s *Spool) tornTail(r io.ReaderAt, size, off int64, prev, base uint64, p recordProblem, buf []byte) bool {
	if p == recShort {
		return true
	}
	var h [4]byte
	if _, err := r.ReadAt(h[:], off); err != nil {
		return true
	}
	n := binary.LittleEndian.Uint32(h[:])
	if n > maxPayload {
		return true
	}
	nextOff := off + headerSize + int64(n)
	if nextOff >= size {
		return true
	}
	_, p2, _ := checkRecord(r, size, nextOff, prev, base, buf)
	return p2 != recOK
}

// highSeq returns the highest seq among the valid records that follow the
// damaged one at off, walking the length fields while they are plausible.
func highSeq(r io.ReaderAt, size, off int64, buf []byte) uint64 {
	var hi uint64
	var h [4]byte
	for off < size {
		if _, err := r.ReadAt(h[:], off); err != nil {
			break
		}
		n := binary.LittleEndian.Uint32(h[:])
		if n > maxPayload {
			break
		}
		var e entry
		var p recordProblem
		e, p, buf = checkRecord(r, size, off, 0, 0, buf)
		if p == recShort {
			break
		}
		if p == recOK && e.seq > hi {
			hi = e.seq
		}
		off += headerSize + int64(n)
	}
	return hi
}

func (s *Spool) readAcked() uint64 {
	b, err := os.ReadFile(filepath.Join(s.dir, ackedName))
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.log.Warn("spool: reading the ack cursor, replaying everything", "err", err)
		}
		return 0
	}
	str, ok := strings.CutSuffix(string(b), "\n")
	v, err := strconv.ParseUint(str, 10, 64)
	if !ok || err != nil || v > maxSeq {
		s.log.Warn("spool: damaged ack cursor file, replaying everything", "content", fmt.Sprintf("%.40q", b))
		return 0
	}
	return v
}

// createSegment starts a new active segment named after s.next. Called with
// mu held (or during Open).
func (s *Spool) createSegment() error {
	path := filepath.Join(s.dir, segName(s.next))
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, filePerm)
	if err != nil {
		return fmt.Errorf("spool %s: create segment: %w", s.dir, err)
	}
	if err := syncDir(s.dir); err != nil {
		_ = f.Close()
		_ = os.Remove(path)
		return fmt.Errorf("spool %s: create segment: %w", s.dir, err)
	}
	g := &segment{base: s.next, path: path, f: f}
	s.segs = append(s.segs, g)
	s.active = g
	s.rotateNext = false
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// rotateLocked makes the active segment durable and starts a new one.
func (s *Spool) rotateLocked() error {
	old := s.active
	if err := old.f.Sync(); err != nil {
		return fmt.Errorf("spool %s: sync segment %s: %w", s.dir, filepath.Base(old.path), err)
	}
	s.durable = s.next - 1
	if err := s.createSegment(); err != nil {
		return err
	}
	if old.pending == 0 {
		s.removeSegLocked(old)
	}
	return nil
}

// removeSegLocked closes and deletes g, which must not be the active segment.
func (s *Spool) removeSegLocked(g *segment) {
	for i, x := range s.segs {
		if x == g {
			copy(s.segs[i:], s.segs[i+1:])
			s.segs[len(s.segs)-1] = nil
			s.segs = s.segs[:len(s.segs)-1]
			break
		}
	}
	s.bytes -= g.size
	_ = g.f.Close()
	if err := os.Remove(g.path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("spool: remove segment", "file", filepath.Base(g.path), "err", err)
	}
}

// dropLocked deletes the oldest segments until n more bytes fit.
func (s *Spool) dropLocked(n int64) {
	for s.bytes+n > s.maxBytes && len(s.segs) > 1 {
		g := s.segs[0]
		lost := g.pending
		if lost > 0 {
			var first, last uint64
			for _, e := range g.ents[g.first:] {
				if !e.acked {
					if first == 0 {
						first = e.seq
					}
					last = e.seq
					if e.sent {
						s.sent--
					}
				}
			}
			s.dropped += uint64(lost)
			s.pending -= lost
			s.log.Warn("spool: full, dropping the oldest segment with unacknowledged records",
				"file", filepath.Base(g.path), "records", lost, "first_seq", first, "last_seq", last,
				"max_bytes", s.maxBytes)
		}
		if n := len(g.ents); n > 0 && g.ents[n-1].seq > s.gone {
			s.gone = g.ents[n-1].seq
		}
		s.removeSegLocked(g)
		s.armFlushLocked()
	}
}

// Append writes data as a new record, fsyncs it and returns its seq. On error
// it returns 0; the record is then not visible to Read, except after a failed
// fsync, where it may still be delivered. Payloads larger than 1 MiB are
// refused.
func (s *Spool) Append(data []byte) (uint64, error) {
	if len(data) > maxPayload {
		return 0, fmt.Errorf("spool %s: append: record of %d bytes exceeds %d", s.dir, len(data), maxPayload)
	}
	seq, err := s.AppendFunc(func(uint64) ([]byte, error) { return data, nil })
	if err != nil {
		return 0, err
	}
	return seq, nil
}

// AppendFunc is Append for a payload that carries its own seq: fn is called
// with the seq the record will get and returns the payload (which the spool
// copies). fn runs under the spool's lock, so it must be quick and must not
// call the Spool's methods.
//
// If fn fails, AppendFunc returns 0 and fn's error (wrapped) and the seq is
// not used. Otherwise the seq is used up, and returned also with an error
// (oversized payload, I/O failure) so that the caller can undo what fn
// recorded; such a record is not visible to Read, except after a failed
// fsync, where it may still be delivered.
func (s *Spool) AppendFunc(fn func(seq uint64) ([]byte, error)) (uint64, error) {
	seq, err := s.write(fn)
	if err != nil {
		return seq, err
	}
	err = s.syncTo(seq)
	s.signal()
	return seq, err
}

// write assigns a seq, calls fn and writes the record without syncing it.
func (s *Spool) write(fn func(seq uint64) ([]byte, error)) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("spool %s: append: %w", s.dir, os.ErrClosed)
	}
	if s.next > maxSeq {
		return 0, fmt.Errorf("spool %s: append: sequence numbers exhausted", s.dir)
	}
	seq := s.next
	data, err := fn(seq)
	if err != nil {
		return 0, fmt.Errorf("spool %s: append: %w", s.dir, err)
	}
	if len(data) > maxPayload {
		s.next++
		return seq, fmt.Errorf("spool %s: append: record of %d bytes exceeds %d", s.dir, len(data), maxPayload)
	}
	n := int64(headerSize + len(data))
	if s.active.size > 0 && (s.rotateNext || s.active.size+n > s.segBytes) {
		// The new segment is named after seq.
		if err := s.rotateLocked(); err != nil {
			s.next++
			return seq, fmt.Errorf("append: %w", err)
		}
	}
	s.dropLocked(n)
	s.next++

	if cap(s.wbuf) < int(n) {
		s.wbuf = make([]byte, n)
	}
	b := s.wbuf[:n]
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint64(b[8:16], seq)
	copy(b[headerSize:], data)
	binary.LittleEndian.PutUint32(b[4:8], checksum(b[8:16], data))

	g := s.active
	off := g.size
	_, err = g.f.WriteAt(b, off)
	if cap(s.wbuf) > 64<<10 {
		s.wbuf = nil // do not pin a large buffer
	}
	if err != nil {
		// The seq stays used up. If the truncation fails, the partial
		// record is left behind and the next Append starts a new segment.
		if terr := g.f.Truncate(off); terr != nil {
			s.rotateNext = true
		}
		return seq, fmt.Errorf("spool %s: append to %s: %w", s.dir, filepath.Base(g.path), err)
	}
	g.size += n
	g.ents = append(g.ents, entry{seq: seq, off: off, n: uint32(len(data))})
	g.pending++
	s.bytes += n
	s.pending++
	s.appended++
	return seq, nil
}

// syncTo returns once seq is durable, fsyncing the active segment unless
// another Append's fsync already covered it.
func (s *Spool) syncTo(seq uint64) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	s.mu.Lock()
	if s.durable >= seq {
		s.mu.Unlock()
		return nil
	}
	if s.closed {
		s.mu.Unlock()
		return fmt.Errorf("spool %s: append: %w", s.dir, os.ErrClosed)
	}
	// Everything up to target is either in f or in an older segment, which
	// was fsync'd when it stopped being active.
	f, target := s.active.f, s.next-1
	s.mu.Unlock()

	err := f.Sync()

	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		if target > s.durable {
			s.durable = target
		}
		return nil
	}
	if s.durable >= seq {
		return nil // f was rotated (and fsync'd) and closed meanwhile
	}
	return fmt.Errorf("spool %s: fsync: %w", s.dir, err)
}

func (s *Spool) signal() {
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// findSeg returns the index of the first segment whose last seq is >= seq.
func (s *Spool) findSeg(seq uint64) int {
	return sort.Search(len(s.segs), func(i int) bool { return s.segs[i].lastSeq() >= seq })
}

// Read appends to buf[:0] up to max durable, unacknowledged records with
// Seq > after, in seq order, and returns it. Each Record.Data is a fresh copy
// the caller may keep. A record that cannot be read back is logged and left
// out. After Close, Read returns buf[:0].
func (s *Spool) Read(after uint64, max int, buf []Record) []Record {
	out := buf[:0]
	if max <= 0 || after == math.MaxUint64 {
		return out
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return out
	}
	for i := s.findSeg(after + 1); i < len(s.segs) && len(out) < max; i++ {
		g := s.segs[i]
		j := sort.Search(len(g.ents), func(k int) bool { return g.ents[k].seq > after })
		if j < g.first {
			j = g.first
		}
		for ; j < len(g.ents) && len(out) < max; j++ {
			e := g.ents[j]
			if e.seq > s.durable {
				return out
			}
			if e.acked {
				continue
			}
			data, err := readRecord(g.f, e)
			if err != nil {
				s.log.Error("spool: cannot read back record", "file", filepath.Base(g.path), "seq", e.seq, "err", err)
				continue
			}
			out = append(out, Record{Seq: e.seq, Data: data})
		}
	}
	return out
}

var errChecksum = errors.New("checksum mismatch")

func readRecord(r io.ReaderAt, e entry) ([]byte, error) {
	b := make([]byte, headerSize+int(e.n))
	if _, err := r.ReadAt(b, e.off); err != nil {
		return nil, err
	}
	data := b[headerSize:]
	if binary.LittleEndian.Uint32(b[0:4]) != e.n ||
		binary.LittleEndian.Uint64(b[8:16]) != e.seq ||
		binary.LittleEndian.Uint32(b[4:8]) != checksum(b[8:16], data) {
		return nil, errChecksum
	}
	return data[:len(data):len(data)], nil
}

// Ack marks the record seq as delivered. Acknowledgements may arrive in any
// order; acknowledging an unknown or already acknowledged seq does nothing.
// A segment left with no pending records is deleted unless it is the active
// one. The error reports a closed spool.
func (s *Spool) Ack(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("spool %s: ack %d: %w", s.dir, seq, os.ErrClosed)
	}
	i := s.findSeg(seq)
	if i == len(s.segs) {
		return nil
	}
	g := s.segs[i]
	j := sort.Search(len(g.ents), func(k int) bool { return g.ents[k].seq >= seq })
	if j == len(g.ents) || g.ents[j].seq != seq || g.ents[j].acked {
		return nil
	}
	s.ackEntryLocked(g, j)
	if g.pending == 0 && g != s.active {
		s.removeSegLocked(g)
	}
	s.armFlushLocked()
	return nil
}

// ackEntryLocked marks the pending entry g.ents[j] acknowledged.
func (s *Spool) ackEntryLocked(g *segment, j int) {
	e := &g.ents[j]
	e.acked = true
	if e.sent {
		e.sent = false
		s.sent--
	}
	g.pending--
	s.pending--
	s.acked++
	if e.seq > s.gone {
		s.gone = e.seq
	}
	for g.first < len(g.ents) && g.ents[g.first].acked {
		g.first++
	}
}

// cursorLocked is the highest seq such that no record <= it is pending.
func (s *Spool) cursorLocked() uint64 {
	if s.pending > 0 {
		for _, g := range s.segs {
			if g.pending == 0 {
				continue
			}
			for g.first < len(g.ents) && g.ents[g.first].acked {
				g.first++
			}
			if g.first < len(g.ents) {
				return g.ents[g.first].seq - 1
			}
		}
	}
	return s.next - 1
}

// armFlushLocked schedules a write of the ack cursor.
func (s *Spool) armFlushLocked() {
	if s.flushArmed || s.closed {
		return
	}
	s.flushArmed = true
	s.timer = time.AfterFunc(ackInterval, s.flushAcked)
}

func (s *Spool) flushAcked() {
	s.mu.Lock()
	s.flushArmed = false
	cur := s.cursorLocked()
	s.mu.Unlock()
	if err := s.writeAcked(cur, false); err != nil {
		s.log.Warn("spool: persist ack cursor", "err", err)
	}
}

// writeAcked persists cur as the ack cursor if it advanced. After a final
// write (from Close) it does nothing.
func (s *Spool) writeAcked(cur uint64, final bool) error {
	s.ackMu.Lock()
	defer s.ackMu.Unlock()
	if s.ackStopped {
		return nil
	}
	if final {
		s.ackStopped = true
	}
	if cur <= s.ackWritten {
		return nil
	}
	tmp := filepath.Join(s.dir, ackedTmp)
	if err := os.WriteFile(tmp, []byte(strconv.FormatUint(cur, 10)+"\n"), filePerm); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool %s: write ack cursor: %w", s.dir, err)
	}
	if err := os.Rename(tmp, filepath.Join(s.dir, ackedName)); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("spool %s: write ack cursor: %w", s.dir, err)
	}
	s.ackWritten = cur
	return nil
}

// Notify returns a channel that receives a value (without blocking the
// sender; capacity 1) after records are appended, and after Open when there
// are records to replay.
func (s *Spool) Notify() <-chan struct{} { return s.notify }

// Stats returns a snapshot of the spool's counters.
func (s *Spool) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := Stats{
		Pending:  s.pending,
		Bytes:    s.bytes,
		Segments: len(s.segs),
		Appended: s.appended,
		Acked:    s.acked,
		Dropped:  s.dropped,
		NextSeq:  s.next,
		Sent:     s.sent,
		Stored:   s.stored,
	}
	if s.pending > 0 {
		st.OldestSeq = s.cursorLocked() + 1
	}
	return st
}

// Close makes every appended record durable, persists the ack cursor and
// closes the files. It is idempotent; afterwards Append and Ack return errors
// that match os.ErrClosed.
func (s *Spool) Close() error {
	s.syncMu.Lock()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.syncMu.Unlock()
		return nil
	}
	s.closed = true
	var errs []error
	if err := s.active.f.Sync(); err != nil {
		errs = append(errs, fmt.Errorf("spool %s: close: fsync: %w", s.dir, err))
	} else {
		s.durable = s.next - 1
	}
	for _, g := range s.segs {
		if err := g.f.Close(); err != nil {
			errs = append(errs, fmt.Errorf("spool %s: close %s: %w", s.dir, filepath.Base(g.path), err))
		}
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	cur := s.cursorLocked()
	s.mu.Unlock()
	s.syncMu.Unlock()
	if err := s.writeAcked(cur, true); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
