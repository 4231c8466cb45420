package kernels

import (
	"fmt"
	"math/rand/v2"

	"github.com/streamqc/streamqc/detectors"
)

// Test pictures shared by this package's tests and gpu/'s device tests (the
// cuda build), pairs of (picture, freeze reference).

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

// Pictures are the hard cases of each feature, at 8 and 10 bit, with widths
// that are not multiples of 8 and heights that are not multiples of 16.
func Pictures(rng *rand.Rand) map[string][2]*detectors.VideoFrame {
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
