package kernels

// The host run of the thumbnail kernel: sq_thumb_row of sq_thumb.h for every
// thread of every output row, as the kernel launches it; its test holds it
// to thumbnail.Downscale, the CPU path, byte for byte.

/*
#cgo CFLAGS: -O2
#include "sq_thumb.h"

#define THUMB_THREADS 256

static void thumb_plane(const sq_u8 *p, long long pitch, int step, int wide, int shift, int sw, int sh, int dw, int dh,
                        int full, int chroma, sq_u8 *out, long long out_pitch) {
	for (int oy = 0; oy < dh; oy++) {
		for (int t = 0; t < THUMB_THREADS; t++) {
			sq_thumb_row(p, pitch, step, wide, shift, sw, sh, dw, dh, full, chroma, oy, out + oy * out_pitch, t, THUMB_THREADS);
		}
	}
}
*/
import "C"

import (
	"fmt"
	"image"
	"unsafe"

	"github.com/streamqc/streamqc/detectors"
)

// Thumb is the thumbnail kernel's name in the module: one launch per plane,
// one block per output row.
const Thumb = "sq_thumb"

// ThumbPlane is one launch of the thumbnail kernel: a source plane (its
// first sample at offset 0 of the plane's memory) and the output it fills.
type ThumbPlane struct {
	Step, SW, SH, DW, DH int
	Chroma               bool
}

// ThumbArgs are the sq_thumb launches of f into a dw x dh thumbnail: luma,
// Cb, Cr (none for the chroma of a picture without any), and the kernel's
// wide and shift arguments.
func ThumbArgs(f *detectors.VideoFrame, dw, dh int) (planes []ThumbPlane, wide, shift int) {
	bytes := 1
	if f.BitDepth > 8 {
		bytes, wide, shift = 2, 1, f.BitDepth-8
	}
	planes = append(planes, ThumbPlane{Step: bytes, SW: f.Width, SH: f.Height, DW: dw, DH: dh})
	c := &f.Chroma
	if (c.Cb != nil && c.Cr != nil) || (c.CbDevice != 0 && c.CrDevice != 0) {
		p := ThumbPlane{Step: c.Step, SW: c.Width(f.Width), SH: c.Height(f.Height), DW: dw / 2, DH: dh / 2, Chroma: true}
		planes = append(planes, p, p)
	}
	return planes, wide, shift
}

// HostThumb runs the thumbnail kernel on the host planes of f into dst
// (its size from thumbnail.Size); a picture without chroma gets grey, as
// the device path fills it.
func HostThumb(f *detectors.VideoFrame, dst *image.YCbCr) error {
	dw, dh := dst.Rect.Dx(), dst.Rect.Dy()
	planes, wide, shift := ThumbArgs(f, dw, dh)
	src := [][]byte{f.Y, f.Chroma.Cb, f.Chroma.Cr}
	pitch := []int{f.Stride, f.Chroma.Stride, f.Chroma.Stride}
	out := [][]byte{dst.Y, dst.Cb, dst.Cr}
	opitch := []int{dst.YStride, dst.CStride, dst.CStride}
	full := 0
	if f.FullRange {
		full = 1
	}
	for i, p := range planes {
		need := (p.SH-1)*pitch[i] + (p.SW-1)*p.Step + 1 + wide
		if len(src[i]) < need || len(out[i]) < (p.DH-1)*opitch[i]+p.DW {
			return fmt.Errorf("plane %d: %d bytes, want %d", i, len(src[i]), need)
		}
		chroma := 0
		if p.Chroma {
			chroma = 1
		}
		C.thumb_plane((*C.sq_u8)(unsafe.Pointer(&src[i][0])), C.longlong(pitch[i]), C.int(p.Step), C.int(wide), C.int(shift),
			C.int(p.SW), C.int(p.SH), C.int(p.DW), C.int(p.DH), C.int(full), C.int(chroma),
			(*C.sq_u8)(unsafe.Pointer(&out[i][0])), C.longlong(opitch[i]))
	}
	if len(planes) == 1 {
		for i := range dst.Cb {
			dst.Cb[i], dst.Cr[i] = 128, 128
		}
	}
	return nil
}
