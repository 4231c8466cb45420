package thumbnail

import (
	"bytes"
	"context"
	"errors"
	"image/jpeg"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/schema"
)

func TestLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	for _, c := range []struct {
		name string
		rate float64
		at   []int // ms
		want []bool
	}{
		{"burst up to the rate", 3, []int{0, 0, 0, 0}, []bool{true, true, true, false}},
		{"refills with time", 2, []int{0, 0, 0, 499, 500, 1000, 1001}, []bool{true, true, false, false, true, true, false}},
		{"never more than the rate after idling", 2, []int{0, 10000, 10000, 10000}, []bool{true, true, true, false}},
		{"off", 0, []int{0, 0, 0, 0, 0}, []bool{true, true, true, true, true}},
	} {
		t.Run(c.name, func(t *testing.T) {
			l := Limiter{Rate: c.rate}
			for i, ms := range c.at {
				if got := l.Allow(at(ms)); got != c.want[i] {
					t.Errorf("call %d at %d ms: %v, want %v", i, ms, got, c.want[i])
				}
			}
		})
	}
}

// TestLimiterReserve: a live thumbnail leaves its reserve to alarms: with
// live pictures asking all the time, alarms still find tokens.
func TestLimiterReserve(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := Limiter{Rate: 10}
	live := 0
	for ms := 0; ms < 10000; ms += 10 { // a live picture asked every 10 ms for 10 s
		if l.AllowAbove(t0.Add(time.Duration(ms)*time.Millisecond), l.Rate/2) {
			live++
		}
	}
	if live < 90 || live > 106 {
		t.Errorf("live pictures let through in 10 s at 10 a second: %d", live)
	}
	now := t0.Add(10 * time.Second)
	alarms := 0
	for range 10 {
		if l.Allow(now) {
			alarms++
		}
	}
	if alarms < 4 {
		t.Errorf("alarms let through at once after 10 s of live pictures: %d, want the reserve (5)", alarms)
	}
}

func TestInterval(t *testing.T) {
	t0 := time.Unix(1000, 0)
	i := Interval{Every: 2 * time.Second}
	for _, c := range []struct {
		ms   int
		want bool
	}{{0, true}, {1999, false}, {2000, true}, {2500, false}, {4100, true}} {
		if got := i.Allow(t0.Add(time.Duration(c.ms) * time.Millisecond)); got != c.want {
			t.Errorf("at %d ms: %v, want %v", c.ms, got, c.want)
		}
	}
}

// recorder is a Publish that keeps what it is given.
type recorder struct {
	mu     sync.Mutex
	thumbs []Thumb
	err    error
}

func (r *recorder) publish(_ context.Context, t *Thumb) error {
	if r.err != nil {
		return r.err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := *t
	c.JPEG = bytes.Clone(t.JPEG)
	r.thumbs = append(r.thumbs, c)
	return nil
}

func (r *recorder) list() []Thumb {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Thumb(nil), r.thumbs...)
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func flat(v int, pts float64) *detectors.VideoFrame {
	f := picture(1280, 720, 8, nv12, false, nil, func(p, x, y int) int {
		if p > 0 {
			return 128
		}
		return v
	})
	f.PTS = pts
	return f
}

func start(t *testing.T, cfg Config, r *recorder) *Service {
	s := New(cfg, r.publish, nil)
	run(t, s)
	return s
}

// run runs s's worker until the test ends.
func run(t *testing.T, s *Service) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// TestCameraAlarm: a raised alarm's picture, encoded and published with its
// event; the rate limit and the busy worker make alarms without one.
func TestCameraAlarm(t *testing.T) {
	r := &recorder{}
	cfg := DefaultConfig()
	s := start(t, cfg, r)
	c := s.Camera("s1")
	black := flat(16, 3.5)
	sh := c.Alarm(black, "black", 3.5)
	if sh == nil || len(sh.ID) != 32 {
		t.Fatalf("no shot: %+v", sh)
	}
	sh.Event = "0123456789abcdef0123456789abcdef"
	c.Commit(sh)
	waitFor(t, "the thumbnail", func() bool { return len(r.list()) == 1 })
	th := r.list()[0]
	if th.ID != sh.ID || th.Event != sh.Event || th.Defect != "black" || th.Kind != schema.ThumbAlarm || th.Stream != "s1" ||
		th.PTS != 3.5 || th.Width != 320 || th.Height != 180 {
		t.Errorf("thumb %+v", th)
	}
	img, err := jpeg.Decode(bytes.NewReader(th.JPEG))
	if err != nil {
		t.Fatal(err)
	}
	if b := img.Bounds(); b.Dx() != 320 || b.Dy() != 180 {
		t.Errorf("JPEG %v", b)
	}
	if r, g, b, _ := img.At(160, 90).RGBA(); r>>8 > 8 || g>>8 > 8 || b>>8 > 8 {
		t.Errorf("a black picture's thumbnail is %d,%d,%d", r>>8, g>>8, b>>8)
	}
	doc := th.Doc("f", "a")
	set, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := set.Validate(schema.Thumbnail, mustJSON(t, doc)); err != nil {
		t.Errorf("document: %v", err)
	}

	// Within min_interval: none, counted as limited.
	if sh := c.Alarm(black, "freeze", 4); sh != nil {
		t.Error("a second alarm within min_interval has a thumbnail")
	}
	if st := s.Stats(); st.Published != 1 || st.Limited != 1 || st.Dropped != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestCameraCases(t *testing.T) {
	picture := flat(200, 10)
	for _, c := range []struct {
		name string
		cfg  func(*Config)
		run  func(t *testing.T, c *Camera, r *recorder)
		want Stats
		n    int  // thumbnails published
		late bool // the worker starts after run
	}{
		{"alarms off", func(c *Config) { c.Alarms = false }, func(t *testing.T, c *Camera, _ *recorder) {
			if c.Alarm(picture, "black", 10) != nil {
				t.Error("a shot")
			}
		}, Stats{}, 0, false},
		{"event not spooled", nil, func(t *testing.T, c *Camera, _ *recorder) {
			c.Commit(c.Alarm(picture, "black", 10))
		}, Stats{Dropped: 1}, 0, false},
		{"no picture at hand: the next one", nil, func(t *testing.T, c *Camera, _ *recorder) {
			c.Picture(flat(100, 9.9))
			sh := c.Alarm(nil, "decode_error", 10)
			if sh == nil {
				t.Fatal("no shot")
			}
			sh.Event = "e"
			c.Commit(sh)
			c.Picture(picture)
		}, Stats{Published: 1}, 1, false},
		{"no picture at hand, no recent video", nil, func(t *testing.T, c *Camera, _ *recorder) {
			c.Picture(flat(100, 1))
			if c.Alarm(nil, "silence", 10) != nil {
				t.Error("a shot for an audio alarm on a stream whose video stopped 9 s before")
			}
		}, Stats{}, 0, false},
		{"input ends before the picture", nil, func(t *testing.T, c *Camera, _ *recorder) {
			c.Picture(flat(100, 9.9))
			sh := c.Alarm(nil, "decode_error", 10)
			sh.Event = "e"
			c.Commit(sh)
			c.End()
		}, Stats{Dropped: 1}, 0, false},
		{"worker busy: dropped, never waited for", func(c *Config) { c.MinInterval = 0 }, func(t *testing.T, c *Camera, r *recorder) {
			for i := 0; i < 3; i++ {
				if sh := c.Alarm(picture, "black", 10); sh != nil {
					sh.Event = "e"
					c.Commit(sh)
				}
			}
		}, Stats{Published: 1, Dropped: 2}, 1, true},
		{"global cap", func(c *Config) { c.MinInterval, c.MaxPerSecond = 0, 1 }, func(t *testing.T, c *Camera, r *recorder) {
			sh := c.Alarm(picture, "black", 10)
			sh.Event = "e"
			c.Commit(sh)
			waitFor(t, "the first", func() bool { return len(r.list()) == 1 })
			if c.Alarm(picture, "black", 10) != nil {
				t.Error("a second thumbnail in the same second")
			}
		}, Stats{Published: 1, Limited: 1}, 1, false},
		{"live thumbnails", func(c *Config) { c.Live = time.Hour }, func(t *testing.T, c *Camera, r *recorder) {
			c.Picture(picture)
			waitFor(t, "the live one", func() bool { return len(r.list()) == 1 })
			c.Picture(picture) // not due before an hour
			if th := r.list()[0]; th.Kind != schema.ThumbLive || th.Event != "" {
				t.Errorf("%+v", th)
			}
		}, Stats{Published: 1}, 1, false},
		{"publish fails", func(c *Config) { c.Live = time.Hour }, func(t *testing.T, c *Camera, r *recorder) {
			r.err = errors.New("not connected")
			c.Picture(picture)
		}, Stats{Failed: 1}, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := DefaultConfig()
			if c.cfg != nil {
				c.cfg(&cfg)
			}
			r := &recorder{}
			s := New(cfg, r.publish, nil)
			if !c.late {
				run(t, s)
			}
			cam := s.Camera("s")
			c.run(t, cam, r)
			if c.late {
				run(t, s)
			}
			waitFor(t, "the counts", func() bool {
				st := s.Stats()
				return st.Published+st.Failed == c.want.Published+c.want.Failed
			})
			if st := s.Stats(); st != c.want || len(r.list()) != c.n {
				t.Errorf("stats %+v, %d published; want %+v, %d", st, len(r.list()), c.want, c.n)
			}
		})
	}
}

// TestCameraPictureAllocs: the per-picture call allocates nothing when no
// thumbnail is due (live off, and live on between two).
func TestCameraPictureAllocs(t *testing.T) {
	f := picture(1920, 1080, 8, nv12, false, rand.New(rand.NewPCG(1, 1)), func(p, x, y int) int { return 50 })
	for _, live := range []time.Duration{0, time.Hour} {
		cfg := DefaultConfig()
		cfg.Live = live
		s := start(t, cfg, &recorder{})
		c := s.Camera("s")
		c.Picture(f)
		if n := testing.AllocsPerRun(100, func() { c.Picture(f) }); n != 0 {
			t.Errorf("live %s: Picture allocates %.0f times", live, n)
		}
	}
}

// BenchmarkAlarm: what a raised alarm costs the stream's goroutine (1080p
// NV12 to 320x180, the id); the worker is kept idle.
func BenchmarkAlarm(b *testing.B) {
	f := picture(1920, 1080, 8, nv12, false, rand.New(rand.NewPCG(1, 1)), func(p, x, y int) int { return (x ^ y) & 255 })
	cfg := DefaultConfig()
	cfg.MinInterval, cfg.MaxPerSecond = 0, 0
	s := New(cfg, func(context.Context, *Thumb) error { return nil }, nil)
	c := s.Camera("s")
	b.ReportAllocs()
	for b.Loop() {
		sh := c.Alarm(f, "black", 0)
		if sh == nil {
			b.Fatal("no shot")
		}
		sh.release() // as the worker would, without encoding
	}
}

// TestAlarmGlobalLimitKeepsInterval: an alarm refused by the global limit
// (max_per_second) took no thumbnail, so it does not use up its stream's
// min_interval: the stream's next alarm, once the bucket has refilled, has
// its picture.
func TestAlarmGlobalLimitKeepsInterval(t *testing.T) {
	cfg := DefaultConfig()
	cfg.MinInterval, cfg.MaxPerSecond = time.Hour, 1
	s := New(cfg, (&recorder{}).publish, nil) // no worker: shots are dropped at Commit
	a, b := s.Camera("a"), s.Camera("b")
	f := flat(16, 1)
	if sh := a.Alarm(f, "black", 1); sh == nil {
		t.Fatal("the first alarm has no shot")
	} else {
		a.Commit(sh) // no Event: released
	}
	if sh := b.Alarm(f, "black", 1); sh != nil {
		t.Fatal("over max_per_second, an alarm has a shot")
	}
	time.Sleep(1100 * time.Millisecond) // the bucket refills (1 a second); the limiter reads the clock
	if sh := b.Alarm(f, "freeze", 2); sh == nil {
		t.Error("the stream's min_interval was used up by an alarm the global limit refused")
	}
}
