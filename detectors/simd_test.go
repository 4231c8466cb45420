package detectors

import (
	"math/rand/v2"
	"testing"
)

// TestLumaKernels checks the black and freeze loops this build runs (SSE2
// on amd64, SWAR elsewhere or with -tags purego) against plain per-sample
// loops, on random and extreme samples, every length and alignment.
func TestLumaKernels(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 7))
	fills := []struct {
		name string
		fill func([]byte)
	}{
		{"random", func(b []byte) {
			for i := range b {
				b[i] = byte(rng.UintN(256))
			}
		}},
		{"dark", func(b []byte) {
			for i := range b {
				b[i] = byte(rng.UintN(40))
			}
		}},
		{"zero", func(b []byte) { clear(b) }},
		{"full", func(b []byte) {
			for i := range b {
				b[i] = 255
			}
		}},
		{"edges", func(b []byte) {
			for i := range b {
				b[i] = []byte{0, 15, 16, 17, 127, 128, 129, 255}[rng.UintN(8)]
			}
		}},
	}
	for _, f := range fills {
		t.Run(f.name, func(t *testing.T) {
			buf := make([]byte, 4200)
			f.fill(buf)
			for _, n := range []uint64{1, 16, 17, 64, 128} {
				for off := 0; off < 3; off++ {
					for l := 0; l <= 400; l += 8 {
						row := buf[off : off+l]
						wb, ws, wh := 0, uint64(0), 0
						for _, v := range row {
							if uint64(v) < n {
								wb++
							}
							if v >= 128 {
								wh++
							}
							ws += uint64(v)
						}
						if b, s := blackSpan(row, n); b != wb || s != ws {
							t.Fatalf("blackSpan(len %d, n %d) = %d, %d; want %d, %d", l, n, b, s, wb, ws)
						}
						if b, s, h := blackSpanCentre(row, n); b != wb || s != ws || h != wh {
							t.Fatalf("blackSpanCentre(len %d, n %d) = %d, %d, %d; want %d, %d, %d", l, n, b, s, h, wb, ws, wh)
						}
					}
				}
			}
			// Freeze cells: two pictures of odd strides, every row step.
			cur := &VideoFrame{Width: 100, Height: 40, Stride: 103, BitDepth: 8, Y: buf[:103*40]}
			prev := &VideoFrame{Width: 100, Height: 40, Stride: 101, BitDepth: 8, Y: make([]byte, 101*40)}
			f.fill(prev.Y)
			for _, step := range []int{1, 2, 3, 7} {
				for y0 := 0; y0 < 40; y0 += 9 {
					y1 := min(y0+4*step, 40)
					for cx := 0; cx+freezeCellW <= 100; cx += 17 {
						var wd int64
						var wsad uint64
						for y := y0; y < y1; y += step {
							for x := cx; x < cx+freezeCellW; x++ {
								a, b := int(cur.Y[y*cur.Stride+x]), int(prev.Y[y*prev.Stride+x])
								wd += int64(a - b)
								wsad += uint64(absDiff(a, b))
							}
						}
						if d, sad := cell8(cur, prev, cx, y0, y1, step); d != wd || sad != wsad {
							t.Fatalf("cell8(cx %d, y %d..%d, step %d) = %d, %d; want %d, %d", cx, y0, y1, step, d, sad, wd, wsad)
						}
						if d, sad := cell8SWAR(cur, prev, cx, y0, y1, step); d != wd || sad != wsad {
							t.Fatalf("cell8SWAR(cx %d, y %d..%d, step %d) = %d, %d; want %d, %d", cx, y0, y1, step, d, sad, wd, wsad)
						}
					}
				}
			}
		})
	}
}
