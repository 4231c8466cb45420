package analyze

import (
	"bytes"
	"context"
	"errors"
	"image"
	"image/jpeg"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/testdata/clips"
)

// TestThumbnailsDir: analyze --thumbnails writes the picture of each raised
// alarm: the black clip's is a dark 320-pixel JPEG named after the defect.
func TestThumbnailsDir(t *testing.T) {
	tr, err := clips.Ensure(context.Background(), "black")
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "thumbs")
	o := Options{Media: media.Options{URL: tr[0].File, HWAccel: "none", Video: media.TrackFirst, Audio: media.TrackFirst},
		Config: detectors.DefaultConfig(), Format: "json", Logger: slog.New(slog.DiscardHandler), Thumbnails: dir}
	sum, err := Run(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.jpg"))
	raised := 0
	for _, a := range sum.Alarms {
		raised += a.Count
	}
	if len(files) == 0 || len(files) > raised {
		t.Fatalf("%d thumbnails for %d alarms: %v", len(files), raised, files)
	}
	black := 0
	for _, f := range files {
		if !strings.Contains(filepath.Base(f), "_black_") {
			continue
		}
		black++
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		img, err := jpeg.Decode(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		yc := img.(*image.YCbCr)
		sum := 0
		for _, v := range yc.Y {
			sum += int(v)
		}
		if yc.Rect.Dx() != 320 || sum/len(yc.Y) > 20 {
			t.Errorf("%s: %v, mean luma %d", f, yc.Rect, sum/len(yc.Y))
		}
	}
	if black != 1 {
		t.Errorf("%d black thumbnails, want 1: %v", black, files)
	}
}
