package supervisor

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/thumbnail"
)

// shots records what a supervisor with thumbnails emits and publishes.
type shots struct {
	mu     sync.Mutex
	events []shotEvent
	thumbs map[string]thumbnail.Thumb // by id
}

type shotEvent struct {
	stream string
	e      detectors.Event
	id     string // the shot's, "" without one
}

func (s *shots) emit(stream string, e detectors.Event, sh *thumbnail.Shot) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := shotEvent{stream: stream, e: e}
	if sh != nil {
		r.id = sh.ID
		sh.Event = fmt.Sprintf("event-%d", len(s.events)) // as the agent, once spooled
	}
	s.events = append(s.events, r)
}

func (s *shots) publish(_ context.Context, t *thumbnail.Thumb) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := *t
	c.JPEG = nil
	s.thumbs[t.ID] = c
	return nil
}

func (s *shots) raised(stream, defect string) (shotEvent, thumbnail.Thumb, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.events {
		if r.stream == stream && r.e.Defect == defect && r.e.State == detectors.Raised {
			th, ok := s.thumbs[r.id]
			return r, th, ok
		}
	}
	return shotEvent{}, thumbnail.Thumb{}, false
}

// TestThumbnails: an alarm raised while a picture is analysed (freeze) gets
// that picture; one raised between pictures (silence, from the audio) the
// next one; clears never get one.
func TestThumbnails(t *testing.T) {
	rec := &shots{thumbs: map[string]thumbnail.Thumb{}}
	svc := thumbnail.New(thumbnail.DefaultConfig(), rec.publish, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { svc.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	s := New(context.Background(), Options{Emit: rec.emit, Thumbnails: svc, MinBackoff: time.Hour})
	s.Apply([]StreamConfig{cfg("f", clip(t, "freeze"), false), cfg("s", clip(t, "silence"), false)})
	defer s.Stop(context.Background())
	for _, c := range []struct{ stream, defect string }{{"f", "freeze"}, {"s", "silence"}} {
		var r shotEvent
		var th thumbnail.Thumb
		waitFor(t, c.defect+"'s thumbnail", 30*time.Second, func() bool {
			var ok bool
			r, th, ok = rec.raised(c.stream, c.defect)
			return ok
		})
		if th.Event == "" || th.Defect != c.defect || th.Stream != c.stream || th.Width != 320 || th.Height != 180 {
			t.Errorf("%s: thumbnail %+v", c.defect, th)
		}
		// The freeze is raised once it lasted min_duration; the silence on
		// an audio block, the picture following it.
		if th.PTS < r.e.Start || th.PTS > r.e.Start+5 {
			t.Errorf("%s starting at %.2f s: picture at %.2f s", c.defect, r.e.Start, th.PTS)
		}
	}
	waitFor(t, "the clears", 30*time.Second, func() bool {
		st, _ := state(s, "s")
		return st.State == Ended
	})
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, r := range rec.events {
		if r.e.State == detectors.Cleared && r.id != "" {
			t.Errorf("a clear with a thumbnail: %+v", r)
		}
	}
	if st := svc.Stats(); st.Published < 2 || st.Failed != 0 {
		t.Errorf("stats %+v", st)
	}
}
