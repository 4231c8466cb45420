package kernels

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
)

// frame makes a width x height luma plane of the given bit depth with
// padding after each row (a decoder's stride), filled by fill(x, y) at
// 8-bit scale plus, above 8 bits, low bits of noise.
func frame(w, h, depth, pad int, full bool, rng *rand.Rand, fill func(x, y int) int) *detectors.VideoFrame {
	bps := 1
	if depth > 8 {
		bps = 2
	}
	stride := w*bps + pad
	y := make([]byte, stride*h)
	for r := 0; r < h; r++ {
		for x := 0; x < w; x++ {
			v := min(max(fill(x, r), 0), 255)
			if bps == 1 {
				y[r*stride+x] = byte(v)
				continue
			}
			s := v<<(depth-8) | rng.IntN(1<<(depth-8))
			y[r*stride+2*x], y[r*stride+2*x+1] = byte(s), byte(s>>8)
		}
		for p := w * bps; p < stride; p++ {
			y[r*stride+p] = byte(rng.IntN(256)) // padding must never count
		}
	}
	return &detectors.VideoFrame{Width: w, Height: h, Y: y, Stride: stride, BitDepth: depth, FullRange: full}
}

// pictures are the hard cases of each feature, at 8 and 10 bit, with widths
// that are not multiples of 8 and heights that are not multiples of 16.
func pictures(rng *rand.Rand) map[string][2]*detectors.VideoFrame {
	out := map[string][2]*detectors.VideoFrame{}
	for _, depth := range []int{8, 10} {
		for _, sz := range [][2]int{{1920, 1080}, {723, 405}, {16, 16}, {64, 17}} {
			w, h := sz[0], sz[1]
			name := func(s string) string { return fmt.Sprintf("%s %dx%d %dbit", s, w, h, depth) }
			noise := func(x, y int) int { return rng.IntN(256) }
			out[name("noise")] = [2]*detectors.VideoFrame{frame(w, h, depth, 32, false, rng, noise), frame(w, h, depth, 0, false, rng, noise)}
			blocks := func(x, y int) int { return 16 + ((x/8)*37+(y/8)*91)%200 }
			shifted := func(x, y int) int { return blocks(x, y) + rng.IntN(5) - 2 }
			out[name("blocks")] = [2]*detectors.VideoFrame{frame(w, h, depth, 64, false, rng, blocks), frame(w, h, depth, 64, false, rng, shifted)}
			card := func(x, y int) int { // near-black title card with bright text in the centre
				if x > w/3 && x < w/2 && y > h/2 && y < h/2+h/20+1 {
					return 235
				}
				return 16 + rng.IntN(6)
			}
			out[name("title card")] = [2]*detectors.VideoFrame{frame(w, h, depth, 0, false, rng, card), frame(w, h, depth, 0, true, rng, card)}
			bright := func(x, y int) int { return 140 + (x+y)%100 } // black threshold above 128 takes the generic path
			out[name("bright")] = [2]*detectors.VideoFrame{frame(w, h, depth, 8, true, rng, bright), frame(w, h, depth, 8, true, rng, bright)}
		}
	}
	return out
}

// check compares every feature of the host-run kernels with the CPU
// reference inspecting every sample (row and column steps 1, not sparse).
func check(t *testing.T, cur, ref *detectors.VideoFrame) {
	t.Helper()
	for _, th := range []float64{0.10, 0.6} {
		var want, got detectors.BlackFeature
		detectors.MeasureBlack(cur, th, 1, &want)
		HostBlack(cur, th, &got)
		if got != want {
			t.Errorf("black (pixel threshold %.2f): kernels %+v, CPU %+v", th, got, want)
		}
	}
	var fw, fg detectors.FreezeFeature
	detectors.MeasureFreeze(cur, ref, 1, detectors.DefaultFreezeConfig().CellFloor, &fw)
	// The freeze cells and the grid sums (issue 13) are not in the kernels yet.
	fw.Cells, fw.Moved = 0, 0
	HostFreeze(cur, ref, &fg)
	if fg != fw {
		t.Errorf("freeze: kernels %+v, CPU %+v", fg, fw)
	}
	for _, steps := range [][2]int{{32, 12}, {8, 4}} {
		var bw, bg detectors.BlockFeature
		detectors.MeasureBlockiness(cur, steps[0], steps[1], 1, 1, false, &bw)
		bw.GridSum, bw.ControlSum = 0, 0
		HostBlockiness(cur, steps[0], steps[1], &bg)
		if bg != bw {
			t.Errorf("blockiness (steps %v): kernels %+v, CPU %+v", steps, bg, bw)
		}
	}
}

func TestKernelsMatchCPU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, p := range pictures(rng) {
		t.Run(name, func(t *testing.T) { check(t, p[0], p[1]) })
	}
}

// grabber keeps copies of a few decoded pictures (the sink's frames are
// views valid only during the call).
type grabber struct {
	every, n int
	frames   []*detectors.VideoFrame
}

func (g *grabber) Tracks(float64, bool, bool) {}
func (g *grabber) Video(cur, ref *detectors.VideoFrame) bool {
	g.n++
	if g.n%g.every == 1 || g.every == 1 {
		c := *cur
		c.Y = append([]byte(nil), cur.Y[:cur.Stride*cur.Height]...)
		g.frames = append(g.frames, &c)
	}
	return false
}
func (g *grabber) Audio(*detectors.AudioBlock)           {}
func (g *grabber) Packet(detectors.Track, float64, bool) {}
func (g *grabber) DecodeError(float64, string)           {}
func (g *grabber) Stall(float64)                         {}
func (g *grabber) Resume(float64)                        {}

// TestKernelsMatchCPUOnRealFrames: decoded pictures of ../shared/media (film,
// broadcast, corrupted captures), each against the next.
func TestKernelsMatchCPUOnRealFrames(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "shared", "media")
	clips, _ := filepath.Glob(filepath.Join(dir, "*.*"))
	more, _ := filepath.Glob(filepath.Join(dir, "corrupt", "*.ts"))
	clips = append(clips, more...)
	if len(clips) == 0 {
		t.Skip("SKIP real frames: ../shared/media is absent")
	}
	for _, c := range clips {
		if filepath.Ext(c) == ".md" {
			continue
		}
		t.Run(filepath.Base(c), func(t *testing.T) {
			g := &grabber{every: 40}
			o := media.Options{URL: c, HWAccel: "none", Video: media.TrackFirst, Audio: media.TrackNone,
				Threads: 1, Duration: 6, OpenTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
			if _, err := media.Run(context.Background(), o, g); err != nil {
				t.Fatal(err)
			}
			if len(g.frames) < 2 {
				t.Fatalf("%d pictures decoded", len(g.frames))
			}
			for i := 1; i < len(g.frames); i++ {
				check(t, g.frames[i], g.frames[i-1])
			}
		})
	}
}
