package history

import (
	"math"
	"slices"
	"testing"
)

// step is one input to a watermark: a stored seq, or a missing range.
type step struct {
	stored  uint64
	missing *Range
}

func st(seqs ...uint64) []step {
	out := make([]step, len(seqs))
	for i, s := range seqs {
		out[i] = step{stored: s}
	}
	return out
}

func miss(from, to uint64) step { return step{missing: &Range{from, to}} }

func TestWatermark(t *testing.T) {
	type want struct {
		seq, lost uint64
		gap       bool
		above     int
		missing   []Range
	}
	tests := []struct {
		name  string
		start *watermark // nil: empty
		steps []step
		want  want
	}{
		{"empty", nil, nil, want{}},
		{"in order", nil, st(1, 2, 3), want{seq: 3}},
		{"out of order", nil, st(2, 3, 1), want{seq: 3}},
		{"duplicates", nil, st(1, 1, 2, 2, 1), want{seq: 2}},
		{"gap", nil, st(1, 2, 4, 5), want{seq: 2, gap: true, above: 2}},
		{"gap filled", nil, st(1, 2, 4, 5, 3), want{seq: 5}},
		{"first seq never came", nil, st(2, 3), want{seq: 0, gap: true, above: 2}},
		{"missing fills gap", nil, append(st(1, 2, 5), miss(3, 4)), want{seq: 5, lost: 2}},
		{"missing before it is needed", nil, append([]step{miss(3, 4)}, st(1, 2, 5)...), want{seq: 5, lost: 2}},
		{"missing range partly stored", nil, append(st(1, 3), miss(2, 4)), want{seq: 4, lost: 2}},
		{"missing range all stored", nil, append(st(1, 2, 3), miss(2, 3)), want{seq: 3}},
		{"missing under W ignored", nil, append(st(1, 2, 3), miss(1, 2)), want{seq: 3}},
		{"missing straddles W", nil, append(st(1, 2), miss(1, 4)), want{seq: 4, lost: 2}},
		{"missing ahead kept", nil, append(st(1), miss(5, 6)), want{seq: 1, missing: []Range{{5, 6}}}},
		{"missing ranges merge", nil, []step{miss(5, 6), miss(7, 9), miss(3, 3)}, want{missing: []Range{{3, 3}, {5, 9}}}},
		{"missing overlapping merge", nil, []step{miss(5, 8), miss(6, 12), miss(2, 5)}, want{missing: []Range{{2, 12}}}},
		{"missing then stored inside it", nil, []step{miss(2, 4), {stored: 3}, {stored: 1}}, want{seq: 4, lost: 2}},
		{"missing from zero", nil, []step{miss(0, 2)}, want{seq: 2, lost: 2}},
		{"inverted range ignored", nil, []step{miss(3, 1)}, want{}},
		{"missing to the end of seqs", nil, []step{{stored: 1}, miss(2, math.MaxUint64)}, want{seq: math.MaxUint64, lost: math.MaxUint64 - 1}},
		{"stored after max", nil, []step{miss(1, math.MaxUint64), {stored: 5}}, want{seq: math.MaxUint64, lost: math.MaxUint64}},
		{"restart keeps W", newWatermark(10, 1, nil, nil), st(11, 12), want{seq: 12, lost: 1}},
		{"restart with stored above", newWatermark(10, 0, nil, []uint64{12, 13, 5}), st(11), want{seq: 13}},
		{"restart with missing ranges", newWatermark(10, 0, []Range{{11, 11}, {14, 15}}, []uint64{12}), st(13), want{seq: 15, lost: 3}},
		{"restart whose state covers itself", newWatermark(10, 0, nil, []uint64{11, 12}), nil, want{seq: 12}},
		{"agent seqs restart at 1", newWatermark(500, 0, nil, nil), st(1, 2, 3), want{seq: 500}},
		{"agent seqs restart at 1, then pass W", newWatermark(3, 0, nil, nil), st(1, 2, 3, 4, 5), want{seq: 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := tt.start
			if w == nil {
				w = newWatermark(0, 0, nil, nil)
			}
			for _, s := range tt.steps {
				before := w.Seq()
				var moved bool
				if s.missing != nil {
					moved = w.Missing(*s.missing)
				} else {
					moved = w.Stored(s.stored)
				}
				if moved != (w.Seq() != before) {
					t.Errorf("step %+v: reported moved=%v, W %d -> %d", s, moved, before, w.Seq())
				}
			}
			got := want{seq: w.Seq(), lost: w.Lost(), gap: w.Gap(), above: w.Above(), missing: w.MissingRanges()}
			if got.seq != tt.want.seq || got.lost != tt.want.lost || got.gap != tt.want.gap || got.above != tt.want.above ||
				!slices.Equal(got.missing, tt.want.missing) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestWatermarkRandomOrder: whatever the order of arrival and duplicates,
// W ends at the highest seq of a dense set, with no gap.
func TestWatermarkRandomOrder(t *testing.T) {
	const n = 2000
	for _, seed := range []uint64{1, 2, 3} {
		seqs := make([]uint64, 0, 2*n)
		for i := uint64(1); i <= n; i++ {
			seqs = append(seqs, i, i)
		}
		shuffle(seqs, seed)
		w := newWatermark(0, 0, nil, nil)
		for i, s := range seqs {
			w.Stored(s)
			if w.Seq() > n || (w.Gap() && w.Above() == 0) {
				t.Fatalf("seed %d step %d: W %d above %d", seed, i, w.Seq(), w.Above())
			}
		}
		if w.Seq() != n || w.Gap() || w.Lost() != 0 {
			t.Errorf("seed %d: W %d gap %v lost %d, want %d, no gap, none lost", seed, w.Seq(), w.Gap(), w.Lost(), n)
		}
	}
}

// shuffle is a deterministic Fisher-Yates (xorshift).
func shuffle(s []uint64, seed uint64) {
	x := seed*0x9e3779b97f4a7c15 + 1
	for i := len(s) - 1; i > 0; i-- {
		x ^= x << 13
		x ^= x >> 7
		x ^= x << 17
		j := int(x % uint64(i+1))
		s[i], s[j] = s[j], s[i]
	}
}
