//go:build cuda

package gpu

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"testing"
	"time"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/gpu/kernels"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/thumbnail"
)

// deviceBytes copies b to device memory, freed when the test ends.
func deviceBytes(t *testing.T, d *Device, b []byte) uintptr {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		t.Fatal(err)
	}
	p, err := cu.MemAlloc(int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if err := cu.MemcpyHtoD(p, unsafe.Pointer(&b[0]), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		cu.SetCurrentContext(d.ctx)
		cu.MemFree(p)
	})
	return uintptr(p)
}

// onDevice is f with every plane in device memory, as NVDEC leaves a
// frame (semi-planar chroma: one allocation, Cr a sample after Cb).
func onDevice(t *testing.T, d *Device, f *detectors.VideoFrame) *detectors.VideoFrame {
	g := *f
	g.Y, g.Device = nil, deviceBytes(t, d, f.Y)
	c := &g.Chroma
	if c.Cb != nil {
		if off := int(uintptr(unsafe.Pointer(&c.Cr[0])) - uintptr(unsafe.Pointer(&c.Cb[0]))); off > 0 && off < c.Step {
			c.CbDevice = deviceBytes(t, d, c.Cb)
			c.CrDevice = c.CbDevice + uintptr(off)
		} else {
			c.CbDevice, c.CrDevice = deviceBytes(t, d, c.Cb), deviceBytes(t, d, c.Cr)
		}
		c.Cb, c.Cr = nil, nil
	}
	return &g
}

// TestKernelsThumbOnDevice (run by gpu-check's TestKernels filter): the thumbnail kernel on the GPU gives the CPU
// downscale's bytes; only the thumbnail comes back.
func TestKernelsThumbOnDevice(t *testing.T) {
	d, err := Open(0)
	if err != nil {
		t.Skipf("SKIP: no GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	b, err := d.NewBackend(detectors.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var _ thumbnail.DeviceScaler = b
	for name, f := range kernels.ThumbPictures(rand.New(rand.NewPCG(7, 8))) {
		t.Run(name, func(t *testing.T) {
			w, h, _ := thumbnail.Size(f.Width, f.Height, 320)
			want, got := thumbnail.NewImage(w, h), thumbnail.NewImage(w, h)
			if err := thumbnail.Downscale(want, f); err != nil {
				t.Fatal(err)
			}
			if err := b.ScaleDevice(onDevice(t, d, f), got); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Y, want.Y) || !bytes.Equal(got.Cb, want.Cb) || !bytes.Equal(got.Cr, want.Cr) {
				t.Error("the GPU thumbnail differs from the CPU's")
			}
		})
	}
}

// download copies n bytes at a device address to the host.
func download(t *testing.T, d *Device, p uintptr, n int) []byte {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, n)
	if err := cu.MemcpyDtoH(unsafe.Pointer(&b[0]), cu.DevicePtr(p), int64(n)); err != nil {
		t.Fatal(err)
	}
	return b
}

// nvdecThumbs compares, on every 25th NVDEC picture, the thumbnail made on
// the device with the CPU's of the same picture downloaded.
type nvdecThumbs struct {
	t       *testing.T
	d       *Device
	b       *Backend
	n, seen int
}

func (s *nvdecThumbs) Tracks(float64, bool, bool) {}
func (s *nvdecThumbs) Video(cur, _ *detectors.VideoFrame) bool {
	if s.n++; s.n%25 != 1 || cur.Device == 0 || cur.Chroma.CbDevice == 0 {
		return false
	}
	s.seen++
	w, h, _ := thumbnail.Size(cur.Width, cur.Height, 320)
	got, want := thumbnail.NewImage(w, h), thumbnail.NewImage(w, h)
	if err := s.b.ScaleDevice(cur, got); err != nil {
		s.t.Fatal(err)
	}
	host := *cur
	c := &host.Chroma
	host.Y, host.Device = download(s.t, s.d, cur.Device, cur.Stride*cur.Height), 0
	lo := min(c.CbDevice, c.CrDevice)
	uv := download(s.t, s.d, lo, c.Stride*c.Height(cur.Height))
	c.Cb, c.Cr = uv[c.CbDevice-lo:], uv[c.CrDevice-lo:]
	c.CbDevice, c.CrDevice = 0, 0
	if err := thumbnail.Downscale(want, &host); err != nil {
		s.t.Fatal(err)
	}
	if !bytes.Equal(got.Y, want.Y) || !bytes.Equal(got.Cb, want.Cb) || !bytes.Equal(got.Cr, want.Cr) {
		s.t.Errorf("picture %d at %.2f s: the GPU thumbnail differs from the CPU's", s.n, cur.PTS)
	}
	return false
}
func (s *nvdecThumbs) Audio(*detectors.AudioBlock)           {}
func (s *nvdecThumbs) Packet(detectors.Track, float64, bool) {}
func (s *nvdecThumbs) DecodeError(float64, string)           {}
func (s *nvdecThumbs) Stall(float64)                         {}
func (s *nvdecThumbs) Resume(float64)                        {}

// TestNVDECThumbnails: pictures NVDEC left on the GPU (NV12, P010, its
// pitches, its chroma plane) make on the device the thumbnail the CPU
// makes of them.
func TestNVDECThumbnails(t *testing.T) {
	d, err := Open(0)
	if err != nil {
		t.Skipf("SKIP: no GPU: %v", err)
	}
	t.Cleanup(func() { d.Close() })
	for _, c := range mediaClips(t) {
		t.Run(filepath.Base(c), func(t *testing.T) {
			b, err := d.NewBackend(detectors.DefaultConfig())
			if err != nil {
				t.Fatal(err)
			}
			defer b.Close()
			s := &nvdecThumbs{t: t, d: d, b: b}
			o := media.Options{URL: c, HWAccel: "cuda", HWDevice: "0", DeviceFrames: true, Video: media.TrackFirst,
				Audio: media.TrackNone, Threads: 1, Duration: 10, OpenTimeout: 20 * time.Second, Logger: slog.New(slog.DiscardHandler)}
			if _, err := media.Run(context.Background(), o, s); err != nil {
				t.Fatal(err)
			}
			if s.seen == 0 {
				t.Skipf("SKIP: NVDEC left no picture on the GPU for this clip")
			}
		})
	}
}
