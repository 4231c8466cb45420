package spool

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// logBuf collects log output; safe for concurrent use.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

func open(t testing.TB, dir string, o Options) *Spool {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	s, err := Open(dir, o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func payload(i int) []byte { return []byte(fmt.Sprintf("event-%04d-%s", i, strings.Repeat("x", i%7))) }

func appendN(t testing.TB, s *Spool, from, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, 0, n)
	for i := from; i < from+n; i++ {
		seq, err := s.Append(payload(i))
		if err != nil {
			t.Fatalf("Append %d: %v", i, err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

func readAll(s *Spool) []Record { return s.Read(0, 1<<30, nil) }

func seqsOf(recs []Record) []uint64 {
	out := make([]uint64, len(recs))
	for i, r := range recs {
		out[i] = r.Seq
	}
	return out
}

func span(from, to uint64) []uint64 {
	var out []uint64
	for i := from; i <= to; i++ {
		out = append(out, i)
	}
	return out
}

// checkData asserts that record seq carries payload(seq-1+off).
func checkData(t *testing.T, recs []Record, off int) {
	t.Helper()
	for _, r := range recs {
		if want := payload(int(r.Seq) - 1 + off); !bytes.Equal(r.Data, want) {
			t.Fatalf("seq %d: data %q, want %q", r.Seq, r.Data, want)
		}
	}
}

func encode(seq uint64, data []byte) []byte {
	b := make([]byte, headerSize+len(data))
	binary.LittleEndian.PutUint32(b[0:4], uint32(len(data)))
	binary.LittleEndian.PutUint64(b[8:16], seq)
	copy(b[headerSize:], data)
	binary.LittleEndian.PutUint32(b[4:8], checksum(b[8:16], data))
	return b
}

func segFiles(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "*"+segSuffix))
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(m)
	return m
}

func diskBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, p := range segFiles(t, dir) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestAppendReadAck(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	seqs := appendN(t, s, 0, 10)
	if !slices.Equal(seqs, span(1, 10)) {
		t.Fatalf("seqs %v", seqs)
	}
	select {
	case <-s.Notify():
	default:
		t.Fatal("no notification after Append")
	}

	tests := []struct {
		name  string
		after uint64
		max   int
		want  []uint64
	}{
		{"first three", 0, 3, span(1, 3)},
		{"after five", 5, 100, span(6, 10)},
		{"after last", 10, 100, nil},
		{"after unknown", 1000, 100, nil},
		{"max zero", 0, 0, nil},
		{"max negative", 0, -1, nil},
		{"exact", 2, 8, span(3, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := s.Read(tc.after, tc.max, nil)
			if !slices.Equal(seqsOf(got), tc.want) {
				t.Fatalf("Read(%d, %d) = %v, want %v", tc.after, tc.max, seqsOf(got), tc.want)
			}
			checkData(t, got, 0)
		})
	}

	// buf is reused.
	buf := make([]Record, 1, 16)
	buf[0] = Record{Seq: 99}
	got := s.Read(0, 4, buf)
	if len(got) != 4 || &got[0] != &buf[0] {
		t.Fatalf("Read did not reuse buf: len %d", len(got))
	}
	// Data is a copy the caller may keep and modify.
	got[0].Data[0] = 'X'
	if again := s.Read(0, 1, nil); again[0].Data[0] != 'e' {
		t.Fatal("Read returned spool-owned memory")
	}

	// Out-of-order acks; unknown and repeated acks are no-ops.
	for _, seq := range []uint64{4, 2, 2, 1000, 0, 9} {
		if err := s.Ack(seq); err != nil {
			t.Fatalf("Ack(%d): %v", seq, err)
		}
	}
	if got := seqsOf(readAll(s)); !slices.Equal(got, []uint64{1, 3, 5, 6, 7, 8, 10}) {
		t.Fatalf("after acks: %v", got)
	}
	if got := seqsOf(s.Read(3, 2, nil)); !slices.Equal(got, []uint64{5, 6}) {
		t.Fatalf("Read(3, 2) after acks: %v", got)
	}
	st := s.Stats()
	if st.Pending != 7 || st.Appended != 10 || st.Acked != 3 || st.OldestSeq != 1 || st.NextSeq != 11 || st.Segments != 1 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Ack(1); err != nil {
		t.Fatal(err)
	}
	if st := s.Stats(); st.OldestSeq != 3 {
		t.Fatalf("OldestSeq %d, want 3", st.OldestSeq)
	}

	if _, err := s.Append(make([]byte, maxPayload+1)); err == nil {
		t.Fatal("Append of an oversized record succeeded")
	}
	if seq, err := s.Append(make([]byte, maxPayload)); err != nil || seq != 11 {
		t.Fatalf("Append of a 1 MiB record: %d, %v", seq, err)
	}
	if seq, err := s.Append(nil); err != nil || seq != 12 {
		t.Fatalf("Append of an empty record: %d, %v", seq, err)
	}
	if got := s.Read(11, 5, nil); len(got) != 1 || len(got[0].Data) != 0 {
		t.Fatalf("empty record read back as %v", got)
	}

	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Append([]byte("late")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Append after Close: %v", err)
	}
	if err := s.Ack(3); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
	if got := s.Read(0, 10, nil); len(got) != 0 {
		t.Fatalf("Read after Close: %v", seqsOf(got))
	}
}

func TestAppendFunc(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	boom := errors.New("boom")
	tests := []struct {
		name    string
		fn      func(seq uint64) ([]byte, error)
		wantSeq uint64
		wantErr bool
		next    uint64 // NextSeq afterwards
	}{
		{"payload carries seq", func(seq uint64) ([]byte, error) { return []byte(fmt.Sprint(seq)), nil }, 1, false, 2},
		{"fn fails: seq not used", func(uint64) ([]byte, error) { return nil, boom }, 0, true, 2},
		{"oversized: seq used up", func(uint64) ([]byte, error) { return make([]byte, maxPayload+1), nil }, 2, true, 3},
		{"after oversized", func(seq uint64) ([]byte, error) { return []byte(fmt.Sprint(seq)), nil }, 3, false, 4},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq, err := s.AppendFunc(tc.fn)
			if seq != tc.wantSeq || (err != nil) != tc.wantErr {
				t.Fatalf("AppendFunc = %d, %v; want %d, error %v", seq, err, tc.wantSeq, tc.wantErr)
			}
			if st := s.Stats(); st.NextSeq != tc.next {
				t.Fatalf("NextSeq %d, want %d", st.NextSeq, tc.next)
			}
		})
	}
	recs := readAll(s)
	if !slices.Equal(seqsOf(recs), []uint64{1, 3}) || string(recs[0].Data) != "1" || string(recs[1].Data) != "3" {
		t.Fatalf("records %v", recs)
	}
	if _, err := s.AppendFunc(func(uint64) ([]byte, error) { return nil, boom }); !errors.Is(err, boom) {
		t.Fatalf("fn's error not wrapped: %v", err)
	}
}

func TestRestart(t *testing.T) {
	tests := []struct {
		name string
		opts Options
	}{
		{"one segment", Options{}},
		{"small segments", Options{SegmentBytes: 300}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, tc.opts)
			appendN(t, s, 0, 100)
			ack := span(1, 40)
			rand.New(rand.NewPCG(1, 2)).Shuffle(len(ack), func(i, j int) { ack[i], ack[j] = ack[j], ack[i] })
			for _, seq := range ack {
				if err := s.Ack(seq); err != nil {
					t.Fatal(err)
				}
			}
			// The ack cursor is persisted without Close within ~100 ms.
			deadline := time.Now().Add(3 * time.Second)
			for {
				b, _ := os.ReadFile(filepath.Join(dir, ackedName))
				if string(b) == "40\n" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("acked file %q, want 40", b)
				}
				time.Sleep(10 * time.Millisecond)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			s = open(t, dir, tc.opts)
			recs := readAll(s)
			if !slices.Equal(seqsOf(recs), span(41, 100)) {
				t.Fatalf("replayed %v", seqsOf(recs))
			}
			checkData(t, recs, 0)
			st := s.Stats()
			if st.NextSeq != 101 || st.Pending != 60 || st.OldestSeq != 41 || st.Appended != 0 {
				t.Fatalf("stats after reopen %+v", st)
			}
			if seq, err := s.Append(payload(100)); err != nil || seq != 101 {
				t.Fatalf("Append after reopen: %d, %v", seq, err)
			}

			// Ack everything: seqs still continue after another restart.
			for _, r := range readAll(s) {
				if err := s.Ack(r.Seq); err != nil {
					t.Fatal(err)
				}
			}
			if st := s.Stats(); st.Segments != 1 || st.Pending != 0 {
				t.Fatalf("stats after acking all %+v", st)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, tc.opts)
			if got := readAll(s); len(got) != 0 {
				t.Fatalf("replayed after acking all: %v", seqsOf(got))
			}
			if seq, err := s.Append(nil); err != nil || seq != 102 {
				t.Fatalf("Append after second reopen: %d, %v", seq, err)
			}
		})
	}
}

func TestTornTail(t *testing.T) {
	rec := encode(11, bytes.Repeat([]byte("y"), 100))
	badCRC := bytes.Clone(rec)
	badCRC[len(badCRC)-1] ^= 0xff
	tests := []struct {
		name string
		tail []byte
	}{
		{"half record", rec[:60]},
		{"short header", rec[:10]},
		{"length only", rec[:4]},
		{"bad crc at end", badCRC},
		{"zeros", make([]byte, 4096)},
		{"garbage", bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef, 0x01}, 50)},
		{"bad crc then garbage", append(bytes.Clone(badCRC), 1, 2, 3)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{})
			appendN(t, s, 0, 10)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			files := segFiles(t, dir)
			last := files[len(files)-1]
			fi, err := os.Stat(last)
			if err != nil {
				t.Fatal(err)
			}
			good := fi.Size()
			f, err := os.OpenFile(last, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.Write(tc.tail); err != nil {
				t.Fatal(err)
			}
			_ = f.Close()

			logs := &logBuf{}
			s = open(t, dir, Options{Logger: slog.New(slog.NewTextHandler(logs, nil))})
			recs := readAll(s)
			if !slices.Equal(seqsOf(recs), span(1, 10)) {
				t.Fatalf("after torn tail: %v", seqsOf(recs))
			}
			checkData(t, recs, 0)
			if fi, err := os.Stat(last); err != nil || fi.Size() != good {
				t.Fatalf("tail not truncated: size %d, want %d (%v)", fi.Size(), good, err)
			}
			if !strings.Contains(logs.String(), "torn tail") {
				t.Fatalf("no log about the torn tail: %s", logs)
			}
			if seq, err := s.Append(payload(10)); err != nil || seq != 11 {
				t.Fatalf("Append after truncation: %d, %v", seq, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, Options{})
			recs = readAll(s)
			if !slices.Equal(seqsOf(recs), span(1, 11)) {
				t.Fatalf("after second reopen: %v", seqsOf(recs))
			}
			checkData(t, recs, 0)
		})
	}
}

func TestCorruptMiddle(t *testing.T) {
	const segBytes = 200 // four records of ~46 bytes a segment
	tests := []struct {
		name string
		file func(files []string) string // which segment to damage
		rec  int                         // which record in it (0-based)
	}{
		{"older segment", func(f []string) string { return f[0] }, 1},
		{"older segment first record", func(f []string) string { return f[1] }, 0},
		{"last segment", func(f []string) string { return f[len(f)-1] }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{SegmentBytes: segBytes})
			appendN(t, s, 0, 22)
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			files := segFiles(t, dir)
			if len(files) < 3 {
				t.Fatalf("only %d segments", len(files))
			}
			victim := tc.file(files)
			b, err := os.ReadFile(victim)
			if err != nil {
				t.Fatal(err)
			}
			// Walk to the record, note the seqs it and its followers hold.
			var off int
			var lost []uint64
			for i := 0; off < len(b); i++ {
				n := int(binary.LittleEndian.Uint32(b[off:]))
				seq := binary.LittleEndian.Uint64(b[off+8:])
				if i == tc.rec {
					b[off+headerSize+1] ^= 0x20 // flip a payload bit
				}
				if i >= tc.rec {
					lost = append(lost, seq)
				}
				off += headerSize + n
			}
			if len(lost) < 2 {
				t.Fatalf("victim record is the last of its segment")
			}
			if err := os.WriteFile(victim, b, 0o640); err != nil {
				t.Fatal(err)
			}

			logs := &logBuf{}
			s = open(t, dir, Options{SegmentBytes: segBytes, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if !strings.Contains(logs.String(), "damaged record") {
				t.Fatalf("damage not logged: %s", logs)
			}
			var want []uint64
			for _, seq := range span(1, 22) {
				if !slices.Contains(lost, seq) {
					want = append(want, seq)
				}
			}
			recs := readAll(s)
			if !slices.Equal(seqsOf(recs), want) {
				t.Fatalf("got %v, want %v", seqsOf(recs), want)
			}
			checkData(t, recs, 0)
			// The damaged segment is kept as it is, or deleted when nothing
			// in it is left to replay; never truncated.
			if fi, err := os.Stat(victim); err == nil && fi.Size() != int64(len(b)) {
				t.Fatalf("damaged segment was truncated to %d bytes", fi.Size())
			}
			if seq, err := s.Append(payload(22)); err != nil || seq != 23 {
				t.Fatalf("Append: %d, %v", seq, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = open(t, dir, Options{SegmentBytes: segBytes})
			recs = readAll(s)
			if !slices.Equal(seqsOf(recs), append(want, 23)) {
				t.Fatalf("after second reopen: %v", seqsOf(recs))
			}
			checkData(t, recs, 0)
		})
	}
}

func TestRotationAndDeletion(t *testing.T) {
	dir := t.TempDir()
	// Records of 16+40 bytes: four a segment.
	s := open(t, dir, Options{SegmentBytes: 230})
	data := bytes.Repeat([]byte("z"), 40)
	for i := 0; i < 40; i++ {
		if _, err := s.Append(data); err != nil {
			t.Fatal(err)
		}
	}
	check := func(wantSegs int) {
		t.Helper()
		st := s.Stats()
		files := segFiles(t, dir)
		if st.Segments != wantSegs || len(files) != wantSegs {
			t.Fatalf("Segments %d, files %d, want %d", st.Segments, len(files), wantSegs)
		}
		if db := diskBytes(t, dir); st.Bytes != db {
			t.Fatalf("Bytes %d, on disk %d", st.Bytes, db)
		}
	}
	check(10)

	// Acking most of segment 2 keeps it; acking all of it (out of order)
	// deletes it although segment 1 is still pending.
	for _, seq := range []uint64{8, 6, 5} {
		_ = s.Ack(seq)
	}
	check(10)
	_ = s.Ack(7)
	check(9)
	if got := seqsOf(s.Read(0, 6, nil)); !slices.Equal(got, []uint64{1, 2, 3, 4, 9, 10}) {
		t.Fatalf("Read after deleting segment 2: %v", got)
	}

	for seq := uint64(1); seq <= 40; seq++ {
		if err := s.Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	check(1) // the active segment stays
	if st := s.Stats(); st.Pending != 0 || st.Acked != 40 || st.OldestSeq != 0 || st.Bytes != 4*56 {
		t.Fatalf("stats %+v", st)
	}
	// A full active segment that is all acked is deleted when it rotates.
	if _, err := s.Append(data); err != nil {
		t.Fatal(err)
	}
	check(1)
}

func TestDropOldest(t *testing.T) {
	const (
		maxBytes = 1024
		recSize  = headerSize + 48
	)
	data := func(i int) []byte { return []byte(fmt.Sprintf("%048d", i)) }
	tests := []struct {
		name    string
		segSize int64
		ackEach int // ack every n-th record as it is appended; 0: none
	}{
		{"none acked", 512, 0},
		{"some acked", 512, 3},
		{"segment size clamped", 1 << 20, 0},
		{"tiny segments", 100, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			logs := &logBuf{}
			s := open(t, dir, Options{MaxBytes: maxBytes, SegmentBytes: tc.segSize, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			acked := map[uint64]bool{}
			for i := 1; i <= 100; i++ {
				seq, err := s.Append(data(i))
				if err != nil {
					t.Fatal(err)
				}
				if seq != uint64(i) {
					t.Fatalf("seq %d, want %d", seq, i)
				}
				if tc.ackEach > 0 && i%tc.ackEach == 0 {
					_ = s.Ack(seq)
					acked[seq] = true
				}
				if st := s.Stats(); st.Bytes > maxBytes+recSize {
					t.Fatalf("Bytes %d > %d", st.Bytes, maxBytes+recSize)
				}
			}
			st := s.Stats()
			recs := readAll(s)
			if len(recs) != st.Pending {
				t.Fatalf("read %d records, Pending %d", len(recs), st.Pending)
			}
			lost := 0
			present := map[uint64]bool{}
			for _, r := range recs {
				present[r.Seq] = true
				if !bytes.Equal(r.Data, data(int(r.Seq))) {
					t.Fatalf("seq %d: data %q", r.Seq, r.Data)
				}
			}
			for seq := uint64(1); seq <= 100; seq++ {
				if !present[seq] && !acked[seq] {
					lost++
				}
			}
			if st.Dropped == 0 || st.Dropped != uint64(lost) {
				t.Fatalf("Dropped %d, lost %d", st.Dropped, lost)
			}
			if st.Appended-st.Acked-st.Dropped != uint64(st.Pending) {
				t.Fatalf("inconsistent stats %+v", st)
			}
			// The newest records are all there, in order, with nothing
			// pending missing between the oldest and the newest.
			for seq := recs[0].Seq; seq <= 100; seq++ {
				if !present[seq] && !acked[seq] {
					t.Fatalf("seq %d missing among the newest", seq)
				}
			}
			if !slices.IsSorted(seqsOf(recs)) || recs[len(recs)-1].Seq != 100 || st.OldestSeq != recs[0].Seq {
				t.Fatalf("records %v, OldestSeq %d", seqsOf(recs), st.OldestSeq)
			}
			if db := diskBytes(t, dir); db != st.Bytes || db > maxBytes+recSize {
				t.Fatalf("on disk %d, Bytes %d", db, st.Bytes)
			}
			if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "dropping") {
				t.Fatalf("drop not logged: %s", logs)
			}
		})
	}
}

func TestConcurrent(t *testing.T) {
	const writers, each = 8, 200
	s := open(t, t.TempDir(), Options{SegmentBytes: 4096})

	var wg sync.WaitGroup
	got := make([][]uint64, writers)
	for w := 0; w < writers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < each; i++ {
				seq, err := s.Append([]byte(fmt.Sprintf("w%d-%d", w, i)))
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				got[w] = append(got[w], seq)
			}
		}()
	}

	acks := map[uint64]int{}
	data := map[uint64]string{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		var last uint64
		var buf []Record
		deadline := time.After(15 * time.Second)
		for len(acks) < writers*each {
			buf = s.Read(last, 37, buf)
			for _, r := range buf {
				if r.Seq <= last {
					t.Errorf("Read returned seq %d after %d", r.Seq, last)
				}
				last = r.Seq
				acks[r.Seq]++
				data[r.Seq] = string(r.Data)
				if err := s.Ack(r.Seq); err != nil {
					t.Errorf("Ack: %v", err)
				}
				_ = s.Stats()
			}
			if len(buf) == 0 {
				select {
				case <-s.Notify():
				case <-time.After(50 * time.Millisecond):
				case <-deadline:
					t.Errorf("reader timed out with %d records", len(acks))
					return
				}
			}
		}
	}()
	wg.Wait()
	<-done

	all := map[uint64]bool{}
	for w, seqs := range got {
		if !slices.IsSorted(seqs) {
			t.Fatalf("writer %d got decreasing seqs", w)
		}
		for i, seq := range seqs {
			if all[seq] {
				t.Fatalf("seq %d returned twice", seq)
			}
			all[seq] = true
			if acks[seq] != 1 {
				t.Fatalf("seq %d acked %d times", seq, acks[seq])
			}
			if want := fmt.Sprintf("w%d-%d", w, i); data[seq] != want {
				t.Fatalf("seq %d: %q, want %q", seq, data[seq], want)
			}
		}
	}
	if len(acks) != writers*each {
		t.Fatalf("acked %d records", len(acks))
	}
	st := s.Stats()
	if st.Pending != 0 || st.Appended != writers*each || st.Acked != writers*each || st.Segments != 1 {
		t.Fatalf("stats %+v", st)
	}
}

// TestCloseWhileAppending: an Append racing with Close either succeeds, and
// then its record is durable, or fails with os.ErrClosed.
func TestCloseWhileAppending(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, Options{SegmentBytes: 1024})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var ok []uint64
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				seq, err := s.Append([]byte("r"))
				if err != nil {
					if !errors.Is(err, os.ErrClosed) {
						t.Errorf("Append: %v", err)
					}
					return
				}
				mu.Lock()
				ok = append(ok, seq)
				mu.Unlock()
			}
		}()
	}
	time.Sleep(20 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	s = open(t, dir, Options{SegmentBytes: 1024})
	have := map[uint64]bool{}
	for _, r := range readAll(s) {
		have[r.Seq] = true
	}
	for _, seq := range ok {
		if !have[seq] {
			t.Fatalf("seq %d appended but missing", seq)
		}
	}
	if len(ok) == 0 {
		t.Fatal("no Append succeeded")
	}
}

const childEnv = "STREAMQC_SPOOL_KILL_CHILD_DIR"

// TestKill9Durability re-executes the test binary as a child that appends
// records and reports each returned seq; the child is killed with SIGKILL
// mid-stream and every reported record must be in the spool.
func TestKill9Durability(t *testing.T) {
	if dir := os.Getenv(childEnv); dir != "" {
		killChild(dir)
		return
	}
	if runtime.GOOS == "windows" || runtime.GOOS == "js" || runtime.GOOS == "wasip1" {
		t.Skip("needs SIGKILL and subprocesses")
	}
	dir := t.TempDir()
	for round := 0; round < 2; round++ {
		cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Durability$", "-test.count=1")
		cmd.Env = append(os.Environ(), childEnv+"="+dir)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		reported := map[uint64]string{}
		r := bufio.NewReader(out)
		killed := false
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				break // EOF after the kill; a partial line is not a report
			}
			f := strings.Fields(line)
			if len(f) != 2 {
				continue
			}
			seq, err := strconv.ParseUint(f[0], 10, 64)
			if err != nil {
				t.Fatalf("child wrote %q", line)
			}
			reported[seq] = f[1]
			if len(reported) == 150 && !killed {
				if err := cmd.Process.Kill(); err != nil {
					t.Fatal(err)
				}
				killed = true
			}
		}
		_ = cmd.Wait()
		if !killed {
			t.Fatalf("child ended before the kill after %d records: %s", len(reported), stderr.String())
		}

		s, err := Open(dir, Options{Logger: quiet()})
		if err != nil {
			t.Fatal(err)
		}
		recs := readAll(s)
		if !slices.IsSorted(seqsOf(recs)) {
			t.Fatalf("records out of order: %v", seqsOf(recs))
		}
		have := map[uint64]string{}
		for _, rec := range recs {
			have[rec.Seq] = string(rec.Data)
		}
		for seq, data := range reported {
			if have[seq] != data {
				t.Fatalf("round %d: reported seq %d (%q) not durable: got %q", round, seq, data, have[seq])
			}
		}
		// Nothing was acked or dropped: the records are 1..n without gaps.
		if n := uint64(len(recs)); n == 0 || recs[0].Seq != 1 || recs[n-1].Seq != n {
			t.Fatalf("round %d: records %d..%d, %d of them", round, recs[0].Seq, recs[len(recs)-1].Seq, n)
		}
		t.Logf("round %d: %d reported, %d in the spool", round, len(reported), len(recs))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func killChild(dir string) {
	s, err := Open(dir, Options{Logger: quiet(), SegmentBytes: 2048})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(2)
	}
	stop := time.Now().Add(20 * time.Second) // do not outlive a dead parent
	for i := 0; time.Now().Before(stop); i++ {
		data := fmt.Sprintf("rec-%d", i)
		seq, err := s.Append([]byte(data))
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
		if _, err := fmt.Fprintf(os.Stdout, "%d %s\n", seq, data); err != nil {
			os.Exit(3)
		}
	}
	os.Exit(4)
}

// FuzzOpen writes arbitrary bytes as a segment file: Open must not panic and
// Read must return only records whose checksum is right.
func FuzzOpen(f *testing.F) {
	var valid []byte
	for i := 1; i <= 4; i++ {
		valid = append(valid, encode(uint64(i), payload(i-1))...)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-3])
	flipped := bytes.Clone(valid)
	flipped[20] ^= 1
	f.Add(flipped)
	f.Add(append(bytes.Clone(valid), make([]byte, 64)...))
	f.Add(encode(1<<63, []byte("huge seq")))
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})

	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		if err := os.WriteFile(filepath.Join(dir, segName(1)), b, 0o640); err != nil {
			t.Fatal(err)
		}
		s, err := Open(dir, Options{Logger: quiet()})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		defer s.Close()
		recs := readAll(s)
		var last uint64
		for _, r := range recs {
			if r.Seq <= last {
				t.Fatalf("seq %d after %d", r.Seq, last)
			}
			last = r.Seq
			if !bytes.Contains(b, encode(r.Seq, r.Data)) {
				t.Fatalf("record %d is not a valid record of the input", r.Seq)
			}
		}
		seq, err := s.Append([]byte("after"))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if seq <= last {
			t.Fatalf("Append got seq %d after %d", seq, last)
		}
		if got := s.Read(seq-1, 1, nil); len(got) != 1 || string(got[0].Data) != "after" {
			t.Fatalf("appended record not readable: %v", got)
		}
	})
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{256, 4096} {
		b.Run(strconv.Itoa(size), func(b *testing.B) {
			s := open(b, b.TempDir(), Options{})
			data := bytes.Repeat([]byte("e"), size)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.Append(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendParallel shows group commit: concurrent Appends share fsyncs.
func BenchmarkAppendParallel(b *testing.B) {
	s := open(b, b.TempDir(), Options{})
	data := bytes.Repeat([]byte("e"), 256)
	b.ReportAllocs()
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := s.Append(data); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
