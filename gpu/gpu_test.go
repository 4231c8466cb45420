//go:build cuda

package gpu

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/streamqc/streamqc/analyze"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/gpu/kernels"
	"github.com/streamqc/streamqc/media"
)

// These run on a GPU host only (make gpu-check builds them with
// `go test -c -tags cuda` and runs them there): a binary of the cuda build
// cannot start without the NVIDIA driver.

func openDevice(t *testing.T) *Device {
	t.Helper()
	d, err := Open(0)
	if err != nil {
		t.Fatalf("GPU 0: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	return d
}

// upload copies a host frame to device memory, keeping its stride as the
// pitch, and returns the device frame.
func upload(t testing.TB, d *Device, f *detectors.VideoFrame) *detectors.VideoFrame {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		t.Fatal(err)
	}
	p, err := cu.MemAlloc(int64(len(f.Y)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cu.MemcpyHtoD(p, unsafe.Pointer(&f.Y[0]), int64(len(f.Y))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cu.SetCurrentContext(d.ctx)
		cu.MemFree(p)
	})
	g := *f
	g.Y, g.Device = nil, uintptr(p)
	return &g
}

// fullRes is the CPU reference inspecting every sample, as the kernels do.
func fullRes() detectors.Config {
	c := detectors.DefaultConfig()
	c.Sampling = detectors.Sampling{RowStep: 1, BlockRowStep: 1, BlockColStep: 1}
	return c
}

func compare(t *testing.T, b *Backend, cur, ref *detectors.VideoFrame, dcur, dref *detectors.VideoFrame) {
	t.Helper()
	var want, got detectors.VideoFeatures
	detectors.CPUBackend{Config: fullRes()}.Measure(cur, ref, &want)
	b.Measure(dcur, dref, &got)
	if b.Err() != nil {
		t.Fatalf("device: %v", b.Err())
	}
	if got != want {
		t.Errorf("GPU %+v\nCPU %+v", got, want)
	}
}

// TestKernelsMatchCPU: every feature of the kernels equals the CPU
// reference's on the hard cases, 8 and 10 bit, odd sizes, padded pitches.
func TestKernelsMatchCPU(t *testing.T) {
	d := openDevice(t)
	b, err := d.NewBackend(fullRes())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	for name, p := range kernels.Pictures(rng) {
		t.Run(name, func(t *testing.T) {
			compare(t, b, p[0], p[1], upload(t, d, p[0]), upload(t, d, p[1]))
		})
	}
}

// TestKernelsMatchCPUOnRealFrames: pictures decoded from the clips in
// STREAMQC_GPU_MEDIA (the gpu-check bundle's media folder), or
// ../shared/media.
func TestKernelsMatchCPUOnRealFrames(t *testing.T) {
	d := openDevice(t)
	b, err := d.NewBackend(fullRes())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	for _, c := range mediaClips(t) {
		t.Run(filepath.Base(c), func(t *testing.T) {
			frames := grab(t, c, 30)
			for i := 1; i < len(frames); i++ {
				compare(t, b, frames[i], frames[i-1], upload(t, d, frames[i]), upload(t, d, frames[i-1]))
			}
		})
	}
}

// TestNVDECEndToEnd: analyze on NVDEC with the GPU backend (frames never
// leave the GPU) gives the events of software decoding with the CPU
// reference at full resolution. H.264, HEVC and MPEG-2 decoding is
// bit-exact, so any difference is the backend's.
func TestNVDECEndToEnd(t *testing.T) {
	accel := NewAccelerator()
	defer accel.Close()
	for _, c := range mediaClips(t) {
		t.Run(filepath.Base(c), func(t *testing.T) {
			run := func(hw string, a detectors.Accelerator) (string, analyze.Summary) {
				var out bytes.Buffer
				sum, err := analyze.Run(context.Background(), analyze.Options{
					Media: media.Options{URL: c, HWAccel: hw, Video: media.TrackFirst, Audio: media.TrackFirst,
						Threads: 1, OpenTimeout: 20 * time.Second},
					Config: fullRes(), StreamID: "clip", Format: "json", Accel: a, Logger: slog.New(slog.DiscardHandler),
				}, &out)
				if err != nil {
					t.Fatalf("%s: %v", hw, err)
				}
				return events(out.String()), sum
			}
			cpu, cs := run("none", nil)
			gpu, gs := run("cuda", accel)
			if !strings.Contains(gs.Decoder, "cuda") {
				t.Skipf("SKIP: NVDEC does not decode this clip (%s)", gs.Decoder)
			}
			if gpu != cpu || gs.Frames != cs.Frames {
				t.Errorf("NVDEC + kernels (%d frames):\n%s\nsoftware + CPU (%d frames):\n%s", gs.Frames, gpu, cs.Frames, cpu)
			}
		})
	}
}

// events keeps the event lines of analyze's JSON output.
func events(s string) string {
	var keep []string
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(l), &m) == nil && m["type"] == "defect" {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

func mediaClips(t *testing.T) []string {
	t.Helper()
	dir := os.Getenv("STREAMQC_GPU_MEDIA")
	if dir == "" {
		dir = filepath.Join("..", "..", "shared", "media")
	}
	var clips []string
	for _, pat := range []string{"*.mp4", "*.ts", "*.mkv", "corrupt/*.ts"} {
		m, _ := filepath.Glob(filepath.Join(dir, pat))
		clips = append(clips, m...)
	}
	sort.Strings(clips)
	if len(clips) == 0 {
		t.Skipf("SKIP: no clips in %s (set STREAMQC_GPU_MEDIA)", dir)
	}
	return clips
}

// grabber keeps host copies of every nth decoded picture.
type grabber struct {
	every, n int
	frames   []*detectors.VideoFrame
}

func (g *grabber) Tracks(float64, bool, bool) {}
func (g *grabber) Video(cur, ref *detectors.VideoFrame) bool {
	if g.n++; g.n%g.every == 1 && cur.Y != nil {
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

func grab(t *testing.T, clip string, every int) []*detectors.VideoFrame {
	t.Helper()
	g := &grabber{every: every}
	o := media.Options{URL: clip, HWAccel: "none", Video: media.TrackFirst, Audio: media.TrackNone, Threads: 1,
		Duration: 8, OpenTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
	if _, err := media.Run(context.Background(), o, g); err != nil {
		t.Fatal(err)
	}
	if len(g.frames) < 2 {
		t.Fatalf("%d pictures", len(g.frames))
	}
	return g.frames
}

// BenchmarkKernels is the kernel time of one 1080p frame, every feature,
// launch to counters on the host (make gpu-check reports it).
func BenchmarkKernels1080p(b *testing.B) {
	d, err := Open(0)
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	be, err := d.NewBackend(detectors.DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	defer be.Close()
	rng := rand.New(rand.NewPCG(3, 4))
	var cur, ref *detectors.VideoFrame
	for name, p := range kernels.Pictures(rng) {
		if strings.HasPrefix(name, "noise 1920x1080 8bit") {
			cur, ref = p[0], p[1]
		}
	}
	dc, dr := upload(b, d, cur), upload(b, d, ref)
	var out detectors.VideoFeatures
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		be.Measure(dc, dr, &out)
	}
	b.StopTimer()
	if be.Err() != nil {
		b.Fatal(be.Err())
	}
	b.ReportMetric(float64(8*(offBands+kernels.BandCounters*detectors.BlockBands(1080))), "bytes-to-host/frame")
}
