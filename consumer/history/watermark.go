package history

import (
	"maps"
	"math"
	"slices"
)

// Range is an inclusive range of event seqs.
type Range struct {
	From uint64 `json:"from"`
	To   uint64 `json:"to"`
}

// watermark is the delivery state of one agent (protocol.md, consumer of
// record 3): seq is W, the highest seq such that every seq 1..W is stored or
// declared missing; above holds the stored seqs over W and missing the
// declared-missing ranges over W (sorted, disjoint, not adjacent). It knows
// nothing of MQTT or SQL: the store applies it inside the transaction that
// stores the events, so W never covers an event that is not committed.
type watermark struct {
	seq     uint64
	lost    uint64 // seqs W passed because they were declared missing, not stored
	above   map[uint64]struct{}
	missing []Range
}

func newWatermark(seq, lost uint64, missing []Range, above []uint64) *watermark {
	w := &watermark{seq: seq, lost: lost, above: map[uint64]struct{}{}}
	for _, r := range missing {
		w.addMissing(r)
	}
	for _, s := range above {
		if s > seq {
			w.above[s] = struct{}{}
		}
	}
	w.advance()
	return w
}

// Stored records that seq is durably stored and reports whether W moved. A
// seq at or under W changes nothing: it is covered already (a duplicate, or
// an agent whose seqs restarted at 1 after its state was wiped).
func (w *watermark) Stored(seq uint64) bool {
	if seq <= w.seq {
		return false
	}
	w.above[seq] = struct{}{}
	return w.advance()
}

// Missing records seqs r.From..r.To that the agent declared it will never
// send, and reports whether W moved. An empty or inverted range, or one at
// or under W, changes nothing.
func (w *watermark) Missing(r Range) bool {
	if r.From == 0 {
		r.From = 1
	}
	if r.To < r.From || r.To <= w.seq {
		return false
	}
	r.From = max(r.From, w.seq+1)
	w.addMissing(r)
	return w.advance()
}

func (w *watermark) clone() *watermark {
	c := *w
	c.above = maps.Clone(w.above)
	c.missing = slices.Clone(w.missing)
	return &c
}

// Gap reports whether seqs over W are stored: W+1 has not arrived.
func (w *watermark) Gap() bool { return len(w.above) > 0 }

// Seq is W.
func (w *watermark) Seq() uint64 { return w.seq }

// Lost counts the seqs W passed as declared missing.
func (w *watermark) Lost() uint64 { return w.lost }

// Above is how many seqs over W are stored.
func (w *watermark) Above() int { return len(w.above) }

// MissingRanges are the declared-missing ranges over W (a copy), which the
// store persists.
func (w *watermark) MissingRanges() []Range { return slices.Clone(w.missing) }

// addMissing inserts r into the sorted ranges, merging overlapping and
// adjacent ones.
func (w *watermark) addMissing(r Range) {
	if r.To < r.From || r.To <= w.seq {
		return
	}
	out := make([]Range, 0, len(w.missing)+1)
	placed := false
	for _, m := range w.missing {
		switch {
		case m.To != math.MaxUint64 && m.To+1 < r.From:
			out = append(out, m) // wholly before r
		case r.To != math.MaxUint64 && r.To+1 < m.From:
			if !placed {
				out = append(out, r)
				placed = true
			}
			out = append(out, m) // wholly after r
		default: // overlapping or adjacent: absorb into r
			r.From, r.To = min(r.From, m.From), max(r.To, m.To)
		}
	}
	if !placed {
		out = append(out, r)
	}
	w.missing = out
}

// advance moves W over stored and declared-missing seqs; it reports whether
// W moved.
func (w *watermark) advance() bool {
	start := w.seq
	for w.seq != math.MaxUint64 {
		next := w.seq + 1
		if _, ok := w.above[next]; ok {
			delete(w.above, next)
			w.seq = next
			continue
		}
		for len(w.missing) > 0 && w.missing[0].To < next {
			w.missing = w.missing[1:]
		}
		if len(w.missing) == 0 || w.missing[0].From > next {
			break
		}
		r := w.missing[0]
		w.missing = w.missing[1:]
		// next..r.To: declared missing, except those stored anyway.
		n := r.To - next + 1
		for s := range w.above {
			if s >= next && s <= r.To {
				delete(w.above, s)
				n--
			}
		}
		w.lost += n
		w.seq = r.To
	}
	if len(w.missing) == 0 {
		w.missing = nil
	}
	return w.seq != start
}
