package kernels

import (
	"fmt"
	"math/rand/v2"

	"github.com/streamqc/streamqc/detectors"
)

// ThumbPictures are whole pictures (luma and chroma) for the thumbnail
// kernel's tests here and on the GPU (gpu/, build tag cuda): 8, 10 and
// P010-like 16-bit samples, planar and semi-planar (NV12, P010) 4:2:0,
// 4:2:2 and grey, full and limited range, odd sizes, padded pitches, noise
// in the low bits of wide samples.
func ThumbPictures(rng *rand.Rand) map[string]*detectors.VideoFrame {
	out := map[string]*detectors.VideoFrame{}
	type layout struct {
		name           string
		shiftX, shiftY int
		semi, grey     bool
	}
	layouts := []layout{{"yuv420p", 1, 1, false, false}, {"nv12", 1, 1, true, false}, {"yuv422p", 1, 0, false, false},
		{"grey", 0, 0, false, true}}
	for _, depth := range []int{8, 10, 16} {
		for _, sz := range [][2]int{{1920, 1080}, {723, 405}, {17, 9}, {1080, 1920}, {64, 64}} {
			for _, l := range layouts {
				if depth == 16 && !l.semi {
					continue // P010 is semi-planar
				}
				w, h, full := sz[0], sz[1], depth == 8 && sz[0] == 723
				fill := func(p, x, y int) int { return (x*x/3 + y*7 + p*60 + rng.IntN(9)) % 256 }
				out[fmt.Sprintf("%dx%d %dbit %s full=%v", w, h, depth, l.name, full)] =
					thumbFrame(w, h, depth, l.shiftX, l.shiftY, l.semi, l.grey, full, rng, fill)
			}
		}
	}
	return out
}

func thumbFrame(w, h, depth, sx, sy int, semi, grey, full bool, rng *rand.Rand, fill func(p, x, y int) int) *detectors.VideoFrame {
	bytes := 1
	if depth > 8 {
		bytes = 2
	}
	put := func(b []byte, i, v int) {
		v = min(max(v, 0), 255)
		if bytes == 1 {
			b[i] = byte(v)
			return
		}
		s := v<<(depth-8) | rng.IntN(1<<(depth-8))
		b[i], b[i+1] = byte(s), byte(s>>8)
	}
	pad := 9 * bytes
	f := &detectors.VideoFrame{Width: w, Height: h, BitDepth: depth, FullRange: full, Stride: w*bytes + pad}
	f.Y = make([]byte, f.Stride*h)
	for i := range f.Y {
		f.Y[i] = byte(rng.IntN(256)) // padding must never count
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			put(f.Y, y*f.Stride+x*bytes, fill(0, x, y))
		}
	}
	if grey {
		return f
	}
	c := detectors.Chroma{ShiftX: sx, ShiftY: sy, Step: bytes}
	if semi {
		c.Step = 2 * bytes
	}
	cw, ch := c.Width(w), c.Height(h)
	c.Stride = cw*c.Step + pad
	cb, cr := make([]byte, c.Stride*ch), make([]byte, c.Stride*ch)
	for i := range cb {
		cb[i], cr[i] = byte(rng.IntN(256)), byte(rng.IntN(256))
	}
	c.Cb, c.Cr = cb, cr
	if semi {
		c.Cr = cb[bytes:]
	}
	for y := 0; y < ch; y++ {
		for x := 0; x < cw; x++ {
			put(c.Cb, y*c.Stride+x*c.Step, fill(1, x, y))
			put(c.Cr, y*c.Stride+x*c.Step, fill(2, x, y))
		}
	}
	f.Chroma = c
	return f
}
