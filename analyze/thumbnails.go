package analyze

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/thumbnail"
)

// thumbs writes the thumbnail of each raised alarm's picture to a directory
// (analyze --thumbnails DIR), as the agent takes them (thumbnail.Camera on
// the pipeline's goroutine, JPEGs encoded by the worker) but with no rate
// limit: STREAM_DEFECT_SECONDS.jpg, seconds being the picture's media time.
type thumbs struct {
	svc    *thumbnail.Service
	cam    *thumbnail.Camera
	cur    *detectors.VideoFrame // the picture being analysed
	cancel context.CancelFunc
	done   chan struct{}
	n      int
}

func newThumbs(dir, stream string, log *slog.Logger) (*thumbs, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("thumbnails: %w", err)
	}
	cfg := thumbnail.DefaultConfig()
	cfg.MinInterval, cfg.MaxPerSecond = 0, 0
	name := strings.NewReplacer("/", "_", string(filepath.Separator), "_").Replace(stream)
	publish := func(_ context.Context, t *thumbnail.Thumb) error {
		f := filepath.Join(dir, fmt.Sprintf("%s_%s_%09.3f.jpg", name, t.Defect, t.PTS))
		if err := os.WriteFile(f, t.JPEG, 0o644); err != nil {
			return fmt.Errorf("thumbnail: %w", err)
		}
		log.Info("thumbnail written", "file", f, "bytes", len(t.JPEG))
		return nil
	}
	t := &thumbs{svc: thumbnail.New(cfg, publish, log), done: make(chan struct{})}
	t.cam = t.svc.Camera(stream)
	var ctx context.Context
	ctx, t.cancel = context.WithCancel(context.Background())
	go func() { defer close(t.done); t.svc.Run(ctx) }()
	return t, nil
}

// shoot takes the thumbnail of a raised alarm.
func (t *thumbs) shoot(e detectors.Event) {
	if e.State != detectors.Raised {
		return
	}
	pts := e.Start
	if t.cur != nil {
		pts = t.cur.PTS
	}
	if sh := t.cam.Alarm(t.cur, e.Defect, pts); sh != nil {
		sh.Event = fmt.Sprintf("%s@%.3f", e.Defect, e.Start) // analyze has no event ids
		t.cam.Commit(sh)
	}
}

// close waits for the JPEGs still being encoded; it returns their stats.
func (t *thumbs) close() thumbnail.Stats {
	t.cam.End()
	t.cancel()
	<-t.done
	return t.svc.Stats()
}

// thumbSink shows the pipeline's pictures to the camera around the analyzer
// (or the feature log).
type thumbSink struct {
	*detectors.Analyzer
	video func(cur, ref *detectors.VideoFrame) bool
	t     *thumbs
}

func (s *thumbSink) Video(cur, ref *detectors.VideoFrame) bool {
	s.t.cur = cur
	keep := s.video(cur, ref)
	s.t.cur = nil
	s.t.cam.Picture(cur)
	return keep
}
