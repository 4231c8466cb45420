package supervisor

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/testdata/clips"
	"github.com/streamqc/streamqc/thumbnail"
	"github.com/streamqc/streamqc/transport"
	"strings"
)

type recorder struct {
	mu     sync.Mutex
	events []struct {
		stream string
		e      detectors.Event
	}
}

func (r *recorder) emit(stream string, e detectors.Event, _ *thumbnail.Shot) {
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
		k := e.stream + "/" + e.e.Key()
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

// TestTransportMetrics: an MPEG-TS stream's TR 101 290 errors are counted per
// indicator in its status (metrics), and its tr101290 alarms are raised and
// cleared one per indicator.
func TestTransportMetrics(t *testing.T) {
	file := clip(t, clips.BroadcastTS)
	rec := &recorder{}
	s := New(context.Background(), Options{Emit: rec.emit, MinBackoff: time.Hour})
	c := cfg("ts", file, false)
	c.Detectors.TR101290.PCRRepetition = 0.04 // DVB's limit, which FFmpeg's muxer exceeds: alarms to raise and clear
	s.Apply([]StreamConfig{c})
	waitFor(t, "the end of the clip", 60*time.Second, func() bool {
		st, ok := state(s, "ts")
		return ok && st.State == Ended
	})
	st, _ := state(s, "ts")
	if len(st.TR101290) != int(transport.NumIndicators) {
		t.Fatalf("tr101290 counts %v: want every indicator", st.TR101290)
	}
	for k, n := range st.TR101290 {
		if strings.HasPrefix(k, "1.") && n != 0 {
			t.Errorf("%s = %d on a clean clip", k, n)
		}
	}
	// FFmpeg's variable-rate muxer sends a PCR every 100 ms or so: DVB's 40 ms is exceeded.
	if st.TR101290["2.3a pcr_repetition_error"] == 0 {
		t.Errorf("no PCR repetition error counted: %v", st.TR101290)
	}
	if rec.count("ts", detectors.TR101290, detectors.Cleared) == 0 {
		t.Error("no tr101290 alarm raised and cleared")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	rec.balanced(t)
}

// TestLoopingFileIsOneStream: a clip with a permanent defect, looped, raises
// it once and keeps it raised across every wrap (it cleared and raised again
// at each loop): digital silence, and a picture that never changes (the
// first picture after a wrap has nothing to compare with, which is no
// evidence of motion).
func TestLoopingFileIsOneStream(t *testing.T) {
	for _, tc := range []struct {
		defect string
		clip   func(*testing.T) string
	}{
		{detectors.Silence, silentClip},
		{detectors.Freeze, stillClip},
	} {
		t.Run(tc.defect, func(t *testing.T) {
			file := tc.clip(t)
			rec := &recorder{}
			s := New(context.Background(), Options{Emit: rec.emit, MinBackoff: 20 * time.Millisecond})
			s.Apply([]StreamConfig{cfg("a", file, true)})
			waitFor(t, "three loops of 75 frames", 30*time.Second, func() bool {
				st, _ := state(s, "a")
				return st.Frames > 3*75
			})
			if r, c := rec.count("a", tc.defect, detectors.Raised), rec.count("a", tc.defect, detectors.Cleared); r != 1 || c != 0 {
				t.Errorf("%s raised %d and cleared %d times over the loops, want raised once, never cleared", tc.defect, r, c)
			}
			if err := s.Stop(context.Background()); err != nil {
				t.Fatal(err)
			}
			rec.balanced(t)
		})
	}
}

// TestClearCauses: a clear says why: the stream removed, restarted with new
// settings, or the agent stopping; never "recovered" for those.
func TestClearCauses(t *testing.T) {
	file := silentClip(t)
	rec := &recorder{}
	s := New(context.Background(), Options{Emit: rec.emit, MinBackoff: 20 * time.Millisecond})
	raised := func(id string) func() bool {
		return func() bool { return rec.count(id, detectors.Silence, detectors.Raised) > 0 }
	}
	s.Apply([]StreamConfig{cfg("removed", file, true), cfg("changed", file, true), cfg("kept", file, true)})
	for _, id := range []string{"removed", "changed", "kept"} {
		waitFor(t, id+" silence", 20*time.Second, raised(id))
	}
	changed := cfg("changed", file, true)
	changed.Detectors.Silence.MinDuration = 3
	s.Apply([]StreamConfig{changed, cfg("kept", file, true)})
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"removed": detectors.CauseStreamStopped, "changed": detectors.CauseConfigChanged, "kept": detectors.CauseAgentStopping}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	seen := map[string]bool{}
	for _, e := range rec.events {
		if e.e.Defect != detectors.Silence || e.e.State != detectors.Cleared || seen[e.stream] {
			continue
		}
		seen[e.stream] = true // the first clear: the restarted stream raises and clears again later
		if e.e.Cause != want[e.stream] {
			t.Errorf("%s: cleared with cause %q, want %q", e.stream, e.e.Cause, want[e.stream])
		}
	}
	if len(seen) != 3 {
		t.Errorf("clears seen for %v, want all three streams", seen)
	}
}

// silentClip makes a 3 s clip whose audio is digital silence throughout.
func silentClip(t *testing.T) string {
	return lavfiClip(t, "silent.mkv", "testsrc2=s=320x240:r=25", "anullsrc=r=48000:cl=stereo")
}

// stillClip makes a 3 s clip whose picture never changes, the encoding
// included (lossless).
func stillClip(t *testing.T) string {
	return lavfiClip(t, "still.mkv", "testsrc2=s=320x240:r=25,trim=end_frame=1,loop=loop=-1:size=1", "sine=f=1000:r=48000", "-qp", "0")
}

// lavfiClip encodes 3 s of FFmpeg's generated video and audio (H.264, PCM).
func lavfiClip(t *testing.T, name, video, audio string, x264 ...string) string {
	t.Helper()
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("SKIP: no ffmpeg CLI")
	}
	file := filepath.Join(t.TempDir(), name)
	args := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", video, "-f", "lavfi", "-i", audio,
		"-t", "3", "-c:v", "libx264", "-preset", "ultrafast"}
	args = append(append(args, x264...), "-c:a", "pcm_s16le", file)
	if out, err := exec.Command(ff, args...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	return file
}
