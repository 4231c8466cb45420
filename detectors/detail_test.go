package detectors

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestGridRatio(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 9))
	noisy := func(x, y int) byte { return byte(100 + r.IntN(40)) }
	tests := []struct {
		name   string
		pix    func(x, y int) byte
		lo, hi float64
	}{
		{"flat picture", func(int, int) byte { return 80 }, 1, 1},
		{"smooth gradient: no grid", smoothGradient, 0.9, 1.1},
		{"noise: no grid", noisy, 0.9, 1.1},
		{"flat 8x8 blocks: all the steps on the grid", blockyGradient, 10, math.Inf(1)},
		{"soft block edges", softEdges, 1.2, math.Inf(1)},
	}
	for _, tc := range tests {
		f := newFrame8(blockW, blockH, blockW, 0, tc.pix)
		var bf BlockFeature
		MeasureBlockiness(f, 32, 12, 1, 1, false, &bf)
		if got := bf.GridRatio(); got < tc.lo || got > tc.hi {
			t.Errorf("%s: GridRatio = %.3f, want in [%v, %v] (%+v)", tc.name, got, tc.lo, tc.hi, bf)
		}
	}
	if got := (BlockFeature{}).GridRatio(); got != 1 {
		t.Errorf("no positions: GridRatio = %v, want 1", got)
	}
}

// ratioFeature is a BlockFeature whose GridRatio is r, at a steady detail.
func ratioFeature(r float64) BlockFeature { return detailFeature(r, 3) }

func TestDetailLossDetector(t *testing.T) {
	const fps = 25
	steady := func(r float64) func(int) float64 { return func(int) float64 { return r } }
	jump := func(from, to float64, first, end int) func(int) float64 {
		return func(i int) float64 {
			if i >= first && i < end {
				return to
			}
			return from
		}
	}
	grey := func(int) float64 { return 0.5 }
	tests := []struct {
		name  string
		ratio func(frame int) float64
		luma  func(frame int) float64
		want  []span
		// blocky: the blockiness alarm covers the frame (nil: never).
		blocky func(frame int) bool
	}{
		{"clean content, steady ratio", steady(1.1), grey, nil, nil},
		{"an encoder that always leaves a grid", steady(3), grey, nil, nil},
		{"starved 2.0 to 4.0 s", jump(1.2, 2.5, 50, 100), grey, []span{{2, 4}}, nil},
		{"starved from a high recent level", jump(1.6, 2.4, 50, 100), grey, []span{{2, 4}}, nil},
		{"a jump too small for factor", jump(1.3, 1.6, 50, 100), grey, nil, nil},
		// Interior detail holds while the grid ratio rises 1.3 times: under
		// collapse (1.4), and 1.3 is under min_ratio for the grid cue.
		{"a jump to under min_ratio", jump(1.0, 1.3, 50, 100), grey, nil, nil},
		{"shorter than min_duration", jump(1.2, 2.5, 50, 60), grey, nil, nil},
		{"one clean frame splits the run", func(i int) float64 {
			if i == 75 {
				return 1.2
			}
			return jump(1.2, 2.5, 50, 100)(i)
		}, grey, []span{{2, 3}, {3.04, 4}}, nil},
		{"a spiky ratio (dark pictures: every other frame high)", func(i int) float64 {
			if i%2 == 1 {
				return 1.9
			}
			return 1.0
		}, grey, nil, nil},
		{"a fade from black to blockier content: new content each frame", func(i int) float64 { return 1.1 + min(1.2, 0.03*float64(i)) },
			func(i int) float64 { return min(0.8, 0.01*float64(i)) }, nil, nil},
		{"starved, but blockiness covers 2.0 to 3.0 s", jump(1.2, 2.5, 50, 100), grey, []span{{3, 4}},
			func(i int) bool { return i >= 50 && i < 75 }},
		{"a cut to content with more grid", jump(1.2, 2.5, 50, 150), func(i int) float64 {
			if i >= 50 {
				return 0.3
			}
			return 0.5
		}, nil, nil},
		{"slow drift (0.05 a second) is followed", func(i int) float64 { return 1.1 + 0.002*float64(i) }, grey, nil, nil},
		{"starved from the first frame: no recent level to compare with", jump(1.2, 2.5, 0, 100), grey, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
			for i := 0; i < 150; i++ {
				f := ratioFeature(tc.ratio(i))
				if tc.name == "a jump to under min_ratio" || tc.name == "a jump too small for factor" {
					// The grid cue alone: interior detail holds, so the
					// collapse cue sees only the ratio's rise (under collapse).
					f = gridFeature(tc.ratio(i))
				}
				d.Video(float64(i)/fps, 1.0/fps, tc.luma(i), 0, 0, false, false, &f, tc.blocky != nil && tc.blocky(i))
			}
			d.Flush(6)
			checkSpans(t, log.events, tc.want, 1e-9)
			for _, e := range log.events {
				if e.Defect != DetailLoss || e.Values["ratio_vs_recent"] < DefaultDetailLossConfig().Factor {
					t.Errorf("%v values %v, want detail_loss with ratio_vs_recent >= factor", e, e.Values)
				}
			}
		})
	}
}

// gridFeature is a BlockFeature with GridRatio r at a steady interior detail (3 levels).
func gridFeature(r float64) BlockFeature {
	const n = 10000
	return BlockFeature{Positions: n, ControlSum: 3 * n, GridSum: uint64(math.Round(n * (r*(3+detailFloor) - detailFloor)))}
}

// detailFeature is a BlockFeature with GridRatio r and Detail dt.
func detailFeature(r, dt float64) BlockFeature {
	const n = 10000
	c := (2*dt + detailFloor - r*detailFloor) / (1 + r)
	return BlockFeature{Positions: n, ControlSum: uint64(math.Round(n * c)), GridSum: uint64(math.Round(n * (2*dt - c)))}
}

func TestDetailLossDrop(t *testing.T) {
	starved := func(i int) bool { return i >= 50 && i < 100 }
	tests := []struct {
		name   string
		detail func(frame int) float64
		ratio  func(frame int) float64
		want   []span
	}{
		{"steady detail", func(int) float64 { return 3 }, nil, nil},
		// The tune split's HEVC onsets at QP 51: the grid ratio rises 11-34%
		// on the first starved frame while detail halves.
		{"detail halves at once 2.0 to 4.0 s (HEVC at QP 51)", func(i int) float64 {
			if starved(i) {
				return 1.2
			}
			return 3
		}, func(i int) float64 {
			if starved(i) {
				return 1.25
			}
			return 1.1
		}, []span{{2, 4}}},
		{"a cut to softer content: detail halves at once, the grid ratio does not rise", func(i int) float64 {
			if i >= 50 {
				return 1.2
			}
			return 3
		}, nil, nil},
		{"focus pull: detail falls to a third over 1.5 s", func(i int) float64 {
			return 3 - 2*min(1, max(0, float64(i-50)/37.5))
		}, nil, nil},
		{"flat picture, detail under the floor, on a dark picture", func(i int) float64 {
			if i >= 50 {
				return 0.05
			}
			return 0.3
		}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
			for i := 0; i < 150; i++ {
				r := 1.1
				if tc.ratio != nil {
					r = tc.ratio(i)
				}
				f := detailFeature(r, tc.detail(i))
				if got := f.Detail(); math.Abs(got-tc.detail(i)) > 1e-3 {
					t.Fatalf("detailFeature: Detail %v, want %v", got, tc.detail(i))
				}
				luma := 0.5
				if strings.HasPrefix(tc.name, "flat picture") {
					luma = 0.04 // under collapseDark: the collapse cue does not judge it
				}
				d.Video(float64(i)/25, 1.0/25, luma, 0, 0, false, false, &f, false)
			}
			d.Flush(6)
			checkSpans(t, log.events, tc.want, 1e-9)
		})
	}
}

// collapseFeature is a BlockFeature with interior detail in (8-bit levels),
// texture share tex and grid ratio r.
func collapseFeature(in, tex, r float64) BlockFeature {
	const n = 100000
	return BlockFeature{Positions: n, ControlSum: uint64(math.Round(n * in)),
		GridSum: uint64(math.Round(n * (r*(in+detailFloor) - detailFloor))), Flat: int(math.Round(n * (1 - tex)))}
}

// TestDetailLossCollapse: the collapse cue (flat block interiors, interior
// detail and grid ratio judged together against the last 0.25 s), on
// features shaped like the tune split's starved encodes and their neighbours.
func TestDetailLossCollapse(t *testing.T) {
	type frame struct{ in, tex, r, luma, motion float64 }
	clean := frame{2.4, 0.61, 1.0, 0.5, 0.7}
	// HEVC at QP 51 on a studio shot (the weakest tune case): every cue moves a little.
	starved := frame{1.88, 0.53, 1.15, 0.5, 5.8}
	starvedOn := func(first, end int) func(int) frame {
		return func(i int) frame {
			if i >= first && i < end {
				f := starved
				if i > first {
					f.motion = 0.5
				}
				return f
			}
			return clean
		}
	}
	tests := []struct {
		name  string
		frame func(i int) frame
		want  []span
	}{
		{"steady clean picture", func(int) frame { return clean }, nil},
		{"starved 2.0 to 4.0 s: the event starts on the first starved frame", starvedOn(50, 100), []span{{2, 4}}},
		{"half the collapse: not starved", func(i int) frame {
			if i >= 50 && i < 100 {
				return frame{2.15, 0.57, 1.07, 0.5, 0.7}
			}
			return clean
		}, nil},
		{"focus pull: the same fall over 1.5 s", func(i int) frame {
			k := min(1, max(0, float64(i-50)/37.5))
			return frame{2.4 - 0.8*k, 0.61 - 0.15*k, 1 + 0.2*k, 0.5, 0.7}
		}, nil},
		{"fast focus pull: the same fall over 0.5 s (a ramp: no step starts a run)", func(i int) frame {
			k := min(1, max(0, float64(i-50)/12))
			return frame{2.4 - 0.8*k, 0.61 - 0.15*k, 1 + 0.2*k, 0.5, 0.7}
		}, nil},
		{"a cut to flatter content (the picture moves far more than its detail)", func(i int) frame {
			if i >= 50 {
				f := starved
				f.motion = 30
				if i > 50 {
					f.motion = 0.5
				}
				return f
			}
			return clean
		}, nil},
		{"a cut to softer content: interior and texture fall at once, the grid ratio does not rise", func(i int) frame {
			// Big Buck Bunny at 5.1 s (the tune split's clean_plain clip):
			// interior 3.35 to 1.8, texture 0.79 to 0.61, ratio 1.02 to 1.02,
			// motion 4.9 levels (under the cut test's 8 x interior).
			if i >= 50 {
				return frame{1.3, 0.45, 1.0, 0.5, 4.9}
			}
			return clean
		}, nil},
		{"a cut by mean luma", func(i int) frame {
			if i >= 50 {
				f := starved
				f.luma = 0.6
				return f
			}
			return clean
		}, nil},
		{"a dark picture", func(i int) frame {
			f := starvedOn(50, 100)(i)
			f.luma = 0.04
			return f
		}, nil},
		{"a fade inside a starved stretch does not end it", func(i int) frame {
			f := starvedOn(50, 100)(i)
			if i > 50 && i < 100 {
				f.luma = 0.5 + 0.01*float64(i-50)
			}
			return f
		}, []span{{2, 4}}},
		{"starved from the first frame: nothing to compare with", starvedOn(0, 100), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
			for i := 0; i < 150; i++ {
				fr := tc.frame(i)
				f := collapseFeature(fr.in, fr.tex, fr.r)
				d.Video(float64(i)/25, 1.0/25, fr.luma, fr.motion, 0, false, false, &f, false)
			}
			d.Flush(6)
			checkSpans(t, log.events, tc.want, 1e-9)
		})
	}
}

func TestDetailLossSlow(t *testing.T) {
	// Detail falls from 3 to 0.9 between frames 50 and 100 (2.0 to 4.0 s).
	fall := func(i int) float64 { return 3 - 2.1*min(1, max(0, float64(i-50)/50)) }
	tests := []struct {
		name  string
		ratio func(frame int) float64
		want  bool
	}{
		{"starved P-frames: detail fades while the grid ratio climbs", func(i int) float64 { return 1 + 0.6*min(1, max(0, float64(i-50)/50)) }, true},
		{"focus pull: detail fades, no grid", func(int) float64 { return 1 }, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
			for i := 0; i < 100; i++ {
				f := detailFeature(tc.ratio(i), fall(i))
				d.Video(float64(i)/25, 1.0/25, 0.5, 0, 0, false, false, &f, false)
			}
			d.Flush(4)
			if got := len(log.events) > 0; got != tc.want {
				t.Errorf("alarm %v, want %v: %v", got, tc.want, log.events)
			}
			if tc.want && len(log.events) == 2 && (log.events[0].Start < 2 || log.events[1].End != 4) {
				t.Errorf("alarm %v, want one inside 2.0-4.0 s ending at 4.0", log.events)
			}
		})
	}
}

func TestDetailLossBadInput(t *testing.T) {
	var log eventLog
	d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
	for i := 0; i < 100; i++ {
		f := BlockFeature{} // no positions: a picture too small to measure
		d.Video(float64(i)/25, 1.0/25, 0.5, 0, 0, false, false, &f, false)
		d.Video(float64(i)/25, 0, 0.5, 0, 0, false, false, &f, false)
	}
	d.Flush(4)
	if len(log.events) != 0 {
		t.Errorf("unmeasurable pictures raised %v", log.events)
	}
}

// BenchmarkDetailLossDecision: every cue, the quantizer's included (a
// software H.264 stream's rhythm at 25 fps).
func BenchmarkDetailLossDecision(b *testing.B) {
	d := NewDetailLossDetector(DefaultDetailLossConfig(), nil)
	f := ratioFeature(1.2)
	b.ReportAllocs()
	t, i := 0.0, 0
	for b.Loop() {
		d.Video(t, 0.04, 0.5, 0, 18+float64(i%3), true, false, &f, false)
		t += 0.04
		i++
	}
}
