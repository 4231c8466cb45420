// Package thumbnail makes the small JPEGs of decoded pictures that the agent
// publishes: the picture that raised an alarm, and a periodic picture of
// every stream for a mosaic.
//
// The stream's goroutine only box-filters the picture into a preallocated
// 4:2:0 image (Camera: a few milliseconds for 1080p, no allocation); JPEG
// encoding and publishing run on the Service's worker behind a bounded
// queue, and a thumbnail that finds it busy is dropped, never waited for.
// Frames decoded on NVDEC are downscaled on the GPU (a DeviceScaler, gpu/)
// with the same integer arithmetic, so both give the same bytes.
package thumbnail

import (
	"errors"
	"fmt"
	"image"

	"github.com/streamqc/streamqc/detectors"
)

// MaxHeight is the tallest thumbnail (thumbnail.schema.json's limit): a
// portrait picture is narrower than the width asked.
const MaxHeight = 1080

// Size is the thumbnail size of a w x h picture at most width wide and
// MaxHeight high: the aspect kept (square pixels assumed), both even
// (4:2:0), never upscaled; false when the picture is too small to make one.
func Size(w, h, width int) (tw, th int, ok bool) {
	if w < 2 || h < 2 || width < 2 {
		return 0, 0, false
	}
	tw = min(width, w) &^ 1
	th = (h*tw + w) / (2 * w) * 2 // nearest even
	if th > MaxHeight {
		th = MaxHeight
		tw = max((w*th+h)/(2*h)*2, 2)
	}
	th = min(max(th, 2), h&^1)
	return tw, th, true
}

// ErrPicture: a picture the downscale cannot read (no plane, a plane too
// short for its size, an unknown layout).
var ErrPicture = errors.New("picture not readable")

// Downscale box-filters the host planes of f into dst (its size: Size), in
// dst's own buffers: each output sample is the rounded mean of the source
// samples its box covers (boxes partition the plane), high bits of wide
// samples, limited range expanded to JPEG's full range. Chroma comes from
// f.Chroma (grey without it). It allocates nothing.
func Downscale(dst *image.YCbCr, f *detectors.VideoFrame) error {
	if err := check(dst, f); err != nil {
		return err
	}
	tw, th := dst.Rect.Dx(), dst.Rect.Dy()
	bytes, shift := sampleBytes(f.BitDepth)
	if err := fits(f.Y, f.Stride, bytes, bytes, f.Width, f.Height); err != nil {
		return fmt.Errorf("luma: %w", err)
	}
	for oy := 0; oy < th; oy++ {
		row := dst.Y[oy*dst.YStride : oy*dst.YStride+tw]
		for ox := range row {
			row[ox] = Expand(Box(f.Y, f.Stride, bytes, bytes, shift, f.Width, f.Height, tw, th, ox, oy), f.FullRange, false)
		}
	}
	c := &f.Chroma
	cw, ch := tw/2, th/2
	if c.Cb == nil || c.Cr == nil {
		for oy := 0; oy < ch; oy++ {
			for ox := 0; ox < cw; ox++ {
				dst.Cb[oy*dst.CStride+ox], dst.Cr[oy*dst.CStride+ox] = 128, 128
			}
		}
		return nil
	}
	sw, sh := c.Width(f.Width), c.Height(f.Height)
	if err := fits(c.Cb, c.Stride, c.Step, bytes, sw, sh); err != nil {
		return fmt.Errorf("cb: %w", err)
	}
	if err := fits(c.Cr, c.Stride, c.Step, bytes, sw, sh); err != nil {
		return fmt.Errorf("cr: %w", err)
	}
	for oy := 0; oy < ch; oy++ {
		cb := dst.Cb[oy*dst.CStride : oy*dst.CStride+cw]
		cr := dst.Cr[oy*dst.CStride : oy*dst.CStride+cw]
		for ox := range cb {
			cb[ox] = Expand(Box(c.Cb, c.Stride, c.Step, bytes, shift, sw, sh, cw, ch, ox, oy), f.FullRange, true)
			cr[ox] = Expand(Box(c.Cr, c.Stride, c.Step, bytes, shift, sw, sh, cw, ch, ox, oy), f.FullRange, true)
		}
	}
	return nil
}

func check(dst *image.YCbCr, f *detectors.VideoFrame) error {
	tw, th := dst.Rect.Dx(), dst.Rect.Dy()
	if dst.SubsampleRatio != image.YCbCrSubsampleRatio420 || tw < 2 || th < 2 || tw%2 != 0 || th%2 != 0 ||
		tw > f.Width || th > f.Height || dst.Rect.Min != (image.Point{}) ||
		len(dst.Y) < dst.YStride*th || len(dst.Cb) < dst.CStride*th/2 || len(dst.Cr) < dst.CStride*th/2 {
		return fmt.Errorf("%w: thumbnail %v %v for a %dx%d picture", ErrPicture, dst.Rect, dst.SubsampleRatio, f.Width, f.Height)
	}
	if f.BitDepth < 8 || f.BitDepth > 16 {
		return fmt.Errorf("%w: bit depth %d", ErrPicture, f.BitDepth)
	}
	return nil
}

// sampleBytes: bytes a sample and the shift that keeps its high 8 bits.
func sampleBytes(depth int) (bytes int, shift uint) {
	if depth > 8 {
		return 2, uint(depth - 8)
	}
	return 1, 0
}

// fits checks that a plane of w x h samples, step bytes apart, fits in p.
func fits(p []byte, stride, step, bytes, w, h int) error {
	if step < bytes || stride < (w-1)*step+bytes || len(p) < (h-1)*stride+(w-1)*step+bytes {
		return fmt.Errorf("%w: %d bytes, stride %d, step %d for %dx%d samples", ErrPicture, len(p), stride, step, w, h)
	}
	return nil
}

// Span is the source range [a, b) of output sample o when sn samples go to
// dn: the boxes partition the source, none empty.
func Span(o, sn, dn int) (a, b int) {
	a, b = o*sn/dn, (o+1)*sn/dn
	if b <= a {
		b = a + 1
	}
	return a, b
}

// Box is output sample (ox, oy) of a plane of sw x sh samples scaled to
// dw x dh: the rounded mean of its box, in 8 bits. It is gpu/kernels'
// sq_thumb_box, which the kernel and its host run share.
func Box(p []byte, stride, step, bytes int, shift uint, sw, sh, dw, dh, ox, oy int) uint8 {
	x0, x1 := Span(ox, sw, dw)
	y0, y1 := Span(oy, sh, dh)
	var sum uint64
	for y := y0; y < y1; y++ {
		row := p[y*stride+x0*step : y*stride+(x1-1)*step+bytes]
		if step == 1 { // 8-bit planar: the common case, a tight loop
			var s uint32
			for _, v := range row {
				s += uint32(v)
			}
			sum += uint64(s)
			continue
		}
		if bytes == 2 {
			for i := 0; i+1 < len(row); i += step {
				sum += uint64(row[i]) | uint64(row[i+1])<<8
			}
		} else {
			for i := 0; i < len(row); i += step {
				sum += uint64(row[i])
			}
		}
	}
	n := uint64((x1-x0)*(y1-y0)) << shift
	return uint8(min((sum+n/2)/n, 255))
}

// Expand maps an 8-bit sample to JPEG's full range: limited range luma
// 16..235 and chroma 16..240 (around 128) stretched, rounded, clamped;
// full range unchanged. Integer arithmetic, as sq_thumb_expand.
func Expand(v uint8, full, chroma bool) uint8 {
	if full {
		return v
	}
	if chroma {
		t := (int(v) - 128) * 255
		if t >= 0 {
			t = (t + 112) / 224
		} else {
			t = (t - 112) / 224
		}
		return uint8(min(max(128+t, 0), 255))
	}
	t := (int(v) - 16) * 255
	return uint8(min(max((t+109)/219, 0), 255))
}

// NewImage allocates a 4:2:0 image of w x h.
func NewImage(w, h int) *image.YCbCr {
	return image.NewYCbCr(image.Rect(0, 0, w, h), image.YCbCrSubsampleRatio420)
}

// Resize makes img w x h (even), reusing its buffers when they are large
// enough; it allocates only to grow.
func Resize(img *image.YCbCr, w, h int) {
	if cap(img.Y) < w*h || cap(img.Cb) < w*h/4 || cap(img.Cr) < w*h/4 {
		*img = *NewImage(w, h)
		return
	}
	img.Y, img.Cb, img.Cr = img.Y[:w*h], img.Cb[:w*h/4], img.Cr[:w*h/4]
	img.YStride, img.CStride = w, w/2
	img.SubsampleRatio = image.YCbCrSubsampleRatio420
	img.Rect = image.Rect(0, 0, w, h)
}
