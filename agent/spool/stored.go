package spool

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Reasons Missing gives for seqs the spool will never return (the values of
// schema.MissingDoc.Reason).
const (
	ReasonDropped    = "dropped"    // deleted unacknowledged from a full spool, or acknowledged (deleted) before it was stored
	ReasonUnreadable = "unreadable" // in the spool but damaged
	ReasonUnwritten  = "unwritten"  // the seq was used up by a write that failed
)

// MarkSent records (in memory only) that the pending record seq was
// delivered to the broker: in stored mode the record stays pending, to be
// replayed after a restart and to be sent again on request, until a stored
// watermark covers it (AckThrough). Marking an unknown, acknowledged or
// already sent seq does nothing. The error reports a closed spool.
func (s *Spool) MarkSent(seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("spool %s: mark sent %d: %w", s.dir, seq, os.ErrClosed)
	}
	g, j := s.entryLocked(seq)
	if g == nil || g.ents[j].acked || g.ents[j].sent {
		return nil
	}
	g.ents[j].sent = true
	s.sent++
	return nil
}

// entryLocked finds the record seq (nil if the spool does not hold it).
func (s *Spool) entryLocked(seq uint64) (*segment, int) {
	i := s.findSeg(seq)
	if i == len(s.segs) {
		return nil, 0
	}
	g := s.segs[i]
	j := sort.Search(len(g.ents), func(k int) bool { return g.ents[k].seq >= seq })
	if j == len(g.ents) || g.ents[j].seq != seq {
		return nil, 0
	}
	return g, j
}

// AckThrough acknowledges every pending record with a seq up to through
// (a stored watermark: the consumer of record has stored them all), sent or
// not, and returns how many it acknowledged. Segments left with no pending
// records are deleted (not the active one) and the ack cursor is persisted
// lazily as with Ack. Stats.Stored keeps the highest watermark seen. The
// error reports a closed spool.
func (s *Spool) AckThrough(through uint64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("spool %s: ack through %d: %w", s.dir, through, os.ErrClosed)
	}
	if through > s.stored {
		s.stored = through
	}
	n := 0
	var empty []*segment
	for _, g := range s.segs {
		if len(g.ents) == 0 || g.ents[0].seq > through {
			break
		}
		for j := g.first; j < len(g.ents) && g.ents[j].seq <= through; j++ {
			if !g.ents[j].acked {
				s.ackEntryLocked(g, j)
				n++
			}
		}
		if g.pending == 0 && g != s.active {
			empty = append(empty, g)
		}
	}
	for _, g := range empty {
		s.removeSegLocked(g)
	}
	if n > 0 || len(empty) > 0 {
		s.armFlushLocked()
	}
	return n, nil
}

// Missing returns the first seq above after that Read(after, ...) would
// return next (next), and, when seqs between after and it will never be
// returned, the reason (one of the Reason constants; "" when none is
// missing). Only durable seqs are considered: with nothing to read above
// after, next is the first seq not yet durable, so that a record being
// appended is never called missing. When a missing range mixes causes,
// the reason is the first that applies of unreadable, dropped, unwritten.
// After Close it returns after+1 and "".
func (s *Spool) Missing(after uint64) (next uint64, reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next = after + 1
	if s.closed || after >= s.durable {
		return next, ""
	}
	next = s.durable + 1
	unreadable := false
scan:
	for i := s.findSeg(after + 1); i < len(s.segs); i++ {
		g := s.segs[i]
		j := sort.Search(len(g.ents), func(k int) bool { return g.ents[k].seq > after })
		j = max(j, g.first)
		for ; j < len(g.ents); j++ {
			e := g.ents[j]
			if e.seq > s.durable {
				break scan
			}
			if e.acked {
				continue
			}
			if _, err := readRecord(g.f, e); err != nil {
				s.log.Error("spool: cannot read back record", "file", filepath.Base(g.path), "seq", e.seq, "err", err)
				unreadable = true
				continue
			}
			next = e.seq
			break scan
		}
	}
	switch {
	case next == after+1:
		return next, ""
	case unreadable:
		return next, ReasonUnreadable
	case after+1 <= s.gone:
		return next, ReasonDropped
	}
	return next, ReasonUnwritten
}

// SkipTo makes the next Append's seq at least seq (it never goes
// backwards): for an agent whose spool was wiped while the consumer of
// record remembers higher seqs. Not persisted by itself: a restart before
// the next Append forgets it.
func (s *Spool) SkipTo(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || seq <= s.next || seq > maxSeq {
		return
	}
	s.next = seq
}
