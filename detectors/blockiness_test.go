package detectors

import (
	"math"
	"math/rand/v2"
	"testing"
)

const blockW, blockH = 160, 96

// triangle is a triangle wave of period 10 and height 5 over u.
func triangle(u float64) float64 {
	m := math.Mod(u, 10)
	if m > 5 {
		return 10 - m
	}
	return m
}

// smoothGradient rises and falls by 4.5 levels a pixel along x and y: no step
// anywhere reaches the 32-level minimum.
func smoothGradient(x, y int) byte {
	return byte(16 + math.Round(36*triangle(float64(x+y)/8)))
}

// blockyGradient is smoothGradient quantised to flat 8x8 blocks: neighbouring
// blocks differ by 36 levels, inside a block nothing changes.
func blockyGradient(x, y int) byte { return quantisedGradient(36)(x, y) }

// quantisedGradient returns a gradient of flat 8x8 blocks, neighbouring
// blocks differing by step levels.
func quantisedGradient(step int) func(x, y int) byte {
	return func(x, y int) byte { return byte(16 + float64(step)*triangle(float64(x/8+y/8))) }
}

// softEdges has flat 8x8 blocks alternating by 90 levels both ways, each
// boundary blurred over four samples (0, 25, 65, 90 of the way): the 40-level
// difference across the grid is not more than twice its neighbours (25), so
// it is an edge of the picture, not a coding step.
func softEdges(x, y int) byte {
	profile := func(p int) float64 {
		k, m := p/8, p%8
		level := func(k int) float64 { return float64(90 * (k % 2)) }
		lo, hi := level(k-1+2), level(k+2) // +2 keeps k-1 positive
		switch m {
		case 0: // first sample of block k
			return lo + (hi-lo)*65/90
		case 7: // last sample of block k
			return hi + (level(k+3)-hi)*25/90
		}
		return hi
	}
	return byte(16 + math.Round(profile(x)+profile(y)))
}

// valueNoise returns a natural-looking texture: random levels on a lattice
// of cell pixels (not aligned with the 8x8 grid), bilinearly interpolated,
// plus per-pixel grain of up to +-grain levels.
func valueNoise(seed uint64, w, h, cell, grain int) *VideoFrame {
	r := rand.New(rand.NewPCG(seed, 99))
	gw, gh := w/cell+2, h/cell+2
	lat := make([]float64, gw*gh)
	for i := range lat {
		lat[i] = 30 + 190*r.Float64()
	}
	return newFrame8(w, h, w, 0, func(x, y int) byte {
		cx, cy := x/cell, y/cell
		fx, fy := float64(x%cell)/float64(cell), float64(y%cell)/float64(cell)
		top := lat[cy*gw+cx]*(1-fx) + lat[cy*gw+cx+1]*fx
		bot := lat[(cy+1)*gw+cx]*(1-fx) + lat[(cy+1)*gw+cx+1]*fx
		v := top*(1-fy) + bot*fy + float64(r.IntN(2*grain+1)-grain)
		return byte(min(max(v, 16), 235))
	})
}

func TestMeasureBlockiness(t *testing.T) {
	cfg := DefaultBlockinessConfig()
	threshold, picture := cfg.Threshold, cfg.PictureThreshold
	letterbox := func(x, y int) byte { // black bar above line 48, a smooth picture below
		if y < 48 {
			return 16
		}
		return byte(90 + x/4)
	}
	pillarbox := func(x, y int) byte { // black bar left of column 32
		if x < 32 {
			return 16
		}
		return byte(90 + y/4)
	}
	type bounds struct{ min, max float64 }
	tests := []struct {
		name       string
		frame      *VideoFrame
		band       bounds // bounds on Score (the worst band, strong steps)
		picture    bounds // bounds on PictureScoreShare (whole picture, moderate steps)
		wantSteps  bool   // grid steps must be seen (the frame has edges on the grid)
		frameNear0 bool   // FrameScore must be about 0
	}{
		{"smooth gradient", newFrame8(blockW, blockH, blockW, 0, smoothGradient), bounds{0, 0}, bounds{0, 0}, false, true},
		{"flat grey", uniformFrame8(blockW, blockH, 128), bounds{0, 0}, bounds{0, 0}, false, true},
		{"gradient quantised to 8x8 blocks, steps of 36", newFrame8(blockW, blockH, blockW, 0, blockyGradient),
			bounds{0.9, 1}, bounds{0.9, 1}, true, false},
		{"gradient quantised to 8x8 blocks, steps of 16", newFrame8(blockW, blockH, blockW, 0, quantisedGradient(16)),
			bounds{0, 0}, bounds{0.9, 1}, false, true},
		{"blurred edges on the grid", newFrame8(blockW, blockH, blockW, 0, softEdges),
			bounds{0, 0}, bounds{0, 0}, false, true},
		{"letterbox bar edge on the grid", newFrame8(blockW, blockH, blockW, 0, letterbox),
			bounds{0, threshold / 2}, bounds{0, picture / 2}, true, false},
		{"pillarbox bar edge on the grid", newFrame8(640, blockH, 640, 0, pillarbox),
			bounds{0, threshold / 2}, bounds{0, picture / 2}, true, false},
		{"natural texture, light grain", valueNoise(1, 640, 360, 11, 3),
			bounds{-1, threshold / 2}, bounds{-1, picture / 2}, false, true},
		{"natural texture, medium grain", valueNoise(2, 640, 360, 11, 12),
			bounds{-1, threshold / 2}, bounds{-1, picture / 2}, false, true},
		{"natural texture, large features", valueNoise(3, 640, 360, 23, 12),
			bounds{-1, threshold / 2}, bounds{-1, picture / 2}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, s := range []struct{ row, col int }{{1, 1}, {8, 8}, {3, 5}} {
				var f BlockFeature
				MeasureBlockiness(tc.frame, cfg.MinStep, cfg.PictureMinStep, s.row, s.col, false, &f)
				if sc := f.Score(); sc < tc.band.min || sc > tc.band.max {
					t.Errorf("sampling %v: band score %v, want in %v (%+v)", s, sc, tc.band, f)
				}
				if sc := f.PictureScoreShare(); sc < tc.picture.min || sc > tc.picture.max {
					t.Errorf("sampling %v: picture score %v, want in %v (%+v)", s, sc, tc.picture, f)
				}
				if f.Band < 0 || f.Positions == 0 {
					t.Errorf("sampling %v: no band scored (%+v)", s, f)
				}
				if tc.wantSteps && f.Steps == 0 {
					t.Errorf("sampling %v: no grid step seen: the test frame is wrong (%+v)", s, f)
				}
				if fs := f.FrameScore(); tc.frameNear0 && math.Abs(fs) > 0.01 {
					t.Errorf("sampling %v: frame score %v, want about 0", s, fs)
				}
			}
		})
	}
}

func TestMeasureBlockinessSmallFrame(t *testing.T) {
	for _, wh := range [][2]int{{15, 64}, {64, 15}, {0, 0}} {
		f := BlockFeature{Band: 3, BandScore: 7, Positions: 1}
		MeasureBlockiness(uniformFrame8(wh[0], wh[1], 16), 32, 12, 1, 1, false, &f)
		if f != (BlockFeature{Band: -1}) || f.Score() != 0 || f.FrameScore() != 0 {
			t.Errorf("%dx%d: got %+v, want nothing measured", wh[0], wh[1], f)
		}
	}
}

func TestMeasureBlockiness10BitMatches8Bit(t *testing.T) {
	r := rand.New(rand.NewPCG(4, 4))
	tests := []struct {
		name  string
		frame *VideoFrame
	}{
		{"blocky", newFrame8(blockW, blockH, blockW+8, 0, blockyGradient)},
		{"texture", valueNoise(5, 200, 120, 7, 20)},
		{"random bytes", newFrame8(168, 72, 170, 0, func(int, int) byte { return byte(r.IntN(256)) })},
		{"odd size", newFrame8(131, 77, 131, 0, func(x, y int) byte { return blockyGradient(x, y) + byte(r.IntN(9)) })},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f10 := to10Bit(tc.frame, 10)
			for _, s := range []struct{ row, col int }{{1, 1}, {8, 8}, {2, 3}} {
				var a, b BlockFeature
				MeasureBlockiness(tc.frame, 32, 12, s.row, s.col, false, &a)
				MeasureBlockiness(f10, 32, 12, s.row, s.col, false, &b)
				if a != b {
					t.Errorf("sampling %v: 8-bit %+v, 10-bit %+v", s, a, b)
				}
			}
		})
	}
}

func TestBlockinessDetector(t *testing.T) {
	const fps = 25
	cfg := DefaultBlockinessConfig()
	measure := func(pix func(x, y int) byte) *BlockFeature {
		var f BlockFeature
		MeasureBlockiness(newFrame8(blockW, blockH, blockW, 0, pix), cfg.MinStep, cfg.PictureMinStep, 8, 8, false, &f)
		return &f
	}
	blocky, moderate, clean := measure(blockyGradient), measure(quantisedGradient(16)), measure(smoothGradient)
	if blocky.Score() != 1 || moderate.Score() != 0 || moderate.PictureScoreShare() != 1 || clean.Score() != 0 || clean.PictureScoreShare() != 0 {
		t.Fatalf("test frames: blocky %+v, moderate %+v, clean %+v", blocky, moderate, clean)
	}
	// Frames 25..49 (1.0..2.0 s) are blocky, except every third one.
	intermittent := func(i int) bool { return i >= 25 && i < 50 && (i-25)%3 != 2 }
	steady := func(i int) bool { return i >= 25 && i < 50 }
	tests := []struct {
		name       string
		clearAfter float64
		bad        func(i int) bool
		feature    *BlockFeature
		want       []span
		score      float64 // the score in Values: on the band scale
	}{
		{"intermittent for 1 s is one alarm", cfg.ClearAfter, intermittent, blocky, []span{{1, 2}}, 1},
		{"without clear_after the runs are too short", 0, intermittent, blocky, nil, 0},
		{"steady for 1 s", cfg.ClearAfter, steady, blocky, []span{{1, 2}}, 1},
		{"steady for 0.4 s is too short", cfg.ClearAfter, func(i int) bool { return i >= 25 && i < 35 }, blocky, nil, 0},
		{"two bursts 0.4 s apart are two alarms", cfg.ClearAfter,
			func(i int) bool { return (i >= 25 && i < 50) || (i >= 60 && i < 80) }, blocky, []span{{1, 2}, {2.4, 3.2}}, 1},
		// The picture score is scaled so that it reads Threshold at PictureThreshold.
		{"moderate blocking over the whole picture", cfg.ClearAfter, steady, moderate, []span{{1, 2}},
			round3(cfg.Threshold / cfg.PictureThreshold)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			c.ClearAfter = tc.clearAfter
			var log eventLog
			d := NewBlockinessDetector(c, log.emit)
			for i := 0; i < 125; i++ {
				f := clean
				if tc.bad(i) {
					f = tc.feature
				}
				d.Video(float64(i)/fps, 1.0/fps, f)
			}
			d.Flush(5)
			checkSpans(t, log.events, tc.want, 1e-9)
			for _, e := range log.events {
				if e.Defect != Blockiness || e.Values["score"] != tc.score {
					t.Errorf("%v values %v, want blockiness with score %v", e, e.Values, tc.score)
				}
			}
		})
	}
}
