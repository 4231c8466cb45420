//go:build cuda

package gpu

/*
#include <cuda.h>

static CUresult sq_thumb_alloc_host(void **p, size_t n) { return cuMemAllocHost(p, n); }
static CUresult sq_thumb_free_host(void *p) { return cuMemFreeHost(p); }
*/
import "C"

import (
	"errors"
	"fmt"
	"image"
	"runtime"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/gpu/kernels"
)

// thumbScaler is a Backend's thumbnail downscale: the kernel, the output
// on the device and its pinned copy, grown to the largest thumbnail asked.
type thumbScaler struct {
	fn     cu.Function
	loaded bool
	dev    cu.DevicePtr
	host   unsafe.Pointer
	bytes  int
	p      [13]int64
	params [13]unsafe.Pointer
}

// ScaleDevice implements thumbnail.DeviceScaler: f's planes in GPU memory
// (NV12, P010 read in place) are box-filtered into a dst-sized 4:2:0
// picture on the device by sq_thumb (the arithmetic of thumbnail.Downscale,
// which gpu/kernels' tests hold it to), and only that picture (86 KB for
// 320x180) is copied to the host, into dst.
func (b *Backend) ScaleDevice(f *detectors.VideoFrame, dst *image.YCbCr) error {
	if f.Device == 0 {
		return errors.New("gpu thumbnail: picture not in GPU memory")
	}
	if b.err != nil {
		return fmt.Errorf("gpu thumbnail: %w", b.err)
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(b.d.ctx); err != nil {
		return fmt.Errorf("gpu thumbnail: %w", err)
	}
	t := &b.thumb
	if !t.loaded {
		fn, err := b.d.mod.Function(kernels.Thumb)
		if err != nil {
			return fmt.Errorf("gpu thumbnail: kernel %s: %w", kernels.Thumb, err)
		}
		t.fn, t.loaded = fn, true
		for i := range t.p {
			t.params[i] = unsafe.Pointer(&t.p[i])
		}
	}
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	cw, ch := dw/2, dh/2
	n := dw*dh + 2*cw*ch
	if err := t.grow(b.d.Ordinal, n); err != nil {
		return err
	}
	planes, wide, shift := kernels.ThumbArgs(f, dw, dh)
	src := [3]uintptr{f.Device, f.Chroma.CbDevice, f.Chroma.CrDevice}
	pitch := [3]int{f.Stride, f.Chroma.Stride, f.Chroma.Stride}
	off := [3]int{0, dw * dh, dw*dh + cw*ch}
	opitch := [3]int{dw, cw, cw}
	full := int64(0)
	if f.FullRange {
		full = 1
	}
	for i, p := range planes {
		chroma := int64(0)
		if p.Chroma {
			chroma = 1
		}
		t.p = [13]int64{int64(src[i]), int64(pitch[i]), int64(p.Step), int64(wide), int64(shift), int64(p.SW), int64(p.SH),
			int64(p.DW), int64(p.DH), full, chroma, int64(t.dev) + int64(off[i]), int64(opitch[i])}
		if err := t.fn.Launch(p.DH, 1, 1, kernels.ThreadsPerBlock, 1, 1, 0, b.stream, t.params[:]); err != nil {
			return fmt.Errorf("gpu thumbnail: kernel: %w", err)
		}
	}
	if err := cu.MemcpyDtoHAsync(t.host, t.dev, int64(n), b.stream); err != nil {
		return fmt.Errorf("gpu thumbnail: copy: %w", err)
	}
	if err := b.stream.Synchronize(); err != nil {
		return fmt.Errorf("gpu thumbnail: %w", err)
	}
	h := unsafe.Slice((*byte)(t.host), n)
	for y := 0; y < dh; y++ {
		copy(dst.Y[y*dst.YStride:y*dst.YStride+dw], h[y*dw:])
	}
	for y := 0; y < ch; y++ {
		cb, cr := dst.Cb[y*dst.CStride:y*dst.CStride+cw], dst.Cr[y*dst.CStride:y*dst.CStride+cw]
		if len(planes) == 1 { // grey
			for x := range cb {
				cb[x], cr[x] = 128, 128
			}
			continue
		}
		copy(cb, h[off[1]+y*cw:])
		copy(cr, h[off[2]+y*cw:])
	}
	return nil
}

func (t *thumbScaler) grow(ordinal, n int) error {
	if n <= t.bytes {
		return nil
	}
	t.free()
	dev, err := cu.MemAlloc(int64(n))
	if err != nil {
		return fmt.Errorf("gpu %d: thumbnail: %w", ordinal, err)
	}
	var host unsafe.Pointer
	if r := C.sq_thumb_alloc_host(&host, C.size_t(n)); r != C.CUDA_SUCCESS {
		cu.MemFree(dev)
		return fmt.Errorf("gpu %d: pinned thumbnail: CUDA error %d", ordinal, int(r))
	}
	t.dev, t.host, t.bytes = dev, host, n
	return nil
}

// free releases the buffers (the backend's context current).
func (t *thumbScaler) free() {
	if t.bytes == 0 {
		return
	}
	cu.MemFree(t.dev)
	C.sq_thumb_free_host(t.host)
	t.bytes = 0
}
