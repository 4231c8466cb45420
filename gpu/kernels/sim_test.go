package kernels

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
)

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
	floor := detectors.DefaultFreezeConfig().CellFloor
	detectors.MeasureFreeze(cur, ref, 1, floor, &fw)
	HostFreeze(cur, ref, floor, &fg)
	if fg != fw {
		t.Errorf("freeze: kernels %+v, CPU %+v", fg, fw)
	}
	for _, steps := range [][2]int{{32, 12}, {8, 4}} {
		var bw, bg detectors.BlockFeature
		detectors.MeasureBlockiness(cur, steps[0], steps[1], 1, 1, false, &bw)
		HostBlockiness(cur, steps[0], steps[1], &bg)
		if bg != bw {
			t.Errorf("blockiness (steps %v): kernels %+v, CPU %+v", steps, bg, bw)
		}
	}
}

func TestKernelsMatchCPU(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for name, p := range Pictures(rng) {
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

// TestGeometry: the constants the kernels and detectors share agree, and a
// band's counters have the layout of detectors.BandCounts.
func TestGeometry(t *testing.T) {
	w, rows, z, counters, band := geometry()
	if w != detectors.FreezeCellWidth || rows != detectors.FreezeCellRows || z != detectors.FreezeCellZ {
		t.Errorf("freeze cells: kernels %dx%d z %d, detectors %dx%d z %d", w, rows, z,
			detectors.FreezeCellWidth, detectors.FreezeCellRows, detectors.FreezeCellZ)
	}
	if rows != CellRows {
		t.Errorf("freeze cell rows: kernels %d, Go %d", rows, CellRows)
	}
	if counters != BandCounters || int(unsafe.Sizeof(detectors.BandCounts{})) != 8*counters {
		t.Errorf("band counters: kernels %d, Go %d, BandCounts %d bytes", counters, BandCounters, unsafe.Sizeof(detectors.BandCounts{}))
	}
	if detectors.BlockBands(band) != 1 || detectors.BlockBands(band+1) != 2 {
		t.Errorf("band height %d is not detectors'", band)
	}
}
