package supervisor

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/testdata/clips"
)

type recorder struct {
	mu     sync.Mutex
	events []struct {
		stream string
		e      detectors.Event
	}
}

func (r *recorder) emit(stream string, e detectors.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, struct {
		stream string
		e      detectors.Event
	}{stream, e})
}

func (r *recorder) count(stream, defect string, s detectors.State) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, e := range r.events {
		if e.stream == stream && e.e.Defect == defect && e.e.State == s {
			n++
		}
	}
	return n
}

// balanced checks that every raised alarm was cleared, per stream and defect.
func (r *recorder) balanced(t *testing.T) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	open := map[string]int{}
	for _, e := range r.events {
		k := e.stream + "/" + e.e.Defect
		if e.e.State == detectors.Raised {
			open[k]++
		} else {
			open[k]--
		}
		if open[k] < 0 || open[k] > 1 {
			t.Errorf("%s: cleared without raise or raised twice", k)
		}
	}
	for k, n := range open {
		if n != 0 {
			t.Errorf("%s: still raised after stop", k)
		}
	}
}

func clip(t *testing.T, name string) string {
	t.Helper()
	tr, err := clips.Ensure(context.Background(), name)
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return tr[0].File
}

func cfg(id, url string, loop bool) StreamConfig {
	return StreamConfig{
		ID:        id,
		Media:     media.Options{URL: url, HWAccel: "none", Video: media.TrackFirst, Audio: media.TrackFirst, Threads: 1},
		Detectors: detectors.DefaultConfig(),
		Loop:      loop,
	}
}

func waitFor(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func state(s *Supervisor, id string) (Status, bool) {
	for _, st := range s.Status() {
		if st.ID == id {
			return st, true
		}
	}
	return Status{}, false
}

func TestApplyIsADiff(t *testing.T) {
	black, quiet, silence := clip(t, "black"), clip(t, "clean_quiet"), clip(t, "silence")
	rec := &recorder{}
	s := New(context.Background(), Options{Emit: rec.emit, MinBackoff: 20 * time.Millisecond})
	d := s.Apply([]StreamConfig{cfg("a", black, true), cfg("b", quiet, true)})
	if !slices.Equal(d.Started, []string{"a", "b"}) {
		t.Fatalf("started %v", d.Started)
	}
	waitFor(t, "both running", 20*time.Second, func() bool {
		a, _ := state(s, "a")
		b, _ := state(s, "b")
		return a.Frames > 0 && b.Frames > 0
	})
	before, _ := state(s, "a")
	changed := cfg("b", quiet, true)
	changed.Detectors.Black.MinDuration = 3
	d = s.Apply([]StreamConfig{cfg("a", black, true), changed, cfg("c", silence, false)})
	if !slices.Equal(d.Unchanged, []string{"a"}) || !slices.Equal(d.Restarted, []string{"b"}) ||
		!slices.Equal(d.Started, []string{"c"}) || len(d.Stopped) != 0 {
		t.Fatalf("diff %+v", d)
	}
	after, _ := state(s, "a")
	if after.Frames < before.Frames || after.Restarts < before.Restarts {
		t.Fatalf("unchanged stream a was restarted: %+v then %+v", before, after)
	}
	waitFor(t, "c to end", 30*time.Second, func() bool {
		c, _ := state(s, "c")
		return c.State == Ended
	})
	if n := rec.count("c", detectors.Silence, detectors.Cleared); n != 1 {
		t.Errorf("stream c: %d silence alarms, want 1", n)
	}
	waitFor(t, "a black alarm", 30*time.Second, func() bool { return rec.count("a", detectors.Black, detectors.Cleared) > 0 })
	d = s.Apply(nil)
	if !slices.Equal(d.Stopped, []string{"a", "b", "c"}) {
		t.Fatalf("stopped %v", d.Stopped)
	}
	if len(s.Status()) != 0 {
		t.Fatal("streams left after Apply(nil)")
	}
	rec.balanced(t)
	if n := rec.count("b", detectors.Black, detectors.Raised); n != 0 {
		t.Errorf("false black alarms on the clean clip: %d", n)
	}
}

func TestFailingInputIsRetriedAlone(t *testing.T) {
	quiet := clip(t, "clean_quiet")
	dir := t.TempDir()
	missing := filepath.Join(dir, "later.mkv")
	rec := &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(ctx, Options{Emit: rec.emit, MinBackoff: 20 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	s.Apply([]StreamConfig{cfg("broken", missing, false), cfg("good", quiet, true)})
	waitFor(t, "retrying", 10*time.Second, func() bool {
		st, _ := state(s, "broken")
		return st.State == Retrying && st.Restarts >= 3
	})
	if n := rec.count("broken", detectors.SignalLoss, detectors.Raised); n != 1 {
		t.Fatalf("signal_loss raised %d times during one outage, want 1", n)
	}
	st, _ := state(s, "broken")
	if st.Error == "" {
		t.Error("a retrying stream has no error to report")
	}
	if g, _ := state(s, "good"); g.Frames == 0 || g.State != Running {
		t.Errorf("good stream disturbed or not looping: %+v", g)
	}
	if err := os.Symlink(quiet, missing); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "recovery", 10*time.Second, func() bool {
		return rec.count("broken", detectors.SignalLoss, detectors.Cleared) == 1
	})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	rec.balanced(t)
}

func TestStopClearsAlarms(t *testing.T) {
	dir := t.TempDir()
	rec := &recorder{}
	s := New(context.Background(), Options{Emit: rec.emit, MinBackoff: time.Hour})
	s.Apply([]StreamConfig{cfg("gone", filepath.Join(dir, "none.ts"), false)})
	waitFor(t, "signal loss", 10*time.Second, func() bool {
		return rec.count("gone", detectors.SignalLoss, detectors.Raised) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if time.Since(start) > 2*time.Second {
		t.Errorf("stop took %s while waiting out a backoff", time.Since(start))
	}
	rec.balanced(t)
}
