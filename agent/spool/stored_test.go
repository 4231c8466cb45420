package spool

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestStoredMode: records marked sent stay pending until a watermark covers
// them; after a restart the sent-but-not-stored ones are replayed.
func TestStoredMode(t *testing.T) {
	tests := []struct {
		name      string
		segBytes  int64
		sent      []uint64 // MarkSent, in this order
		through   uint64   // AckThrough(through); 0: none
		wantRead  []uint64 // Read(0) after that
		wantSent  int
		wantAcked int // returned by AckThrough
		restart   bool
		wantAfter []uint64 // Read(0) after a Close/Open (restart only)
	}{
		{name: "sent stays pending", sent: []uint64{1, 2, 3}, wantRead: span(1, 10), wantSent: 3},
		{name: "sent twice counts once", sent: []uint64{1, 1, 2, 99}, wantRead: span(1, 10), wantSent: 2},
		{name: "watermark acks sent and unsent", sent: span(1, 6), through: 4, wantRead: span(5, 10), wantSent: 2, wantAcked: 4},
		{name: "watermark beyond the last", sent: span(1, 10), through: 50, wantRead: nil, wantSent: 0, wantAcked: 10},
		{name: "watermark across segments", segBytes: 64, sent: span(1, 10), through: 7, wantRead: span(8, 10), wantSent: 3, wantAcked: 7},
		{name: "sent not stored replayed after restart", sent: span(1, 10), through: 3, wantRead: span(4, 10), wantSent: 7, wantAcked: 3,
			restart: true, wantAfter: span(4, 10)},
		{name: "restart with small segments", segBytes: 64, sent: span(1, 8), through: 5, wantRead: span(6, 10), wantSent: 3, wantAcked: 5,
			restart: true, wantAfter: span(6, 10)},
		{name: "nothing stored: all replayed", sent: span(1, 10), wantRead: span(1, 10), wantSent: 10, restart: true, wantAfter: span(1, 10)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			o := Options{SegmentBytes: tc.segBytes}
			if tc.segBytes > 0 {
				o.MaxBytes = 1 << 20
			}
			s := open(t, dir, o)
			appendN(t, s, 1, 10)
			for _, seq := range tc.sent {
				if err := s.MarkSent(seq); err != nil {
					t.Fatalf("MarkSent(%d): %v", seq, err)
				}
			}
			if tc.through > 0 {
				n, err := s.AckThrough(tc.through)
				if err != nil || n != tc.wantAcked {
					t.Fatalf("AckThrough(%d) = %d, %v; want %d", tc.through, n, err, tc.wantAcked)
				}
			}
			if got := seqsOf(readAll(s)); !slices.Equal(got, tc.wantRead) {
				t.Fatalf("Read = %v, want %v", got, tc.wantRead)
			}
			st := s.Stats()
			if st.Sent != tc.wantSent || st.Stored != tc.through || st.Pending != len(tc.wantRead) {
				t.Fatalf("stats %+v: want Sent %d, Stored %d, Pending %d", st, tc.wantSent, tc.through, len(tc.wantRead))
			}
			if db := diskBytes(t, dir); db != st.Bytes {
				t.Fatalf("on disk %d, Bytes %d", db, st.Bytes)
			}
			if !tc.restart {
				return
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := open(t, dir, o)
			if got := seqsOf(readAll(s2)); !slices.Equal(got, tc.wantAfter) {
				t.Fatalf("after restart Read = %v, want %v", got, tc.wantAfter)
			}
			if st := s2.Stats(); st.Sent != 0 || st.NextSeq != 11 {
				t.Fatalf("after restart stats %+v: sent marks are not persisted, seqs go on", st)
			}
			b, err := os.ReadFile(filepath.Join(dir, ackedName))
			if tc.through > 0 && (err != nil || strings.TrimSpace(string(b)) != fmt.Sprint(tc.through)) {
				t.Fatalf("acked file %q, %v: want the watermark %d", b, err, tc.through)
			}
		})
	}
}

// TestStoredModeBrokerAcksStillWork: Ack and AckThrough mix (auto mode
// switching from broker to stored).
func TestStoredModeMixedAcks(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	appendN(t, s, 1, 6)
	for _, seq := range []uint64{1, 2} {
		if err := s.Ack(seq); err != nil {
			t.Fatal(err)
		}
	}
	for _, seq := range []uint64{3, 4} {
		if err := s.MarkSent(seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Ack(3); err != nil { // a sent record acknowledged directly
		t.Fatal(err)
	}
	if st := s.Stats(); st.Sent != 1 || st.Pending != 3 {
		t.Fatalf("stats %+v", st)
	}
	if n, err := s.AckThrough(5); err != nil || n != 2 {
		t.Fatalf("AckThrough(5) = %d, %v; want 2 (4 and 5)", n, err)
	}
	if got := seqsOf(readAll(s)); !slices.Equal(got, []uint64{6}) {
		t.Fatalf("Read = %v", got)
	}
	if st := s.Stats(); st.Sent != 0 || st.Acked != 5 || st.OldestSeq != 6 {
		t.Fatalf("stats %+v", st)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSent(6); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("MarkSent after Close: %v", err)
	}
	if _, err := s.AckThrough(6); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("AckThrough after Close: %v", err)
	}
}

// TestMissing: what the spool says about seqs it will never return.
func TestMissing(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, s *Spool, dir string)
		after      uint64
		wantNext   uint64
		wantReason string
	}{
		{name: "nothing missing", setup: func(t *testing.T, s *Spool, _ string) { appendN(t, s, 1, 5) },
			after: 2, wantNext: 3},
		{name: "nothing above", setup: func(t *testing.T, s *Spool, _ string) { appendN(t, s, 1, 5) },
			after: 5, wantNext: 6},
		{name: "acknowledged by the broker before it was stored", setup: func(t *testing.T, s *Spool, _ string) {
			appendN(t, s, 1, 5)
			for _, seq := range []uint64{1, 2, 3} {
				_ = s.Ack(seq)
			}
		}, after: 0, wantNext: 4, wantReason: ReasonDropped},
		{name: "everything acknowledged", setup: func(t *testing.T, s *Spool, _ string) {
			appendN(t, s, 1, 5)
			_, _ = s.AckThrough(5)
		}, after: 2, wantNext: 6, wantReason: ReasonDropped},
		{name: "seq used up by a failed write", setup: func(t *testing.T, s *Spool, _ string) {
			appendN(t, s, 1, 2)
			if _, err := s.AppendFunc(func(uint64) ([]byte, error) { return make([]byte, maxPayload+1), nil }); err == nil {
				t.Fatal("oversized AppendFunc succeeded")
			}
			appendN(t, s, 3, 1)
		}, after: 2, wantNext: 4, wantReason: ReasonUnwritten},
		{name: "unreadable record", setup: func(t *testing.T, s *Spool, dir string) {
			appendN(t, s, 1, 3)
			corrupt(t, s, 2)
		}, after: 1, wantNext: 3, wantReason: ReasonUnreadable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := open(t, dir, Options{})
			tc.setup(t, s, dir)
			next, reason := s.Missing(tc.after)
			if next != tc.wantNext || reason != tc.wantReason {
				t.Fatalf("Missing(%d) = %d, %q; want %d, %q", tc.after, next, reason, tc.wantNext, tc.wantReason)
			}
			if recs := s.Read(tc.after, 1, nil); len(recs) == 1 && recs[0].Seq != next {
				t.Fatalf("Read(%d) starts at %d, Missing says %d", tc.after, recs[0].Seq, next)
			}
		})
	}
}

// TestMissingDropped: a full spool drops sent-but-not-stored records too,
// counts them, and Missing names the range dropped.
func TestMissingDropped(t *testing.T) {
	s := open(t, t.TempDir(), Options{MaxBytes: 1024, SegmentBytes: 256})
	data := func(i int) []byte { return []byte(fmt.Sprintf("%048d", i)) }
	for i := 1; i <= 60; i++ {
		seq, err := s.Append(data(i))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.MarkSent(seq); err != nil {
			t.Fatal(err)
		}
	}
	st := s.Stats()
	recs := readAll(s)
	if st.Dropped == 0 || st.Sent != st.Pending || len(recs) != st.Pending {
		t.Fatalf("stats %+v, %d records readable", st, len(recs))
	}
	next, reason := s.Missing(0)
	if next != recs[0].Seq || reason != ReasonDropped || next-1 != st.Dropped {
		t.Fatalf("Missing(0) = %d, %q; first record %d, dropped %d", next, reason, recs[0].Seq, st.Dropped)
	}
}

// TestSkipTo: seqs jump forward, never back.
func TestSkipTo(t *testing.T) {
	s := open(t, t.TempDir(), Options{})
	appendN(t, s, 1, 3)
	s.SkipTo(2) // backwards: nothing
	s.SkipTo(100)
	seqs := appendN(t, s, 4, 1)
	if seqs[0] != 100 {
		t.Fatalf("after SkipTo(100) the next seq is %d", seqs[0])
	}
	if next, reason := s.Missing(3); next != 100 || reason != ReasonUnwritten {
		t.Fatalf("Missing(3) = %d, %q", next, reason)
	}
}

// corrupt flips a payload byte of the record seq in its segment file.
func corrupt(t *testing.T, s *Spool, seq uint64) {
	t.Helper()
	s.mu.Lock()
	g, j := s.entryLocked(seq)
	if g == nil {
		s.mu.Unlock()
		t.Fatalf("no record %d", seq)
	}
	path, off := g.path, g.ents[j].off+headerSize
	s.mu.Unlock()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}
