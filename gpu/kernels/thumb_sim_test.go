package kernels

import (
	"bytes"
	"context"
	"log/slog"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/thumbnail"
)

// checkThumb: the thumbnail kernel's host run gives the bytes of the CPU
// downscale.
func checkThumb(t *testing.T, f *detectors.VideoFrame) {
	t.Helper()
	w, h, ok := thumbnail.Size(f.Width, f.Height, 320)
	if !ok {
		t.Fatalf("%dx%d: no thumbnail size", f.Width, f.Height)
	}
	want, got := thumbnail.NewImage(w, h), thumbnail.NewImage(w, h)
	if err := thumbnail.Downscale(want, f); err != nil {
		t.Fatal(err)
	}
	if err := HostThumb(f, got); err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string][2][]byte{"Y": {got.Y, want.Y}, "Cb": {got.Cb, want.Cb}, "Cr": {got.Cr, want.Cr}} {
		if !bytes.Equal(p[0], p[1]) {
			for i := range p[1] {
				if p[0][i] != p[1][i] {
					t.Fatalf("%s[%d]: kernel %d, CPU %d", name, i, p[0][i], p[1][i])
				}
			}
		}
	}
}

func TestThumbKernelMatchesCPU(t *testing.T) {
	for name, f := range ThumbPictures(rand.New(rand.NewPCG(3, 4))) {
		t.Run(name, func(t *testing.T) { checkThumb(t, f) })
	}
}

// thumbSink checks the kernel on decoded pictures as they come (their
// planes are valid during the call only).
type thumbSink struct {
	t      *testing.T
	n      int
	chroma int // pictures with chroma views
}

func (s *thumbSink) Tracks(float64, bool, bool) {}
func (s *thumbSink) Video(cur, _ *detectors.VideoFrame) bool {
	if s.n++; s.n%25 == 1 {
		if cur.Chroma.Cb != nil {
			s.chroma++
		}
		checkThumb(s.t, cur)
	}
	return false
}
func (s *thumbSink) Audio(*detectors.AudioBlock)           {}
func (s *thumbSink) Packet(detectors.Track, float64, bool) {}
func (s *thumbSink) DecodeError(float64, string)           {}
func (s *thumbSink) Stall(float64)                         {}
func (s *thumbSink) Resume(float64)                        {}

// TestThumbKernelMatchesCPUOnRealFrames: pictures of ../shared/media as the
// decoder gives them (its pixel formats and strides).
func TestThumbKernelMatchesCPUOnRealFrames(t *testing.T) {
	clips, _ := filepath.Glob(filepath.Join("..", "..", "..", "shared", "media", "*.*"))
	var n int
	for _, c := range clips {
		if filepath.Ext(c) == ".md" {
			continue
		}
		n++
		t.Run(filepath.Base(c), func(t *testing.T) {
			s := &thumbSink{t: t}
			o := media.Options{URL: c, HWAccel: "none", Video: media.TrackFirst, Audio: media.TrackNone,
				Threads: 1, Duration: 3, OpenTimeout: 10 * time.Second, Logger: slog.New(slog.DiscardHandler)}
			if _, err := media.Run(context.Background(), o, s); err != nil {
				t.Fatal(err)
			}
			if s.n == 0 || s.chroma == 0 {
				t.Fatalf("%d pictures, %d with chroma", s.n, s.chroma)
			}
		})
	}
	if n == 0 {
		t.Skip("SKIP real frames: ../shared/media is absent")
	}
}
