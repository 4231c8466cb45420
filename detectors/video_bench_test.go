package detectors

import (
	"math/rand/v2"
	"testing"
)

// benchFrame returns a 720p 8-bit frame of noisy gradient content.
func benchFrame(seed uint64) *VideoFrame {
	w, h := 1280, 720
	r := rand.New(rand.NewPCG(seed, 1))
	y := make([]byte, w*h)
	for i := range y {
		y[i] = byte(60 + (i%w)/16 + r.IntN(8))
	}
	return &VideoFrame{Width: w, Height: h, Y: y, Stride: w, BitDepth: 8, Duration: 1.0 / 30}
}

func BenchmarkMeasureBlack720p(b *testing.B) {
	f := benchFrame(1)
	var out BlackFeature
	b.ReportAllocs()
	b.SetBytes(int64(f.Width * f.Height))
	for b.Loop() {
		MeasureBlack(f, 0.1, 8, &out)
	}
}

func BenchmarkMeasureFreeze720p(b *testing.B) {
	f, p := benchFrame(1), benchFrame(2)
	var out FreezeFeature
	b.ReportAllocs()
	b.SetBytes(int64(f.Width * f.Height))
	for b.Loop() {
		MeasureFreeze(f, p, 8, 0.008, &out)
	}
}

func BenchmarkMeasureBlockiness720p(b *testing.B) {
	f := benchFrame(1)
	var out BlockFeature
	b.ReportAllocs()
	b.SetBytes(int64(f.Width * f.Height))
	for b.Loop() {
		MeasureBlockiness(f, 32, 12, 8, 8, false, &out)
	}
}

func TestSADRowMatchesScalar(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 7, 8, 9, 64, 1283, 4096} {
		a, b := make([]byte, n), make([]byte, n)
		for i := range a {
			a[i], b[i] = byte(r.IntN(256)), byte(r.IntN(256))
		}
		if n > 2 {
			a[0], b[0], a[1], b[1] = 255, 0, 0, 255
		}
		var want uint64
		for i := range a {
			want += uint64(absDiff(int(a[i]), int(b[i])))
		}
		if got := sadRow(a, b); got != want {
			t.Errorf("n=%d: sadRow=%d, want %d", n, got, want)
		}
	}
}
