package detectors

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// toneSegment is a stretch of 1 kHz sine at a level in dBFS (peak amplitude
// relative to full scale, as EBU Tech 3341 specifies its test signals); -Inf is
// digital silence.
type toneSegment struct {
	dbfs    float64
	seconds float64
}

// meterStep is what LoudnessMeter reports at the end of a 100 ms step.
type meterStep struct {
	t, m, s, i float64
}

// toneSource generates a continuous 1 kHz sine on some channels, block by
// block, so long signals need no big buffers.
type toneSource struct {
	rate   int
	active []bool // channels carrying the tone; the others are silent
	segs   []toneSegment
	seg    int
	left   int // samples left in the current segment
	n      int // samples generated so far (sine phase)
	amp    float64
	// period holds whole cycles of the unit sine, so that long signals cost no
	// math.Sin per sample.
	period []float64
}

func newToneSource(rate, channels int, segs []toneSegment) *toneSource {
	active := make([]bool, channels)
	for i := range active {
		active[i] = true
	}
	a, b := rate, 1000 // the period in samples is rate/gcd(rate, 1000)
	for b != 0 {
		a, b = b, a%b
	}
	period := make([]float64, rate/a)
	for i := range period {
		period[i] = math.Sin(2 * math.Pi * 1000 * float64(i) / float64(rate))
	}
	s := &toneSource{rate: rate, active: active, segs: segs, period: period}
	s.start(0)
	return s
}

func (s *toneSource) start(seg int) {
	s.seg = seg
	s.left = s.segLen(seg)
	if seg < len(s.segs) {
		s.amp = math.Pow(10, s.segs[seg].dbfs/20)
	}
}

func (s *toneSource) segLen(i int) int {
	if i >= len(s.segs) {
		return 0
	}
	return int(math.Round(s.segs[i].seconds * float64(s.rate)))
}

// fill writes up to len(b.Samples[0]) samples into b and trims it; it returns
// false once the signal is over.
func (s *toneSource) fill(b *AudioBlock, buf [][]float32) bool {
	b.PTS = float64(s.n) / float64(s.rate)
	b.SampleRate = s.rate
	k := 0
	for k < len(buf[0]) && s.seg < len(s.segs) {
		if s.left == 0 {
			s.start(s.seg + 1)
			continue
		}
		v := float32(s.amp * s.period[s.n%len(s.period)])
		for c := range buf {
			buf[c][k] = 0
			if s.active[c] {
				buf[c][k] = v
			}
		}
		k++
		s.n++
		s.left--
	}
	for c := range buf {
		b.Samples[c] = buf[c][:k]
	}
	return k > 0
}

// feedTone runs a tone signal through m in blocks of blockSize samples and
// returns the steps it reported.
func feedTone(m *LoudnessMeter, src *toneSource, blockSize int, layout []Channel) []meterStep {
	buf := make([][]float32, len(src.active))
	for c := range buf {
		buf[c] = make([]float32, blockSize)
	}
	b := &AudioBlock{Samples: make([][]float32, len(buf)), Layout: layout}
	var steps []meterStep
	for src.fill(b, buf) {
		m.Add(b, func(t, mom, st float64) { steps = append(steps, meterStep{t, mom, st, m.Integrated()}) })
	}
	return steps
}

func near(got, want, tol float64) bool {
	if math.IsInf(want, -1) {
		return math.IsInf(got, -1)
	}
	return math.Abs(got-want) <= tol
}

func TestLoudnessKWeightingMatchesBS1770Table(t *testing.T) {
	// BS.1770-4 Tables 1 and 2 (48 kHz).
	pre, rlb := kWeighting(48000)
	want := []struct {
		name      string
		got, want float64
	}{
		{"pre b0", pre.b0, 1.53512485958697},
		{"pre b1", pre.b1, -2.69169618940638},
		{"pre b2", pre.b2, 1.19839281085285},
		{"pre a1", pre.a1, -1.69065929318241},
		{"pre a2", pre.a2, 0.73248077421585},
		{"rlb b0", rlb.b0, 1},
		{"rlb b1", rlb.b1, -2},
		{"rlb b2", rlb.b2, 1},
		{"rlb a1", rlb.a1, -1.99004745483398},
		{"rlb a2", rlb.a2, 0.99007225036621},
	}
	for _, w := range want {
		if math.Abs(w.got-w.want) > 1e-9 {
			t.Errorf("%s = %.14f, want %.14f", w.name, w.got, w.want)
		}
	}
}

// TestLoudnessEBUTech3341 runs the minimal compliance cases of EBU Tech 3341
// that are plain sines (cases 1-5), at 48 and 44.1 kHz.
func TestLoudnessEBUTech3341(t *testing.T) {
	inf := math.Inf(-1)
	tests := []struct {
		name      string
		rate      int
		segs      []toneSegment
		m, s, i   float64 // final values
		blockSize int
	}{
		{"case 1: -23 dBFS", 48000, []toneSegment{{-23, 20}}, -23, -23, -23, 1024},
		{"case 2: -33 dBFS", 48000, []toneSegment{{-33, 20}}, -33, -33, -33, 1024},
		{"case 3: relative gate", 48000, []toneSegment{{-36, 10}, {-23, 60}, {-36, 10}}, -36, -36, -23, 4096},
		{"case 4: absolute gate", 48000, []toneSegment{{-72, 10}, {-36, 10}, {-23, 20}, {-36, 10}, {-72, 10}}, -72, -72, -23, 4096},
		{"case 5: steps", 48000, []toneSegment{{-26, 20}, {-20, 20.1}, {-26, 20}}, -26, -26, -23, 4096},
		{"case 1 at 44.1 kHz", 44100, []toneSegment{{-23, 20}}, -23, -23, -23, 1000},
		{"case 2 at 44.1 kHz", 44100, []toneSegment{{-33, 20}}, -33, -33, -33, 1000},
		{"case 3 at 44.1 kHz, shortened", 44100, []toneSegment{{-36, 5}, {-23, 30}, {-36, 5}}, -36, -36, -23, 3000},
		{"digital silence", 48000, []toneSegment{{inf, 5}}, inf, inf, inf, 1024},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m := NewLoudnessMeter()
			steps := feedTone(m, newToneSource(tc.rate, 2, tc.segs), tc.blockSize, nil)
			var total float64
			for _, s := range tc.segs {
				total += s.seconds
			}
			if want := int(math.Round(total * 10)); len(steps) != want {
				t.Errorf("got %d steps, want %d", len(steps), want)
			}
			for _, c := range []struct {
				name      string
				got, want float64
			}{{"momentary", m.Momentary(), tc.m}, {"short-term", m.ShortTerm(), tc.s}, {"integrated", m.Integrated(), tc.i}} {
				if !near(c.got, c.want, 0.1) {
					t.Errorf("%s = %.3f LUFS, want %.1f", c.name, c.got, c.want)
				}
			}
		})
	}
}

func TestLoudnessChannelWeights(t *testing.T) {
	// A -23 dBFS sine on one channel alone is 3.01 dB below the stereo reading.
	single := -23 - 10*math.Log10(2)
	tests := []struct {
		name     string
		channels int
		active   int
		layout   []Channel
		want     float64
	}{
		{"mono", 1, 0, nil, single},
		{"5.1 front centre", 6, 2, nil, single},
		{"5.1 LFE is excluded", 6, 3, nil, math.Inf(-1)},
		{"5.1 back left is surround", 6, 4, nil, single + 10*math.Log10(1.41)},
		{"7.1 side right is surround", 8, 7, nil, single + 10*math.Log10(1.41)},
		{"layout surround", 2, 0, []Channel{ChannelSurround, ChannelLFE}, single + 10*math.Log10(1.41)},
		{"layout LFE", 2, 1, []Channel{ChannelSurround, ChannelLFE}, math.Inf(-1)},
		{"4 channels are all front", 4, 3, nil, single},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			src := newToneSource(48000, tc.channels, []toneSegment{{-23, 4}})
			for c := range src.active {
				src.active[c] = c == tc.active
			}
			m := NewLoudnessMeter()
			feedTone(m, src, 2048, tc.layout)
			if got := m.ShortTerm(); !near(got, tc.want, 0.05) {
				t.Errorf("short-term = %.3f, want %.3f", got, tc.want)
			}
			if got, want := m.SamplePeak(tc.active), math.Pow(10, -23.0/20); math.Abs(got-want) > 1e-3 {
				t.Errorf("sample peak = %.5f, want %.5f", got, want)
			}
		})
	}
}

// noise returns deterministic white noise with a level change, planar.
func noise(rate, channels int, seconds float64) [][]float32 {
	r := rand.New(rand.NewPCG(1, 2))
	n := int(seconds * float64(rate))
	out := make([][]float32, channels)
	for c := range out {
		out[c] = make([]float32, n)
		for i := range out[c] {
			g := 0.05
			if i > n/2 {
				g = 0.3
			}
			out[c][i] = float32(g * r.NormFloat64())
		}
	}
	return out
}

// feedPlanar feeds planar samples to m in blocks whose sizes cycle through sizes.
func feedPlanar(m *LoudnessMeter, rate int, samples [][]float32, sizes []int, onStep func(t, mom, st float64)) {
	b := &AudioBlock{SampleRate: rate, Samples: make([][]float32, len(samples))}
	for off, k := 0, 0; off < len(samples[0]); k++ {
		n := min(sizes[k%len(sizes)], len(samples[0])-off)
		for c := range samples {
			b.Samples[c] = samples[c][off : off+n]
		}
		b.PTS = float64(off) / float64(rate)
		m.Add(b, onStep)
		off += n
	}
}

// TestLoudnessBlockSizeInvariance checks that 100 ms steps are sample exact
// whatever the block sizes, including at a rate that is not a multiple of 10.
func TestLoudnessBlockSizeInvariance(t *testing.T) {
	for _, rate := range []int{48000, 11025} {
		samples := noise(rate, 2, 5)
		var ref []meterStep
		for _, sizes := range [][]int{{1024}, {1}, {7, 3, 1500}, {rate * 3}, {1103, 1}} {
			t.Run(fmt.Sprintf("%d Hz blocks %v", rate, sizes), func(t *testing.T) {
				m := NewLoudnessMeter()
				var got []meterStep
				feedPlanar(m, rate, samples, sizes, func(ts, mom, st float64) {
					got = append(got, meterStep{ts, mom, st, m.Integrated()})
				})
				if len(got) != 50 {
					t.Fatalf("got %d steps, want 50", len(got))
				}
				for k, s := range got {
					// Step k+1 ends at sample round((k+1)*rate/10), with no drift.
					end := math.Floor(float64((k+1)*rate)/10 + 0.5)
					if want := end / float64(rate); math.Abs(s.t-want) > 1e-9 {
						t.Fatalf("step %d ends at %.9f, want %.9f", k, s.t, want)
					}
				}
				if ref == nil {
					ref = got
					return
				}
				for k := range got {
					g, r := got[k], ref[k]
					if !near(g.m, r.m, 1e-9) || !near(g.s, r.s, 1e-9) || !near(g.i, r.i, 1e-9) {
						t.Fatalf("step %d: got %+v, want %+v", k, g, r)
					}
				}
			})
		}
	}
}

func TestLoudnessMeterResetsOnFormatChange(t *testing.T) {
	m := NewLoudnessMeter()
	feedTone(m, newToneSource(48000, 2, []toneSegment{{-10, 5}}), 1024, nil)
	feedTone(m, newToneSource(44100, 2, []toneSegment{{-33, 5}}), 1024, nil)
	if got := m.Integrated(); !near(got, -33, 0.1) {
		t.Errorf("integrated after a rate change = %.2f, want -33 (the old format forgotten)", got)
	}
	feedTone(m, newToneSource(44100, 6, []toneSegment{{-40, 5}}), 1024, nil)
	// Five channels count, two of them as surround: -40 dBFS on each.
	want := -40 - 10*math.Log10(2) + 10*math.Log10(3+2*1.41)
	if got := m.Integrated(); !near(got, want, 0.1) {
		t.Errorf("integrated after a channel change = %.2f, want %.2f", got, want)
	}
}

func TestLoudnessMeterSurvivesNaN(t *testing.T) {
	m := NewLoudnessMeter()
	src := newToneSource(48000, 2, []toneSegment{{-23, 4}})
	feedTone(m, src, 1024, nil)
	bad := &AudioBlock{SampleRate: 48000, Samples: [][]float32{{float32(math.NaN())}, {float32(math.Inf(1))}}}
	m.Add(bad, nil)
	feedTone(m, newToneSource(48000, 2, []toneSegment{{-23, 4}}), 1024, nil)
	if got := m.ShortTerm(); !near(got, -23, 0.1) {
		t.Errorf("short-term after NaN input = %.2f, want -23", got)
	}
}

// ffmpegStep is one per-100 ms line of ffmpeg's ebur128 framelog.
type ffmpegStep struct {
	m, s, i float64
}

// runFFmpeg runs ffmpeg with args and returns its stderr, where ebur128 logs.
func runFFmpeg(ctx context.Context, args ...string) ([]byte, error) {
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ffmpeg", append([]string{"-hide_banner", "-nostdin", "-y"}, args...)...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("ffmpeg %v: %w: %s", args, err, stderr.Bytes())
	}
	return stderr.Bytes(), nil
}

// parseEBUR128 extracts the per-step values (by step number, from 1) and the
// summary of ffmpeg's ebur128 log.
func parseEBUR128(log []byte) (steps map[int]ffmpegStep, integrated, lra float64, err error) {
	num := `(-?[0-9.]+)`
	stepRE := regexp.MustCompile(`t:\s*` + num + `\s+TARGET:\S+ LUFS\s+M:\s*` + num + `\s+S:\s*` + num + `\s+I:\s*` + num + ` LUFS`)
	summaryRE := regexp.MustCompile(`(?s)Summary:.*?I:\s*` + num + ` LUFS.*?LRA:\s*` + num + ` LU`)
	steps = make(map[int]ffmpegStep)
	for _, mm := range stepRE.FindAllSubmatch(log, -1) {
		var v [4]float64
		for j := range v {
			if v[j], err = strconv.ParseFloat(string(mm[j+1]), 64); err != nil {
				return nil, 0, 0, fmt.Errorf("parse %q: %w", mm[0], err)
			}
		}
		// ffmpeg stamps a step with its last sample's time, 1/48000 s before the end.
		steps[int(math.Round(v[0]*10))] = ffmpegStep{v[1], v[2], v[3]}
	}
	sm := summaryRE.FindSubmatch(log)
	if len(steps) == 0 || sm == nil {
		return nil, 0, 0, fmt.Errorf("no ebur128 output in %d bytes of log", len(log))
	}
	if integrated, err = strconv.ParseFloat(string(sm[1]), 64); err != nil {
		return nil, 0, 0, fmt.Errorf("parse integrated: %w", err)
	}
	if lra, err = strconv.ParseFloat(string(sm[2]), 64); err != nil {
		return nil, 0, 0, fmt.Errorf("parse LRA: %w", err)
	}
	return steps, integrated, lra, nil
}

// readF32LE reads interleaved little-endian float32 samples as planar channels.
func readF32LE(path string, channels int) ([][]float32, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read samples: %w", err)
	}
	n := len(raw) / 4 / channels
	out := make([][]float32, channels)
	for c := range out {
		out[c] = make([]float32, n)
		for i := range out[c] {
			out[c][i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*(i*channels+c):]))
		}
	}
	return out, nil
}

// TestLoudnessMeterMatchesFFmpeg compares the meter with ffmpeg's ebur128 on
// 20 s of stereo pink noise with loudness steps, including a stretch below the
// absolute gate. ffmpeg prints -120.7 (its 1e-12 floor) before a window is
// full, where the meter returns -Inf; both mean "no value yet".
func TestLoudnessMeterMatchesFFmpeg(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg not on PATH")
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	raw := filepath.Join(t.TempDir(), "pink.f32")
	graph := "anoisesrc=c=pink:r=48000:a=0.2:d=20:seed=1[a];" +
		"anoisesrc=c=pink:r=48000:a=0.2:d=20:seed=2[b];" +
		"[a][b]amerge=inputs=2," +
		"volume=volume='if(between(t,6,10),3.5,if(between(t,13,16),0.2,if(between(t,17,18.5),0.0003,1)))':eval=frame"
	if _, err := runFFmpeg(ctx, "-filter_complex", graph, "-f", "f32le", "-ac", "2", raw); err != nil {
		t.Fatal(err)
	}
	log, err := runFFmpeg(ctx, "-nostats", "-v", "verbose", "-f", "f32le", "-ar", "48000", "-ac", "2", "-i", raw,
		"-af", "ebur128=framelog=verbose", "-f", "null", "-")
	if err != nil {
		t.Fatal(err)
	}
	want, wantI, wantLRA, err := parseEBUR128(log)
	if err != nil {
		t.Fatal(err)
	}
	samples, err := readF32LE(raw, 2)
	if err != nil {
		t.Fatal(err)
	}

	m := NewLoudnessMeter()
	got := make(map[int]meterStep)
	feedPlanar(m, 48000, samples, []int{1024}, func(ts, mom, st float64) {
		got[int(math.Round(ts*10))] = meterStep{ts, mom, st, m.Integrated()}
	})
	if len(got) != len(want) || len(got) != 200 {
		t.Fatalf("meter gave %d steps, ffmpeg %d, want 200", len(got), len(want))
	}
	// ffmpeg's floor (-120.7) stands for no value; its I starts at -70 for none.
	value := func(v, floor float64) float64 {
		if v <= floor {
			return math.Inf(-1)
		}
		return v
	}
	var devM, devS, devI float64
	for k, w := range want {
		g, ok := got[k]
		if !ok {
			t.Fatalf("no meter step %d", k)
		}
		for _, c := range []struct {
			name      string
			got, want float64
			dev       *float64
		}{
			{"momentary", g.m, value(w.m, -120), &devM},
			{"short-term", g.s, value(w.s, -120), &devS},
			{"integrated", g.i, value(w.i, -70), &devI},
		} {
			if !near(c.got, c.want, 0.1) {
				t.Errorf("step %d (t=%.1f): %s = %.3f, ffmpeg %.1f", k, g.t, c.name, c.got, c.want)
			}
			if !math.IsInf(c.want, 0) {
				*c.dev = max(*c.dev, math.Abs(c.got-c.want))
			}
		}
	}
	if got := m.Integrated(); math.Abs(got-wantI) > 0.1 {
		t.Errorf("integrated = %.3f, ffmpeg %.1f", got, wantI)
	}
	if got := m.Range(); math.Abs(got-wantLRA) > 0.5 {
		t.Errorf("LRA = %.3f, ffmpeg %.1f", got, wantLRA)
	}
	t.Logf("max |meter - ffmpeg| over %d steps (ffmpeg prints 0.1 LU): M %.3f, S %.3f, I %.3f; final I %.3f vs %.1f, LRA %.3f vs %.1f",
		len(want), devM, devS, devI, m.Integrated(), wantI, m.Range(), wantLRA)
}

func TestLoudnessDetector(t *testing.T) {
	// The 3 s window crosses a threshold L when a share x/3 of it holds the loud
	// part: x = 3 (E(L) - E(quiet)) / (E(loud) - E(quiet)), with E(l) = 10^(l/10).
	e := func(l float64) float64 { return math.Pow(10, l/10) }
	cross := 3 * (e(-15) - e(-23)) / (e(-10) - e(-23))
	tests := []struct {
		name      string
		cfg       func(*LoudnessConfig)
		segs      []toneSegment
		want      []Event // Start and End compared within 0.2 s
		valueKey  string  // extreme expected in the raise
		value     float64
		flushTime float64
	}{
		{
			name: "loud stretch raises once and clears",
			segs: []toneSegment{{-23, 10}, {-10, 5}, {-23, 10}},
			want: []Event{
				{State: Raised, Start: 10 + cross},
				{State: Cleared, Start: 10 + cross, End: 15 + 3 - cross},
			},
			valueKey: "loudest_short_term_lufs", value: -10,
		},
		{name: "digital silence is not too quiet", segs: []toneSegment{{math.Inf(-1), 10}}},
		{name: "audio below -70 LUFS is not too quiet", segs: []toneSegment{{-80, 10}}},
		{
			name: "quiet programme raises too quiet",
			segs: []toneSegment{{-50, 10}},
			// The short-term value exists from 3 s; the alarm lasts to the end.
			want:     []Event{{State: Raised, Start: 3}, {State: Cleared, Start: 3, End: 10}},
			valueKey: "quietest_short_term_lufs", value: -50,
		},
		{name: "normal programme", segs: []toneSegment{{-23, 10}}},
		{name: "disabled", cfg: func(c *LoudnessConfig) { c.Enabled = false }, segs: []toneSegment{{-5, 10}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := DefaultLoudnessConfig()
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			var got []Event
			d := NewLoudnessDetector(cfg, func(e Event) { got = append(got, e) })
			src := newToneSource(48000, 2, tc.segs)
			buf := [][]float32{make([]float32, 1024), make([]float32, 1024)}
			b := &AudioBlock{Samples: make([][]float32, 2)}
			var end float64
			for src.fill(b, buf) {
				d.Audio(b)
				end = b.End()
			}
			d.Flush(end)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Defect != Loudness || g.State != w.State || math.Abs(g.Start-w.Start) > 0.2 || math.Abs(g.End-w.End) > 0.2 {
					t.Errorf("event %d: got %v, want %v", i, g, w)
				}
				// The extreme is final once the alarm clears; a raise only knows its beginning.
				if v, ok := g.Values[tc.valueKey]; !ok || (g.State == Cleared && math.Abs(v-tc.value) > 0.1) {
					t.Errorf("event %d: %s = %v (present %v), want %.1f; values %v", i, tc.valueKey, v, ok, tc.value, g.Values)
				}
				if _, ok := g.Values["integrated_lufs"]; !ok {
					t.Errorf("event %d: no integrated loudness in %v", i, g.Values)
				}
				limit, want := "high_limit_lufs", cfg.MaxShortTerm
				if tc.valueKey == "quietest_short_term_lufs" {
					limit, want = "low_limit_lufs", cfg.MinShortTerm
				}
				if v, ok := g.Values[limit]; !ok || v != want {
					t.Errorf("event %d: %s = %v (present %v), want the setting %v", i, limit, v, ok, want)
				}
			}
		})
	}
}

func TestLoudnessAddAllocatesNothing(t *testing.T) {
	samples := noise(48000, 2, 1)
	b := &AudioBlock{SampleRate: 48000, Samples: [][]float32{samples[0][:1024], samples[1][:1024]}}
	m := NewLoudnessMeter()
	d := NewLoudnessDetector(DefaultLoudnessConfig(), nil)
	onStep := func(t, mom, st float64) {}
	m.Add(b, onStep)
	d.Audio(b)
	if n := testing.AllocsPerRun(200, func() { m.Add(b, onStep) }); n != 0 {
		t.Errorf("LoudnessMeter.Add: %v allocations per call", n)
	}
	if n := testing.AllocsPerRun(200, func() { d.Audio(b) }); n != 0 {
		t.Errorf("LoudnessDetector.Audio: %v allocations per call", n)
	}
}

func BenchmarkLoudnessMeterAdd(b *testing.B) {
	samples := noise(48000, 2, 1)
	blk := &AudioBlock{SampleRate: 48000, Samples: [][]float32{samples[0][:1024], samples[1][:1024]}}
	m := NewLoudnessMeter()
	var steps int
	onStep := func(t, mom, st float64) { steps++ }
	b.ReportAllocs()
	b.SetBytes(2 * 1024 * 4)
	for b.Loop() {
		m.Add(blk, onStep)
		blk.PTS += 1024.0 / 48000
	}
	if steps == 0 && b.N > 5 {
		b.Fatal("no 100 ms step completed")
	}
}

func BenchmarkLoudnessDetectorAudio(b *testing.B) {
	samples := noise(48000, 2, 1)
	blk := &AudioBlock{SampleRate: 48000, Samples: [][]float32{samples[0][:1024], samples[1][:1024]}}
	d := NewLoudnessDetector(DefaultLoudnessConfig(), func(Event) {})
	b.ReportAllocs()
	b.SetBytes(2 * 1024 * 4)
	for b.Loop() {
		d.Audio(blk)
		blk.PTS += 1024.0 / 48000
	}
}
