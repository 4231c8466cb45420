package detectors

import (
	"math"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestDefaultConfigValidates(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("DefaultConfig().Validate() = %v", err)
	}
	if a, err := NewAnalyzer(cfg, nil, nil); err != nil || a == nil {
		t.Fatalf("NewAnalyzer(DefaultConfig()) = %v, %v", a, err)
	}
}

func TestNewAnalyzerRejectsInvalidConfig(t *testing.T) {
	tests := []struct {
		field  string
		mutate func(*Config)
	}{
		{"black.picture_threshold", func(c *Config) { c.Black.PictureThreshold = 2 }},
		{"black.picture_threshold", func(c *Config) { c.Black.PictureThreshold = 0 }},
		{"black.pixel_threshold", func(c *Config) { c.Black.PixelThreshold = 1 }},
		{"black.max_centre_bright", func(c *Config) { c.Black.MaxCentreBright = -0.1 }},
		{"freeze.noise", func(c *Config) { c.Freeze.Noise = 1 }},
		{"freeze.keyframe_noise", func(c *Config) { c.Freeze.KeyFrameNoise = c.Freeze.Noise / 2 }},
		{"blockiness.threshold", func(c *Config) { c.Blockiness.Threshold = 0 }},
		{"blockiness.min_step", func(c *Config) { c.Blockiness.MinStep = 0 }},
		{"blockiness.picture_threshold", func(c *Config) { c.Blockiness.PictureThreshold = 1.5 }},
		{"blockiness.picture_min_step", func(c *Config) { c.Blockiness.PictureMinStep = 0 }},
		{"silence.threshold_db", func(c *Config) { c.Silence.Threshold = 0 }},
		{"clipping.level", func(c *Config) { c.Clipping.Level = 1.5 }},
		{"clipping.min_run", func(c *Config) { c.Clipping.MinRun = 1 }},
		{"clipping.max_gap", func(c *Config) { c.Clipping.MaxGap = 0 }},
		{"loudness.min_short_term", func(c *Config) { c.Loudness.MinShortTerm = c.Loudness.MaxShortTerm }},
		{"av_sync.max_early_ms", func(c *Config) { c.AVSync.MaxLateMs = -1 }},
		{"av_sync.max_skew", func(c *Config) { c.AVSync.MaxSkew = 0 }},
		{"signal_loss.timeout", func(c *Config) { c.SignalLoss.Timeout = 0 }},
		{"decode_error.clear_after", func(c *Config) { c.DecodeError.ClearAfter = -1 }},
		{"black.min_duration", func(c *Config) { c.Black.MinDuration = -1 }},
		{"loudness.min_duration", func(c *Config) { c.Loudness.MinDuration = 86401 }},
		{"av_sync.min_duration", func(c *Config) { c.AVSync.MinDuration = math.NaN() }},
		{"sampling.row_step", func(c *Config) { c.Sampling.RowStep = -1 }},
		{"sampling.block_row_step", func(c *Config) { c.Sampling.BlockRowStep = 65 }},
		{"sampling.block_col_step", func(c *Config) { c.Sampling.BlockColStep = -1 }},
	}
	for _, tc := range tests {
		t.Run(tc.field, func(t *testing.T) {
			cfg := DefaultConfig()
			tc.mutate(&cfg)
			a, err := NewAnalyzer(cfg, nil, nil)
			if err == nil || a != nil {
				t.Fatalf("NewAnalyzer accepted the config (%v, %v)", a, err)
			}
			if !strings.Contains(err.Error(), tc.field) {
				t.Errorf("error %q does not name %s", err, tc.field)
			}
		})
	}
	t.Run("every invalid field is named", func(t *testing.T) {
		cfg := DefaultConfig()
		cfg.Black.PictureThreshold, cfg.Sampling.RowStep = 2, -1
		_, err := NewAnalyzer(cfg, nil, nil)
		if err == nil || !strings.Contains(err.Error(), "black.picture_threshold") || !strings.Contains(err.Error(), "sampling.row_step") {
			t.Errorf("error %v, want both fields named", err)
		}
	})
}

// analyzerFeed drives an Analyzer with 64x48 video at 25 fps and mono
// 1024-sample audio blocks at 48 kHz, like the pipeline: the caller keeps the
// freeze reference while Video returns true.
type analyzerFeed struct {
	a     *Analyzer
	r     *rand.Rand
	ref   *VideoFrame
	frame int
	block int
	keeps []bool
}

func newAnalyzerFeed(t *testing.T, cfg Config, emit Emit) *analyzerFeed {
	t.Helper()
	a, err := NewAnalyzer(cfg, nil, emit)
	if err != nil {
		t.Fatal(err)
	}
	return &analyzerFeed{a: a, r: rand.New(rand.NewPCG(31, 32))}
}

// video shows pic (nil: a new random picture) as the next frame.
func (f *analyzerFeed) video(pic *VideoFrame) {
	if pic == nil {
		pic = randomFrame8(f.r, 64, 48, 40, 200)
	}
	cur := timed(pic, f.frame, f.frame%50 == 0)
	f.frame++
	keep := f.a.Video(cur, f.ref)
	f.keeps = append(f.keeps, keep)
	if !keep {
		f.ref = cur
	}
}

// audio plays the next mono block, sample n of it being fn(n) (nil: a
// -20 dBFS tone).
func (f *analyzerFeed) audio(fn func(n int) float32) {
	if fn == nil {
		tone := sine1k(tonePhase)
		fn = func(n int) float32 { return tone(0.1, n) }
	}
	first := f.block * 1024
	s := make([]float32, 1024)
	for i := range s {
		s[i] = fn(first + i)
	}
	f.a.Audio(&AudioBlock{PTS: float64(first) / audioRate, SampleRate: audioRate, Samples: [][]float32{s}})
	f.block++
}

// play feeds seconds of video and audio in time order.
func (f *analyzerFeed) play(seconds float64, pic *VideoFrame, sound func(n int) float32) {
	end := float64(f.frame)/25 + seconds
	for float64(f.frame)/25 < end-1e-9 {
		for float64(f.block*1024)/audioRate < float64(f.frame+1)/25 {
			f.audio(sound)
		}
		f.video(pic)
	}
}

func (f *analyzerFeed) now() float64 { return float64(f.frame) / 25 }

func TestAnalyzerDisabledDetectors(t *testing.T) {
	black := uniformFrame8(64, 48, 16)
	still := newFrame8(64, 48, 64, 0, func(x, y int) byte { return byte(60 + x + y) })
	blocky := newFrame8(64, 48, 64, 0, blockyGradient)
	// Steps on the grid too small for blockiness, at still's mean luma (not a cut).
	starved := newFrame8(64, 48, 64, 0, func(x, y int) byte { return byte(95 + 8*triangle(float64(x/8+y/8))) })
	tone := sine1k(tonePhase)
	silent := func(int) float32 { return 0 }
	clipped := func(n int) float32 { return min(max(4*tone(0.5, n), -1), 1) }
	loud := func(n int) float32 { return tone(0.9, n) }
	tests := []struct {
		defect   string
		disable  func(*Config)
		stimulus func(f *analyzerFeed)
	}{
		{Black, func(c *Config) { c.Black.Enabled = false }, func(f *analyzerFeed) { f.play(3, black, nil) }},
		{Freeze, func(c *Config) { c.Freeze.Enabled = false }, func(f *analyzerFeed) { f.play(3, still, nil) }},
		{Blockiness, func(c *Config) { c.Blockiness.Enabled = false }, func(f *analyzerFeed) { f.play(1, blocky, nil) }},
		{Silence, func(c *Config) { c.Silence.Enabled = false }, func(f *analyzerFeed) { f.play(3, nil, silent) }},
		{Clipping, func(c *Config) { c.Clipping.Enabled = false }, func(f *analyzerFeed) { f.play(1, nil, clipped) }},
		{Loudness, func(c *Config) { c.Loudness.Enabled = false }, func(f *analyzerFeed) { f.play(5, nil, loud) }},
		{AVSync, func(c *Config) { c.AVSync.Enabled = false }, func(f *analyzerFeed) {
			for n := 0; n < 100; n++ {
				f.a.Packet(AudioTrack, float64(n)/25+3, false)
				f.a.Packet(VideoTrack, float64(n)/25, false)
			}
		}},
		{SignalLoss, func(c *Config) { c.SignalLoss.Enabled = false }, func(f *analyzerFeed) { f.a.Tracks(0, false, true) }},
		{DecodeError, func(c *Config) { c.DecodeError.Enabled = false }, func(f *analyzerFeed) { f.a.DecodeError(0.5, "bad slice") }},
		{DetailLoss, func(c *Config) { c.DetailLoss.Enabled = false }, func(f *analyzerFeed) { f.play(1, still, nil); f.play(1, starved, nil) }},
	}
	count := func(events []Event, defect string) int {
		n := 0
		for _, e := range events {
			if e.Defect == defect {
				n++
			}
		}
		return n
	}
	run := func(t *testing.T, cfg Config, stimulus func(*analyzerFeed)) []Event {
		var log eventLog
		f := newAnalyzerFeed(t, cfg, log.emit)
		f.play(0.5, nil, nil)
		stimulus(f)
		f.play(0.5, nil, nil)
		f.a.Flush(f.now())
		return log.events
	}
	for _, tc := range tests {
		t.Run(tc.defect, func(t *testing.T) {
			if n := count(run(t, DefaultConfig(), tc.stimulus), tc.defect); n == 0 {
				t.Fatalf("enabled: the stimulus raised no %s: the test is wrong", tc.defect)
			}
			cfg := DefaultConfig()
			tc.disable(&cfg)
			if events := run(t, cfg, tc.stimulus); count(events, tc.defect) != 0 {
				t.Errorf("disabled %s still emitted %v", tc.defect, events)
			}
		})
	}
	t.Run("all disabled", func(t *testing.T) {
		cfg := DefaultConfig()
		for _, tc := range tests {
			tc.disable(&cfg)
		}
		var log eventLog
		f := newAnalyzerFeed(t, cfg, log.emit)
		for _, tc := range tests {
			tc.stimulus(f)
		}
		f.a.Stall(f.now())
		f.a.Flush(f.now() + 10)
		if len(log.events) != 0 {
			t.Errorf("all detectors disabled, got %v", log.events)
		}
	})
}

func TestAnalyzerVideoKeepRef(t *testing.T) {
	r := rand.New(rand.NewPCG(41, 42))
	// Frames 0..9 move, 10..69 repeat frame 10, 70..99 move.
	seq := make([]*VideoFrame, 100)
	for i := range seq {
		if i > 10 && i < 70 {
			seq[i] = seq[10]
			continue
		}
		seq[i] = randomFrame8(r, 64, 48, 30, 220)
	}
	tests := []struct {
		name   string
		freeze bool
		tenBit bool
	}{
		{"8-bit", true, false},
		{"10-bit", true, true},
		{"freeze disabled", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Freeze.Enabled = tc.freeze
			var log, direct eventLog
			f := newAnalyzerFeed(t, cfg, log.emit)
			c := freezeCaller{det: NewFreezeDetector(cfg.Freeze, direct.emit), rowStep: cfg.Sampling.RowStep}
			for i, pic := range seq {
				if tc.tenBit {
					pic = to10Bit(pic, 2)
				}
				f.video(pic)
				want := tc.freeze && i > 10 && i < 70
				if f.keeps[i] != want {
					t.Errorf("frame %d: keepRef %v, want %v", i, f.keeps[i], want)
				}
				if tc.freeze {
					if keep := c.video(timed(pic, i, i%50 == 0)); keep != f.keeps[i] {
						t.Errorf("frame %d: Analyzer keepRef %v, FreezeDetector %v", i, f.keeps[i], keep)
					}
				}
			}
			f.a.Flush(4)
			c.det.Flush(4)
			var freezes []Event
			for _, e := range log.events {
				if e.Defect == Freeze {
					freezes = append(freezes, e)
				}
			}
			if !tc.freeze {
				if len(freezes) != 0 {
					t.Errorf("freeze disabled, got %v", freezes)
				}
				return
			}
			checkSpans(t, freezes, []span{{0.4, 2.8}}, 1e-9)
			if len(direct.events) != len(freezes) {
				t.Fatalf("Analyzer %v, FreezeDetector %v", freezes, direct.events)
			}
			for i := range freezes {
				if freezes[i].Start != direct.events[i].Start || freezes[i].End != direct.events[i].End {
					t.Errorf("Analyzer %v, FreezeDetector %v", freezes[i], direct.events[i])
				}
			}
		})
	}
}

func TestAnalyzerBlackIsNotFreeze(t *testing.T) {
	// A black still is reported as black only; a non-black still as freeze;
	// a freeze that turns black ends there.
	black := uniformFrame8(64, 48, 16)
	grey := uniformFrame8(64, 48, 120)
	type segment struct {
		seconds float64
		pic     *VideoFrame // nil: moving pictures
	}
	tests := []struct {
		name         string
		segments     []segment
		black, freez []span
	}{
		{"black still", []segment{{1, nil}, {4, black}, {1, nil}}, []span{{1, 5}}, nil},
		{"grey still", []segment{{1, nil}, {4, grey}, {1, nil}}, nil, []span{{1, 5}}},
		{"grey still turning black", []segment{{1, nil}, {1.6, grey}, {2.4, black}, {1, nil}}, []span{{2.6, 5}}, nil},
		{"black turning grey still", []segment{{1, nil}, {2.4, black}, {2.6, grey}, {1, nil}}, []span{{1, 3.4}}, []span{{3.4, 6}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			f := newAnalyzerFeed(t, DefaultConfig(), log.emit)
			for _, s := range tc.segments {
				f.play(s.seconds, s.pic, nil)
			}
			f.a.Flush(f.now())
			var blacks, freezes []Event
			for _, e := range log.events {
				switch e.Defect {
				case Black:
					blacks = append(blacks, e)
				case Freeze:
					freezes = append(freezes, e)
				}
			}
			t.Run("black", func(t *testing.T) { checkSpans(t, blacks, tc.black, 1e-9) })
			t.Run("freeze", func(t *testing.T) { checkSpans(t, freezes, tc.freez, 1e-9) })
		})
	}
}

func TestAnalyzerFreezeLevels(t *testing.T) {
	// The freeze difference is a share of the nominal range in 8-bit levels
	// (219 limited, 255 full) whatever the bit depth. A change of one 10-bit
	// code everywhere is a quarter level: 0.25/219 = 0.00114 is above the
	// 0.001 noise floor (the picture moved), 0.25/255 = 0.00098 is not.
	base := randomFrame8(rand.New(rand.NewPCG(1, 1)), 64, 48, 30, 200)
	full := func(f *VideoFrame) *VideoFrame { g := *f; g.FullRange = true; return &g }
	plusOneCode := func(f *VideoFrame) *VideoFrame { // +1 on every 10-bit sample
		g := *f
		g.Y = append([]byte(nil), f.Y...)
		for i := 0; i < len(g.Y); i += 2 {
			g.Y[i]++ // samples are multiples of 4: no carry
		}
		return &g
	}
	b10 := to10Bit(base, 0)
	tests := []struct {
		name     string
		ref, cur *VideoFrame
		wantMAD  float64
		wantKeep bool
	}{
		{"8-bit limited, identical", base, base, 0, true},
		{"8-bit limited, +1 level", base, addLevel(base, 1, 1), 1.0 / 219, false},
		{"8-bit full, +1 level", full(base), full(addLevel(base, 1, 1)), 1.0 / 255, false},
		{"10-bit limited, +1 level", b10, to10Bit(addLevel(base, 1, 1), 0), 1.0 / 219, false},
		{"10-bit limited, +1 code", b10, plusOneCode(b10), 0.25 / 219, false},
		{"10-bit full, +1 code", full(b10), full(plusOneCode(b10)), 0.25 / 255, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := NewAnalyzer(DefaultConfig(), nil, nil)
			if err != nil {
				t.Fatal(err)
			}
			ref := timed(tc.ref, 0, true)
			a.Video(ref, nil)
			keep := a.Video(timed(tc.cur, 1, false), ref)
			levels := 219
			if tc.cur.FullRange {
				levels = 255
			}
			if got := a.Features().Freeze.MAD(levels); math.Abs(got-tc.wantMAD) > 1e-12 {
				t.Errorf("MAD %v, want %v", got, tc.wantMAD)
			}
			if keep != tc.wantKeep {
				t.Errorf("keepRef %v, want %v", keep, tc.wantKeep)
			}
		})
	}
}

func TestAnalyzerStats(t *testing.T) {
	a, err := NewAnalyzer(DefaultConfig(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	s := a.Stats()
	if s.Frames != 0 || s.AudioBlocks != 0 || s.End != 0 || !math.IsNaN(s.Integrated) || !math.IsNaN(s.LRA) {
		t.Errorf("fresh analyzer: %+v", s)
	}
	pic := uniformFrame8(64, 48, 100)
	for n := 0; n < 10; n++ {
		a.Video(timed(pic, n, false), nil)
	}
	if s := a.Stats(); s.Frames != 10 || s.AudioBlocks != 0 || math.Abs(s.End-0.4) > 1e-12 || !math.IsNaN(s.Integrated) {
		t.Errorf("after 10 frames: %+v", s)
	}
	tone, sine := sine1k(tonePhase), make([]float32, 1024)
	for i := range sine {
		sine[i] = tone(0.1, i)
	}
	for n := 0; n < 100; n++ {
		a.Audio(&AudioBlock{PTS: float64(n*1024) / audioRate, SampleRate: audioRate, Samples: [][]float32{sine, sine}})
	}
	a.Audio(&AudioBlock{PTS: 5, SampleRate: audioRate, Samples: [][]float32{{}, {}}}) // empty: not counted
	a.Audio(&AudioBlock{PTS: 5, Samples: [][]float32{sine, sine}})                    // no rate: not counted
	a.DecodeError(0.1, "x")
	a.DecodeError(0.2, "y")
	a.Packet(VideoTrack, 0.3, true)
	a.Packet(AudioTrack, 0.3, false)
	s = a.Stats()
	wantEnd := float64(100*1024) / audioRate
	if s.Frames != 10 || s.AudioBlocks != 100 || math.Abs(s.End-wantEnd) > 1e-12 || s.DecodeErrors != 2 || s.CorruptPackets != 1 {
		t.Errorf("after audio: %+v, want 10 frames, 100 blocks, end %v, 2 decode errors, 1 corrupt packet", s, wantEnd)
	}
	if math.IsNaN(s.Integrated) || math.IsInf(s.Integrated, 0) || s.Integrated > -15 || s.Integrated < -30 {
		t.Errorf("integrated loudness %v, want that of a -20 dBFS tone", s.Integrated)
	}
}

func TestAnalyzerAllocatesNothing(t *testing.T) {
	events := 0
	a, err := NewAnalyzer(DefaultConfig(), nil, func(Event) { events++ })
	if err != nil {
		t.Fatal(err)
	}
	a.Tracks(0, true, true)
	// Two different 640x360 pictures, shown in turn: nothing freezes.
	pic := func(seed int) VideoFrame {
		return *newFrame8(640, 360, 640, 0, func(x, y int) byte { return byte(60 + x/16 + (x*7+y*13+seed)%8) })
	}
	frames := [2]VideoFrame{pic(1), pic(2)}
	n := 0
	video := func() {
		cur, ref := &frames[n%2], &frames[(n+1)%2]
		cur.PTS, cur.Duration = float64(n)/25, 1.0/25
		if n == 0 {
			ref = nil
		}
		a.Video(cur, ref)
		n++
	}
	r := rand.New(rand.NewPCG(51, 52))
	left, right := make([]float32, 1024), make([]float32, 1024)
	for i := range left {
		left[i], right[i] = float32(0.1*(2*r.Float64()-1)), float32(0.1*(2*r.Float64()-1))
	}
	block := AudioBlock{SampleRate: audioRate, Samples: [][]float32{left, right}}
	m := 0
	audio := func() {
		block.PTS = float64(m*1024) / audioRate
		a.Audio(&block)
		m++
	}
	for range 10 { // warm-up
		video()
		audio()
	}
	if got := testing.AllocsPerRun(100, video); got != 0 {
		t.Errorf("Analyzer.Video: %v allocations per call", got)
	}
	if got := testing.AllocsPerRun(200, audio); got != 0 {
		t.Errorf("Analyzer.Audio: %v allocations per call", got)
	}
	if events != 0 {
		t.Errorf("%d events during the loop: the measurement includes their allocation", events)
	}
}
