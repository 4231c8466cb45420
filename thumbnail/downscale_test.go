package thumbnail

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/streamqc/streamqc/detectors"
)

// layout of a test picture's chroma.
type layout struct {
	name           string
	shiftX, shiftY int
	semi, gray     bool
}

var (
	yuv420p = layout{name: "yuv420p", shiftX: 1, shiftY: 1}
	nv12    = layout{name: "nv12", shiftX: 1, shiftY: 1, semi: true}
	yuv422p = layout{name: "yuv422p", shiftX: 1}
	yuv444p = layout{name: "yuv444p"}
	gray    = layout{name: "gray", gray: true}
)

// picture makes a w x h picture of depth bits (values at 8-bit scale from
// fill, with rng low bits of noise above 8 bits; P010-like when depth is
// 16) with padded rows.
func picture(w, h, depth int, l layout, full bool, rng *rand.Rand, fill func(plane, x, y int) int) *detectors.VideoFrame {
	bytes, shift := sampleBytes(depth)
	put := func(p []byte, i, v int) {
		v = min(max(v, 0), 255)
		if bytes == 1 {
			p[i] = byte(v)
			return
		}
		s := v << shift
		if rng != nil {
			s |= rng.IntN(1 << shift)
		}
		p[i], p[i+1] = byte(s), byte(s>>8)
	}
	pad := 7 * bytes
	f := &detectors.VideoFrame{Width: w, Height: h, BitDepth: depth, FullRange: full, Stride: w*bytes + pad}
	f.Y = make([]byte, f.Stride*h)
	for i := range f.Y {
		f.Y[i] = 0xa5 // padding must never count
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			put(f.Y, y*f.Stride+x*bytes, fill(0, x, y))
		}
	}
	if l.gray {
		return f
	}
	c := detectors.Chroma{ShiftX: l.shiftX, ShiftY: l.shiftY, Step: bytes}
	cw, ch := c.Width(w), c.Height(h)
	if l.semi {
		c.Step = 2 * bytes
	}
	c.Stride = cw*c.Step + pad
	if l.semi {
		uv := make([]byte, c.Stride*ch)
		c.Cb, c.Cr = uv, uv[bytes:]
	} else {
		c.Cb, c.Cr = make([]byte, c.Stride*ch), make([]byte, c.Stride*ch)
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

// reference: the mean of each box in floating point, rounded, expanded
// with the range formula in floating point.
func reference(f *detectors.VideoFrame, tw, th int) (y, cb, cr []uint8) {
	bytes, shift := sampleBytes(f.BitDepth)
	sample := func(p []byte, i int) float64 {
		if bytes == 2 {
			return float64(int(p[i])|int(p[i+1])<<8) / float64(int(1)<<shift)
		}
		return float64(p[i])
	}
	plane := func(p []byte, stride, step, sw, sh, dw, dh int, chroma bool) []uint8 {
		out := make([]uint8, dw*dh)
		for oy := 0; oy < dh; oy++ {
			for ox := 0; ox < dw; ox++ {
				x0, x1 := max(ox*sw/dw, 0), (ox+1)*sw/dw
				y0, y1 := oy*sh/dh, (oy+1)*sh/dh
				x1, y1 = max(x1, x0+1), max(y1, y0+1)
				sum := 0.0
				for yy := y0; yy < y1; yy++ {
					for xx := x0; xx < x1; xx++ {
						sum += sample(p, yy*stride+xx*step)
					}
				}
				v := math.Min(math.Floor(sum/float64((x1-x0)*(y1-y0))+0.5), 255)
				if !f.FullRange {
					if chroma {
						v = 128 + (v-128)*255/224
					} else {
						v = (v - 16) * 255 / 219
					}
					v = math.Min(math.Max(math.Round(v), 0), 255)
				}
				out[oy*dw+ox] = uint8(v)
			}
		}
		return out
	}
	y = plane(f.Y, f.Stride, bytes, f.Width, f.Height, tw, th, false)
	c := &f.Chroma
	if c.Cb == nil {
		cb, cr = make([]uint8, tw*th/4), make([]uint8, tw*th/4)
		for i := range cb {
			cb[i], cr[i] = 128, 128
		}
		return y, cb, cr
	}
	sw, sh := c.Width(f.Width), c.Height(f.Height)
	return y, plane(c.Cb, c.Stride, c.Step, sw, sh, tw/2, th/2, true), plane(c.Cr, c.Stride, c.Step, sw, sh, tw/2, th/2, true)
}

func TestSize(t *testing.T) {
	for _, c := range []struct {
		w, h, width, tw, th int
		ok                  bool
	}{
		{1920, 1080, 320, 320, 180, true},
		{1280, 720, 320, 320, 180, true},
		{720, 576, 320, 320, 256, true}, // square pixels assumed
		{723, 405, 320, 320, 180, true},
		{1080, 1920, 320, 320, 568, true},   // portrait
		{1080, 1920, 1280, 608, 1080, true}, // portrait, at most MaxHeight
		{100, 4000, 320, 28, 1080, true},    // 27 pixels rounded to even
		{321, 241, 320, 320, 240, true},
		{200, 100, 320, 200, 100, true}, // never upscaled
		{17, 9, 320, 16, 8, true},       // odd: even and inside
		{3, 3, 320, 2, 2, true},
		{1, 10, 320, 0, 0, false},
		{10, 1, 320, 0, 0, false},
	} {
		tw, th, ok := Size(c.w, c.h, c.width)
		if tw != c.tw || th != c.th || ok != c.ok {
			t.Errorf("Size(%d, %d, %d) = %d, %d, %v; want %d, %d, %v", c.w, c.h, c.width, tw, th, ok, c.tw, c.th, c.ok)
		}
	}
}

// TestDownscaleKnown: a 4x2 picture to 2x2, every value worked by hand.
func TestDownscaleKnown(t *testing.T) {
	ys := [][]int{{10, 20, 30, 40}, {50, 60, 70, 80}}
	for _, c := range []struct {
		name   string
		full   bool
		depth  int
		l      layout
		y      []uint8
		cb, cr uint8
	}{
		{name: "full 8-bit planar", full: true, depth: 8, l: yuv420p, y: []uint8{15, 35, 55, 75}, cb: 105, cr: 205},
		{name: "full 8-bit nv12", full: true, depth: 8, l: nv12, y: []uint8{15, 35, 55, 75}, cb: 105, cr: 205},
		{name: "full 10-bit planar", full: true, depth: 10, l: yuv420p, y: []uint8{15, 35, 55, 75}, cb: 105, cr: 205},
		{name: "full p010", full: true, depth: 16, l: nv12, y: []uint8{15, 35, 55, 75}, cb: 105, cr: 205},
		// limited: (v-16)*255/219 rounded: 15 -> 0, 35 -> 22, 55 -> 45, 75 -> 69; chroma 128+(v-128)*255/224.
		{name: "limited 8-bit planar", depth: 8, l: yuv420p, y: []uint8{0, 22, 45, 69}, cb: 102, cr: 216},
		{name: "limited 10-bit 4:2:2", depth: 10, l: yuv422p, y: []uint8{0, 22, 45, 69}, cb: 102, cr: 216},
		{name: "grey", full: true, depth: 8, l: gray, y: []uint8{15, 35, 55, 75}, cb: 128, cr: 128},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := picture(4, 2, c.depth, c.l, c.full, nil, func(p, x, y int) int {
				switch p {
				case 0:
					return ys[y][x]
				case 1:
					return 100 + 10*x
				}
				return 200 + 10*x
			})
			img := NewImage(2, 2)
			if err := Downscale(img, f); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(img.Y, c.y) || img.Cb[0] != c.cb || img.Cr[0] != c.cr {
				t.Errorf("Y %v Cb %d Cr %d; want %v %d %d", img.Y, img.Cb[0], img.Cr[0], c.y, c.cb, c.cr)
			}
		})
	}
}

// TestDownscale holds Downscale to the floating-point reference on sizes,
// odd dimensions, bit depths and layouts, and NV12 to planar.
func TestDownscale(t *testing.T) {
	type tc struct {
		w, h, depth int
		l           layout
		full        bool
	}
	var cases []tc
	for _, sz := range [][2]int{{1920, 1080}, {723, 405}, {17, 9}, {64, 64}, {1080, 1920}, {320, 180}} {
		for _, depth := range []int{8, 10, 16} {
			for _, l := range []layout{yuv420p, nv12, yuv422p, yuv444p, gray} {
				cases = append(cases, tc{sz[0], sz[1], depth, l, depth == 8})
			}
		}
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%dx%d %dbit %s full=%v", c.w, c.h, c.depth, c.l.name, c.full), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(uint64(c.w), uint64(c.depth)))
			f := picture(c.w, c.h, c.depth, c.l, c.full, rng, func(p, x, y int) int {
				return (x*7 + y*13 + p*50) % 256
			})
			tw, th, _ := Size(c.w, c.h, 320)
			img := NewImage(tw, th)
			if err := Downscale(img, f); err != nil {
				t.Fatal(err)
			}
			y, cb, cr := reference(f, tw, th)
			for name, p := range map[string][2][]uint8{"Y": {img.Y, y}, "Cb": {img.Cb, cb}, "Cr": {img.Cr, cr}} {
				for i := range p[1] {
					// The reference divides the noise of wide samples in
					// floating point: a mean on a .5 boundary may round
					// the other way; the 8-bit ones are exact.
					if d := int(p[0][i]) - int(p[1][i]); d != 0 && (c.depth == 8 || d < -1 || d > 1) {
						t.Fatalf("%s[%d] = %d, reference %d", name, i, p[0][i], p[1][i])
					}
				}
			}
		})
	}
}

func TestDownscaleNV12IsPlanar(t *testing.T) {
	for _, depth := range []int{8, 10, 16} {
		fill := func(p, x, y int) int { return (x*x + y*3 + p*77) % 256 }
		a := picture(723, 405, depth, yuv420p, false, rand.New(rand.NewPCG(5, 5)), fill)
		b := picture(723, 405, depth, nv12, false, rand.New(rand.NewPCG(5, 5)), fill)
		ia, ib := NewImage(320, 180), NewImage(320, 180)
		if err := errors2(Downscale(ia, a), Downscale(ib, b)); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(ia.Y, ib.Y) || !bytes.Equal(ia.Cb, ib.Cb) || !bytes.Equal(ia.Cr, ib.Cr) {
			t.Errorf("%d bit: NV12 and planar differ", depth)
		}
	}
}

func errors2(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

func TestDownscaleRefuses(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	ok := func() *detectors.VideoFrame {
		return picture(64, 36, 8, yuv420p, true, rng, func(p, x, y int) int { return 100 })
	}
	for _, c := range []struct {
		name   string
		mutate func(f *detectors.VideoFrame, img **image.YCbCr)
	}{
		{"luma too short", func(f *detectors.VideoFrame, _ **image.YCbCr) { f.Y = f.Y[:len(f.Y)/2] }},
		{"chroma too short", func(f *detectors.VideoFrame, _ **image.YCbCr) { f.Chroma.Cr = f.Chroma.Cr[:10] }},
		{"stride below width", func(f *detectors.VideoFrame, _ **image.YCbCr) { f.Stride = 10 }},
		{"bit depth", func(f *detectors.VideoFrame, _ **image.YCbCr) { f.BitDepth = 4 }},
		{"thumbnail larger than picture", func(_ *detectors.VideoFrame, img **image.YCbCr) { *img = NewImage(128, 72) }},
		{"odd thumbnail", func(_ *detectors.VideoFrame, img **image.YCbCr) { *img = NewImage(31, 18) }},
		{"not 4:2:0", func(_ *detectors.VideoFrame, img **image.YCbCr) {
			*img = image.NewYCbCr(image.Rect(0, 0, 32, 18), image.YCbCrSubsampleRatio444)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f, img := ok(), NewImage(32, 18)
			if err := Downscale(img, f); err != nil {
				t.Fatalf("before the change: %v", err)
			}
			c.mutate(f, &img)
			if err := Downscale(img, f); err == nil {
				t.Error("no error")
			}
		})
	}
}

func TestDownscaleAllocs(t *testing.T) {
	f := picture(1920, 1080, 8, nv12, false, rand.New(rand.NewPCG(1, 1)), func(p, x, y int) int { return x + y })
	img := NewImage(320, 180)
	if n := testing.AllocsPerRun(5, func() { _ = Downscale(img, f) }); n != 0 {
		t.Errorf("Downscale allocates %.0f times", n)
	}
}

func BenchmarkDownscale(b *testing.B) {
	for _, c := range []struct {
		name  string
		depth int
		l     layout
	}{{"1080p nv12", 8, nv12}, {"1080p yuv420p", 8, yuv420p}, {"1080p p010", 16, nv12}} {
		b.Run(c.name, func(b *testing.B) {
			f := picture(1920, 1080, c.depth, c.l, false, rand.New(rand.NewPCG(1, 1)), func(p, x, y int) int { return (x ^ y) & 255 })
			img := NewImage(320, 180)
			b.ReportAllocs()
			for b.Loop() {
				if err := Downscale(img, f); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkEncode: a 320x180 thumbnail of a detailed picture (the worst
// case for size) at quality 75.
func BenchmarkEncode(b *testing.B) {
	rng := rand.New(rand.NewPCG(1, 1))
	f := picture(1920, 1080, 8, nv12, false, rng, func(p, x, y int) int {
		return 16 + (x*x/7+y*y/5+p*40)%200 + rng.IntN(20)
	})
	img := NewImage(320, 180)
	if err := Downscale(img, f); err != nil {
		b.Fatal(err)
	}
	var buf bytes.Buffer
	b.ReportAllocs()
	for b.Loop() {
		buf.Reset()
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: 75}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(buf.Len()), "jpeg-bytes")
}
