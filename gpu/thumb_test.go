//go:build cuda

package gpu

import (
	"bytes"
	"math/rand/v2"
	"runtime"
	"testing"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/gpu/kernels"
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

// TestThumbOnDevice: the thumbnail kernel on the GPU gives the CPU
// downscale's bytes; only the thumbnail comes back.
func TestThumbOnDevice(t *testing.T) {
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
