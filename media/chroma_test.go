package media

import (
	"context"
	"testing"

	"github.com/streamqc/streamqc/detectors"
)

// chromaSink reads every sample of the first picture through its views.
type chromaSink struct {
	recorder
	seen         bool
	y, cb, cr    [2]int // min, max at 8-bit scale
	depth, shift int
	chroma       detectors.Chroma
}

func (s *chromaSink) Video(cur, ref *detectors.VideoFrame) bool {
	if s.seen {
		return false
	}
	s.seen, s.depth, s.chroma = true, cur.BitDepth, cur.Chroma
	bytes, shift := 1, 0
	if cur.BitDepth > 8 {
		bytes, shift = 2, cur.BitDepth-8
	}
	read := func(p []byte, i int) int {
		if bytes == 2 {
			return (int(p[i]) | int(p[i+1])<<8) >> shift
		}
		return int(p[i])
	}
	span := func(r *[2]int, p []byte, stride, step, w, h int) {
		*r = [2]int{1 << 20, -1}
		for y := 0; y < h; y++ {
			for x := 0; x < w; x++ {
				v := read(p, y*stride+x*step)
				r[0], r[1] = min(r[0], v), max(r[1], v)
			}
		}
	}
	span(&s.y, cur.Y, cur.Stride, bytes, cur.Width, cur.Height)
	c := &cur.Chroma
	if c.Cb != nil {
		span(&s.cb, c.Cb, c.Stride, c.Step, c.Width(cur.Width), c.Height(cur.Height))
		span(&s.cr, c.Cr, c.Stride, c.Step, c.Width(cur.Width), c.Height(cur.Height))
	}
	return false
}

// TestChromaView: a flat Y 100, Cb 60, Cr 200 picture in each pixel format
// reads back through VideoFrame.Chroma with its subsampling and layout
// (planar, semi-planar, Cr first, 10-bit, grey).
func TestChromaView(t *testing.T) {
	for _, c := range []struct {
		pixFmt         string
		shiftX, shiftY int
		step           int
		grey           bool
		y, cb, cr      int // at 8-bit scale
	}{
		{"yuv420p", 1, 1, 1, false, 100, 60, 200},
		{"nv12", 1, 1, 2, false, 100, 60, 200},
		{"nv21", 1, 1, 2, false, 100, 60, 200},
		{"yuv422p", 1, 0, 1, false, 100, 60, 200},
		{"yuv444p", 0, 0, 1, false, 100, 60, 200},
		{"yuv420p10le", 1, 1, 2, false, 100, 60, 200},
		// full range: swscale stretched the values
		{"yuvj420p", 1, 1, 1, false, 98, 51, 210},
		{"gray", 0, 0, 0, true, 98, 0, 0},
		// P010 (NVDEC's 10-bit output) has no raw mapping in a container the
		// CLI writes; the thumbnail and kernel tests cover its layout.
	} {
		t.Run(c.pixFmt, func(t *testing.T) {
			clip := ffmpegClip(t, c.pixFmt+".nut", "-f", "lavfi", "-i",
				"nullsrc=s=66x38:r=5,format=yuv444p,geq=lum=100:cb=60:cr=200", "-t", "0.4",
				"-c:v", "rawvideo", "-pix_fmt", c.pixFmt)
			o := quiet()
			o.URL, o.Audio = clip, TrackNone
			s := &chromaSink{}
			if _, err := Run(context.Background(), o, s); err != nil {
				t.Fatal(err)
			}
			if !s.seen {
				t.Fatal("no picture")
			}
			within := func(what string, r [2]int, want int) {
				if r[0] < want-1 || r[1] > want+1 {
					t.Errorf("%s %v, want %d", what, r, want)
				}
			}
			within("Y", s.y, c.y)
			ch := s.chroma
			if c.grey {
				if ch.Cb != nil || ch.Cr != nil {
					t.Errorf("grey picture has chroma %+v", ch)
				}
				return
			}
			if ch.ShiftX != c.shiftX || ch.ShiftY != c.shiftY || ch.Step != c.step {
				t.Errorf("chroma shifts %d,%d step %d; want %d,%d step %d", ch.ShiftX, ch.ShiftY, ch.Step, c.shiftX, c.shiftY, c.step)
			}
			within("Cb", s.cb, c.cb)
			within("Cr", s.cr, c.cr)
		})
	}
}
