package detectors

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// Helpers shared by the detector tests of this package.

// eventLog collects what a detector emits.
type eventLog struct{ events []Event }

func (l *eventLog) emit(e Event) { l.events = append(l.events, e) }

// raised returns the Raised events of l.
func (l *eventLog) raised() []Event {
	var out []Event
	for _, e := range l.events {
		if e.State == Raised {
			out = append(out, e)
		}
	}
	return out
}

// span is an expected alarm: a Raised event at start followed, later, by a
// Cleared event with the same start and the given end.
type span struct{ start, end float64 }

// checkSpans verifies that events are exactly one raise and one clear per
// expected span, in order, with times within tol.
func checkSpans(t *testing.T, events []Event, want []span, tol float64) {
	t.Helper()
	if len(events) != 2*len(want) {
		t.Fatalf("got %d events %v, want %d alarms %v", len(events), events, len(want), want)
	}
	for i, w := range want {
		r, c := events[2*i], events[2*i+1]
		if r.State != Raised || c.State != Cleared {
			t.Fatalf("alarm %d: got %v, %v; want a raise then a clear", i, r, c)
		}
		if math.Abs(r.Start-w.start) > tol || math.Abs(c.Start-w.start) > tol || math.Abs(c.End-w.end) > tol {
			t.Errorf("alarm %d: got raised %v, cleared %v; want start %.6f end %.6f (tol %g)", i, r, c, w.start, w.end, tol)
		}
	}
}

// newFrame8 returns an 8-bit limited-range frame whose rows are stride bytes
// apart; the padding between width and stride holds pad (a wrong read of it shows).
func newFrame8(w, h, stride int, pad byte, pix func(x, y int) byte) *VideoFrame {
	y := make([]byte, stride*h)
	for i := range y {
		y[i] = pad
	}
	for r := 0; r < h; r++ {
		for x := 0; x < w; x++ {
			y[r*stride+x] = pix(x, r)
		}
	}
	return &VideoFrame{Width: w, Height: h, Y: y, Stride: stride, BitDepth: 8}
}

// uniformFrame8 returns a w x h 8-bit limited-range frame of one level.
func uniformFrame8(w, h int, v byte) *VideoFrame {
	return newFrame8(w, h, w, v, func(int, int) byte { return v })
}

// to10Bit returns f scaled by 4 as 10-bit little-endian samples, with extra
// bytes of padding at the end of each row.
func to10Bit(f *VideoFrame, extra int) *VideoFrame {
	stride := 2*f.Width + extra
	y := make([]byte, stride*f.Height)
	for i := range y {
		y[i] = 0xff
	}
	for r := 0; r < f.Height; r++ {
		for x := 0; x < f.Width; x++ {
			binary.LittleEndian.PutUint16(y[r*stride+2*x:], uint16(f.Y[r*f.Stride+x])<<2)
		}
	}
	g := *f
	g.Y, g.Stride, g.BitDepth = y, stride, 10
	return &g
}

// naiveBlack is the per-pixel definition of the black feature.
func naiveBlack(f *VideoFrame, pixelThreshold float64, rowStep int) BlackFeature {
	var out BlackFeature
	if f.Width <= 0 || f.Height <= 0 {
		return out
	}
	rowStep = max(rowStep, 1)
	shift := max(f.BitDepth-8, 0)
	lo, hi := 16<<shift, 235<<shift
	if f.FullRange {
		lo, hi = 0, (256<<shift)-1
	}
	th := lo + int(pixelThreshold*float64(hi-lo))
	bright := 128 << shift
	cy0, cy1 := f.Height*15/100, f.Height*85/100
	cx0, cx1 := (f.Width*15/100)&^7, (f.Width*85/100)&^7
	sum := 0
	for y := 0; y < f.Height; y += rowStep {
		inCentre := y >= cy0 && y < cy1
		for x := 0; x < f.Width; x++ {
			v := int(f.Y[y*f.Stride+x])
			if f.BitDepth > 8 {
				v = int(binary.LittleEndian.Uint16(f.Y[y*f.Stride+2*x:]))
			}
			out.Pixels++
			sum += v
			if v <= th {
				out.Black++
			}
			if inCentre && x >= cx0 && x < cx1 {
				out.Centre++
				if v >= bright {
					out.CentreBright++
				}
			}
		}
	}
	out.MeanLuma = (float64(sum)/float64(out.Pixels) - float64(lo)) / float64(hi-lo)
	return out
}

func sameBlackCounts(a, b BlackFeature) bool {
	return a.Pixels == b.Pixels && a.Black == b.Black && a.Centre == b.Centre && a.CentreBright == b.CentreBright
}

func TestMeasureBlackMatchesNaive(t *testing.T) {
	widths := []int{1283}
	for w := 1; w <= 37; w++ {
		widths = append(widths, w)
	}
	tests := []struct {
		name      string
		fullRange bool
		threshold float64
	}{
		{"limited default", false, 0.10},
		{"full default", true, 0.10},
		{"limited zero", false, 0},
		{"full zero (only level 0 is black)", true, 0},
		{"full 0.5 (threshold 127, the SWAR limit)", true, 0.5},
		{"limited 0.6 (threshold above 127, scalar path)", false, 0.6},
	}
	for ti, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(ti), 7))
			probe := VideoFrame{BitDepth: 8, FullRange: tc.fullRange}
			th := BlackThreshold(&probe, tc.threshold)
			// A mix of uniform bytes, bytes around the threshold, around
			// the bright limit 128, and saturated ones.
			pix := func(int, int) byte {
				switch r.IntN(5) {
				case 0:
					return byte(r.IntN(256))
				case 1:
					return byte(min(max(th-2+r.IntN(5), 0), 255))
				case 2:
					return byte(126 + r.IntN(4))
				case 3:
					return 255
				default:
					return byte(r.IntN(40))
				}
			}
			for _, w := range widths {
				for _, h := range []int{1, 7, 33} {
					for _, pad := range []int{0, 3, 8} {
						f := newFrame8(w, h, w+pad, 0, pix)
						f.FullRange = tc.fullRange
						for _, step := range []int{0, 1, 2, 3, 8} {
							var got BlackFeature
							MeasureBlack(f, tc.threshold, step, &got)
							want := naiveBlack(f, tc.threshold, step)
							if !sameBlackCounts(got, want) || math.Abs(got.MeanLuma-want.MeanLuma) > 1e-12 {
								t.Fatalf("w=%d h=%d stride=%d step=%d: got %+v, want %+v", w, h, w+pad, step, got, want)
							}
						}
					}
				}
			}
		})
	}
}

func TestMeasureBlackSaturatedWideRows(t *testing.T) {
	// 1283 bytes of 255 per row: the 16-bit sum lanes must be flushed in time.
	for _, v := range []byte{0, 16, 255} {
		f := newFrame8(1283, 9, 1300, 7, func(int, int) byte { return v })
		for _, full := range []bool{false, true} {
			f.FullRange = full
			var got BlackFeature
			MeasureBlack(f, 0.1, 1, &got)
			want := naiveBlack(f, 0.1, 1)
			if !sameBlackCounts(got, want) || math.Abs(got.MeanLuma-want.MeanLuma) > 1e-12 {
				t.Errorf("level %d full=%v: got %+v, want %+v", v, full, got, want)
			}
		}
	}
}

func TestMeasureBlackHighBitDepth(t *testing.T) {
	tests := []struct {
		name      string
		w, h      int
		fullRange bool
		threshold float64
		// The full-range 10-bit scale is 0..1023, not 4*255, so the mean
		// differs slightly from the 8-bit one there.
		meanTol float64
	}{
		{"limited 37x23", 37, 23, false, 0.10, 1e-12},
		{"limited 96x54", 96, 54, false, 0.10, 1e-12},
		{"limited 1283x5", 1283, 5, false, 0.10, 1e-12},
		{"limited high threshold", 96, 54, false, 0.6, 1e-12},
		{"full 96x54", 96, 54, true, 0.10, 3e-3},
		{"full 0.5", 96, 54, true, 0.5, 3e-3},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(uint64(i), 11))
			f8 := newFrame8(tc.w, tc.h, tc.w+5, 0, func(int, int) byte { return byte(r.IntN(256)) })
			f8.FullRange = tc.fullRange
			f10 := to10Bit(f8, 6)
			for _, step := range []int{1, 2, 8} {
				var a, b BlackFeature
				MeasureBlack(f8, tc.threshold, step, &a)
				MeasureBlack(f10, tc.threshold, step, &b)
				if !sameBlackCounts(a, b) || a.BlackShare() != b.BlackShare() || a.CentreBrightShare() != b.CentreBrightShare() {
					t.Errorf("step %d: 8-bit %+v, 10-bit %+v", step, a, b)
				}
				if math.Abs(a.MeanLuma-b.MeanLuma) > tc.meanTol {
					t.Errorf("step %d: mean luma 8-bit %v, 10-bit %v", step, a.MeanLuma, b.MeanLuma)
				}
				if want := naiveBlack(f10, tc.threshold, step); !sameBlackCounts(b, want) {
					t.Errorf("step %d: 10-bit %+v, naive %+v", step, b, want)
				}
			}
		})
	}
}

func TestMeanLumaUniform(t *testing.T) {
	tests := []struct {
		name  string
		frame *VideoFrame
		want  float64
	}{
		{"limited black", uniformFrame8(64, 36, 16), 0},
		{"limited white", uniformFrame8(64, 36, 235), 1},
		{"limited mid", uniformFrame8(64, 36, 126), 110.0 / 219},
		{"limited below black", uniformFrame8(64, 36, 0), -16.0 / 219},
		{"full mid", func() *VideoFrame { f := uniformFrame8(64, 36, 128); f.FullRange = true; return f }(), 128.0 / 255},
		{"odd width", uniformFrame8(37, 5, 126), 110.0 / 219},
		{"10-bit limited mid", to10Bit(uniformFrame8(64, 36, 126), 0), 110.0 / 219},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 8} {
				var f BlackFeature
				MeasureBlack(tc.frame, 0.1, step, &f)
				if math.Abs(f.MeanLuma-tc.want) > 1e-12 {
					t.Errorf("step %d: MeanLuma = %v, want %v", step, f.MeanLuma, tc.want)
				}
			}
		})
	}
}

func TestMeasureBlackEmptyFrame(t *testing.T) {
	f := BlackFeature{Pixels: 9, Black: 9}
	MeasureBlack(&VideoFrame{BitDepth: 8}, 0.1, 1, &f)
	if f != (BlackFeature{}) || f.BlackShare() != 0 || f.CentreBrightShare() != 0 {
		t.Errorf("empty frame: got %+v, want zero", f)
	}
}

func TestBlackCentreBrightRule(t *testing.T) {
	// A 320x180 black frame with a white 36x24 patch: 864 pixels, 1.5%.
	const w, h, pw, ph = 320, 180, 36, 24
	patch := func(x0, y0 int) *VideoFrame {
		return newFrame8(w, h, w, 16, func(x, y int) byte {
			if x >= x0 && x < x0+pw && y >= y0 && y < y0+ph {
				return 235
			}
			return 16
		})
	}
	tests := []struct {
		name      string
		frame     *VideoFrame
		wantBlack bool
	}{
		{"plain black", uniformFrame8(w, h, 16), true},
		{"bright patch in the centre", patch((w-pw)/2, (h-ph)/2), false},
		{"same patch in the top-left corner (logo)", patch(0, 0), true},
		{"same patch in the bottom-right corner (logo)", patch(w-pw, h-ph), true},
		{"dim patch in the centre", newFrame8(w, h, w, 16, func(x, y int) byte {
			if x >= 142 && x < 178 && y >= 78 && y < 102 {
				return 100 // visible but below half the range
			}
			return 16
		}), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, step := range []int{1, 8} {
				cfg := DefaultBlackConfig()
				cfg.MinDuration = 0
				var log eventLog
				d := NewBlackDetector(cfg, log.emit)
				var f BlackFeature
				MeasureBlack(tc.frame, cfg.PixelThreshold, step, &f)
				if f.BlackShare() < cfg.PictureThreshold {
					t.Fatalf("step %d: black share %v below the picture threshold: the test frame is wrong", step, f.BlackShare())
				}
				if got := d.Video(0, 0.04, &f); got != tc.wantBlack {
					t.Errorf("step %d: Video reports black = %v, want %v", step, got, tc.wantBlack)
				}
				d.Flush(0.04)
				if got := len(log.raised()) == 1; got != tc.wantBlack {
					t.Errorf("step %d: black = %v, want %v (feature %+v, events %v)", step, got, tc.wantBlack, f, log.events)
				}
			}
		})
	}
}

func TestBlackDetector(t *testing.T) {
	const fps, frames = 25, 250
	picture := newFrame8(64, 36, 64, 0, func(x, y int) byte { return byte(40 + 2*x + y) })
	// A black frame with a small corner logo, so that black_share is below 1.
	black := newFrame8(64, 36, 64, 0, func(x, y int) byte {
		if x < 4 && y < 3 {
			return 200
		}
		return 16
	})
	var blackFeat, picFeat BlackFeature
	cfg := DefaultBlackConfig()
	MeasureBlack(black, cfg.PixelThreshold, 1, &blackFeat)
	MeasureBlack(picture, cfg.PixelThreshold, 1, &picFeat)
	tests := []struct {
		name        string
		first, last int // black frames, inclusive
		want        []span
	}{
		{"black 4.0 to 7.0", 100, 174, []span{{4, 7}}},
		{"shorter than min_duration", 100, 139, nil},
		{"exactly min_duration", 100, 149, []span{{4, 6}}},
		{"black to the end of input", 200, 249, []span{{8, 10}}},
		{"black from the start", 0, 59, []span{{0, 2.4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewBlackDetector(cfg, log.emit)
			for i := 0; i < frames; i++ {
				f := &picFeat
				if i >= tc.first && i <= tc.last {
					f = &blackFeat
				}
				d.Video(float64(i)/fps, 1.0/fps, f)
			}
			d.Flush(float64(frames) / fps)
			checkSpans(t, log.events, tc.want, 1e-9)
			for _, e := range log.events {
				if e.Defect != Black {
					t.Errorf("defect %q, want %q", e.Defect, Black)
				}
				if got, want := e.Values["black_share"], round3(blackFeat.BlackShare()); got != want {
					t.Errorf("%v: black_share = %v, want %v", e, got, want)
				}
			}
		})
	}
}
