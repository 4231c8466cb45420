package placement

import (
	"bytes"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"
)

type probe struct{ load Load }

func (p *probe) Load() Load { return p.load }

var nan = math.NaN()

func auto(ids ...string) []Request {
	r := make([]Request, len(ids))
	for i, id := range ids {
		r[i] = Request{ID: id, HWAccel: "auto", Lag: nan}
	}
	return r
}

func names(n int) []string {
	s := make([]string, n)
	for i := range s {
		s[i] = fmt.Sprintf("s%02d", i)
	}
	return s
}

func count(out map[string]Decision) map[string]int {
	c := map[string]int{}
	for _, d := range out {
		c[d.Decoder]++
	}
	return c
}

func sameCounts(t *testing.T, got map[string]Decision, want map[string]int) {
	t.Helper()
	c := count(got)
	if len(c) != len(want) {
		t.Fatalf("placed %v, want %v", c, want)
	}
	for k, v := range want {
		if c[k] != v {
			t.Fatalf("placed %v, want %v", c, want)
		}
	}
}

func TestFirstPlacement(t *testing.T) {
	gpu := func(util ...float64) []GPU {
		g := make([]GPU, len(util))
		for i, u := range util {
			g[i] = GPU{Index: i, DecoderUtil: u}
		}
		return g
	}
	tests := []struct {
		name string
		load Load
		n    int
		want map[string]int
	}{
		{"no GPU: all on the CPU", Load{NoGPU: "no NVIDIA driver", Cores: 16}, 5, map[string]int{"cpu": 5}},
		// 3% each until measured: 26 streams fit under the 80% headroom.
		{"one idle GPU fills to its headroom", Load{GPUs: gpu(0), Cores: 16}, 30, map[string]int{"nvdec:0": 26, "cpu": 4}},
		{"a busy GPU takes what fits", Load{GPUs: gpu(71), Cores: 16}, 5, map[string]int{"nvdec:0": 3, "cpu": 2}},
		{"a full GPU takes none", Load{GPUs: gpu(95), Cores: 16}, 3, map[string]int{"cpu": 3}},
		{"two idle GPUs share", Load{GPUs: gpu(0, 0), Cores: 16}, 6, map[string]int{"nvdec:0": 3, "nvdec:1": 3}},
		// 3% each: nvdec:1 takes 4 to reach 30, then one each.
		{"the less loaded GPU first", Load{GPUs: gpu(30, 18), Cores: 16}, 6, map[string]int{"nvdec:0": 1, "nvdec:1": 5}},
		{"unknown load: by stream count", Load{GPUs: gpu(nan, nan), Cores: 16}, 5, map[string]int{"nvdec:0": 3, "nvdec:1": 2}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := New(&probe{tc.load}, Config{Logger: slog.New(slog.DiscardHandler)})
			out := p.Place(time.Unix(0, 0), auto(names(tc.n)...))
			sameCounts(t, out, tc.want)
			for id, d := range out {
				wantHW, wantDev := "none", ""
				if strings.HasPrefix(d.Decoder, "nvdec:") {
					wantHW, wantDev = "cuda", strings.TrimPrefix(d.Decoder, "nvdec:")
				}
				if d.HWAccel != wantHW || d.HWDevice != wantDev {
					t.Errorf("%s: %+v: want hwaccel %s device %q", id, d, wantHW, wantDev)
				}
			}
		})
	}
}

// TestNoGPUWarnsOncePerStream: a box without a GPU says so once per stream,
// not at every placement round.
func TestNoGPUWarnsOncePerStream(t *testing.T) {
	var logs bytes.Buffer
	p := New(&probe{Load{NoGPU: "no NVIDIA driver: libnvidia-ml.so.1 not found", Cores: 2}},
		Config{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	now := time.Unix(0, 0)
	for i := range 5 {
		p.Place(now.Add(time.Duration(i)*time.Minute), auto("a", "b"))
	}
	p.Place(now.Add(time.Hour), auto("a", "b", "c"))
	if n := strings.Count(logs.String(), "no GPU, decoding on the CPU"); n != 3 {
		t.Errorf("%d warnings, want 3 (one per stream):\n%s", n, logs.String())
	}
	if !strings.Contains(logs.String(), "libnvidia-ml.so.1 not found") {
		t.Errorf("the warning lacks the reason:\n%s", logs.String())
	}
}

func TestExplicitObeyed(t *testing.T) {
	reqs := []Request{
		{ID: "none", HWAccel: "none", Lag: 9},
		{ID: "empty", HWAccel: "", Lag: 9},
		{ID: "cuda", HWAccel: "cuda", Lag: 9},
		{ID: "cuda1", HWAccel: "cuda", HWDevice: "1", Lag: 9},
		{ID: "vaapi", HWAccel: "vaapi", HWDevice: "/dev/dri/renderD128", Lag: 9},
		{ID: "qsv", HWAccel: "qsv", Threads: 3, Lag: 9},
	}
	want := map[string]Decision{
		"none":  {Decoder: "cpu", HWAccel: "none", Threads: 1},
		"empty": {Decoder: "cpu", HWAccel: "none", Threads: 1},
		"cuda":  {Decoder: "nvdec:0", HWAccel: "cuda", Threads: 1},
		"cuda1": {Decoder: "nvdec:1", HWAccel: "cuda", HWDevice: "1", Threads: 1},
		"vaapi": {Decoder: "vaapi:/dev/dri/renderD128", HWAccel: "vaapi", HWDevice: "/dev/dri/renderD128", Threads: 1},
		"qsv":   {Decoder: "qsv", HWAccel: "qsv", Threads: 3},
	}
	// Both sides overloaded and every stream lagging: nothing explicit moves.
	pr := &probe{Load{GPUs: []GPU{{0, 99}, {1, 0}}, CPUPercent: 200, Cores: 2}}
	p := New(pr, Config{Logger: slog.New(slog.DiscardHandler)})
	for i := range 4 {
		out := p.Place(time.Unix(0, 0).Add(time.Duration(i)*time.Hour), reqs)
		for id, d := range want {
			if out[id] != d {
				t.Errorf("round %d: %s: %+v, want %+v", i, id, out[id], d)
			}
		}
	}
}

// rounds runs Place every step and returns the decisions of each round.
type sim struct {
	t   *testing.T
	p   *Placer
	pr  *probe
	now time.Time
}

func newSim(t *testing.T, load Load) *sim {
	pr := &probe{load}
	return &sim{t: t, pr: pr, p: New(pr, Config{Logger: slog.New(slog.DiscardHandler)}), now: time.Unix(1000, 0)}
}

func (s *sim) place(after time.Duration, reqs []Request) map[string]Decision {
	s.now = s.now.Add(after)
	return s.p.Place(s.now, reqs)
}

func withLag(reqs []Request, out map[string]Decision, lag func(d Decision) float64) []Request {
	for i := range reqs {
		reqs[i].Lag = lag(out[reqs[i].ID])
	}
	return reqs
}

func moved(a, b map[string]Decision) []string {
	var m []string
	for id, d := range b {
		if a[id].Decoder != d.Decoder {
			m = append(m, id+":"+a[id].Decoder+"->"+d.Decoder)
		}
	}
	return m
}

// TestLagMovesWhenNoUtilization: NVML gives no decoder load; the GPU's
// streams falling behind real time move, one per settle period, to the CPU
// after their dwell, and the GPU then takes no more than it carried.
func TestLagMovesWhenNoUtilization(t *testing.T) {
	s := newSim(t, Load{GPUs: []GPU{{0, nan}}, Cores: 16, CPUPercent: 100})
	reqs := auto(names(4)...)
	out := s.place(0, reqs)
	sameCounts(t, out, map[string]int{"nvdec:0": 4})
	onGPU := func(d Decision) float64 {
		if d.Decoder == "nvdec:0" {
			return 5
		}
		return 0.1
	}
	// Behind, but not for as long as the dwell: nothing moves.
	if m := moved(out, s.place(time.Minute, withLag(reqs, out, onGPU))); m != nil {
		t.Fatalf("moved before the dwell: %v", m)
	}
	next := s.place(2*time.Minute, withLag(reqs, out, onGPU))
	if m := moved(out, next); len(m) != 1 {
		t.Fatalf("moves %v, want one", m)
	}
	// Within the settle period: no second move, though still behind.
	if m := moved(next, s.place(5*time.Second, withLag(reqs, next, onGPU))); m != nil {
		t.Fatalf("moved within the settle period: %v", m)
	}
	// Keeping up now: nothing moves back, and a new stream goes to the CPU,
	// since this GPU fell behind with 4.
	fine := func(Decision) float64 { return 0.2 }
	after := s.place(time.Hour, withLag(append(reqs, auto("new")...), next, fine))
	if m := moved(next, after); len(m) != 1 || m[0] != "new:->cpu" {
		t.Fatalf("moves %v, want only the new stream, on the CPU", m)
	}
}

// TestUtilizationHysteresis: a GPU at Full sheds one stream to the CPU; one
// between Headroom and Full keeps its streams and takes no new ones.
func TestUtilizationHysteresis(t *testing.T) {
	s := newSim(t, Load{GPUs: []GPU{{0, 0}}, Cores: 16, CPUPercent: 200})
	reqs := auto(names(20)...)
	out := s.place(0, reqs)
	sameCounts(t, out, map[string]int{"nvdec:0": 20})
	// Busy in one round, not the next, busy again: single samples move nothing.
	for i, util := range []float64{93, 50, 93} {
		s.pr.load.GPUs[0].DecoderUtil = util
		if m := moved(out, s.place(3*time.Minute, reqs)); m != nil {
			t.Fatalf("round %d (%.0f%%): moved %v", i, util, m)
		}
	}
	out2 := s.place(5*time.Second, reqs)
	if m := moved(out, out2); len(m) != 1 || !strings.HasSuffix(m[0], "nvdec:0->cpu") {
		t.Fatalf("moves %v, want one to the CPU after two busy rounds", m)
	}
	s.pr.load.GPUs[0].DecoderUtil = 86
	for i := range 10 {
		out3 := s.place(time.Hour, append(reqs, auto(fmt.Sprintf("new%d", i))...))
		if m := moved(out2, out3); len(m) != 1 || !strings.HasSuffix(m[0], "->cpu") {
			t.Fatalf("round %d: moves %v, want only the new stream, on the CPU", i, m)
		}
	}
}

// TestCPUOverloadMovesToGPU: the process using the cores up moves a CPU
// stream to the GPU that has headroom, the least loaded one.
func TestCPUOverloadMovesToGPU(t *testing.T) {
	s := newSim(t, Load{GPUs: []GPU{{0, 85}, {1, 85}}, Cores: 4, CPUPercent: 100})
	reqs := auto(names(4)...)
	out := s.place(0, reqs)
	sameCounts(t, out, map[string]int{"cpu": 4})
	s.pr.load = Load{GPUs: []GPU{{0, 60}, {1, 20}}, Cores: 4, CPUPercent: 390}
	if m := moved(out, s.place(3*time.Minute, reqs)); m != nil {
		t.Fatalf("moved after one busy round: %v", m)
	}
	out2 := s.place(5*time.Second, reqs)
	if m := moved(out, out2); len(m) != 1 || !strings.HasSuffix(m[0], "cpu->nvdec:1") {
		t.Fatalf("moves %v, want one to nvdec:1", m)
	}
	// A moved stream is not moved back within its dwell, whoever is behind.
	s.pr.load = Load{GPUs: []GPU{{0, 60}, {1, 99}}, Cores: 4, CPUPercent: 50}
	s.place(30*time.Second, reqs)
	out3 := s.place(30*time.Second, reqs)
	if m := moved(out2, out3); m != nil {
		t.Fatalf("moved within the dwell: %v", m)
	}
	out4 := s.place(2*time.Minute, reqs)
	if m := moved(out3, out4); len(m) != 1 || !strings.HasSuffix(m[0], "nvdec:1->nvdec:0") {
		t.Fatalf("moves %v, want to the other GPU first", m)
	}
}

func TestThreads(t *testing.T) {
	tests := []struct{ cores, streams, max, want int }{
		{16, 1, 2, 2}, {16, 8, 2, 2}, {16, 9, 2, 1}, {16, 40, 2, 1}, {2, 1, 2, 2}, {2, 3, 2, 1},
		{16, 0, 4, 4}, {16, 5, 4, 3}, {1, 1, 2, 1},
	}
	for _, tc := range tests {
		if got := Threads(tc.cores, tc.streams, tc.max); got != tc.want {
			t.Errorf("Threads(%d cores, %d streams, max %d) = %d, want %d", tc.cores, tc.streams, tc.max, got, tc.want)
		}
	}
}

// TestThreadsFollowStreams: the count is re-chosen as CPU streams come and
// go, kept while within a factor of 2; configured counts are obeyed, and
// hardware-decoded streams are not counted.
func TestThreadsFollowStreams(t *testing.T) {
	pr := &probe{Load{Cores: 16}}
	p := New(pr, Config{MaxThreads: 8, Logger: slog.New(slog.DiscardHandler)})
	now := time.Unix(0, 0)
	fixed := Request{ID: "fixed", HWAccel: "none", Threads: 6, Lag: nan}
	plain := Request{ID: "plain", HWAccel: "none", Lag: nan}
	gpu := Request{ID: "gpu", HWAccel: "cuda", Lag: nan}
	steps := []struct {
		ids  int
		want int // threads of s00
	}{
		{1, 5},  // 3 CPU streams (s00, fixed, plain): 16/3 = 5
		{3, 5},  // 5: 3, within a factor of 2 of 5: kept
		{5, 2},  // 7: 2
		{15, 1}, // 17: 1, and 2 is not within a factor of 2 of it
	}
	for i, st := range steps {
		reqs := append(auto(names(st.ids)...), fixed, plain, gpu)
		out := p.Place(now.Add(time.Duration(i)*time.Minute), reqs)
		if out["s00"].Threads != st.want || out["plain"].Threads != st.want {
			t.Errorf("step %d (%d auto streams): s00 threads %d, plain %d, want %d", i, st.ids, out["s00"].Threads, out["plain"].Threads, st.want)
		}
		if out["fixed"].Threads != 6 || out["gpu"].Threads != 1 {
			t.Errorf("step %d: fixed %d threads (want 6), gpu %d (want 1)", i, out["fixed"].Threads, out["gpu"].Threads)
		}
	}
}

// TestOneLaggingStreamIsItsInput: one stream behind real time among others
// keeping up says its input is late, not that its side is full.
func TestOneLaggingStreamIsItsInput(t *testing.T) {
	s := newSim(t, Load{GPUs: []GPU{{0, nan}}, Cores: 16, CPUPercent: 100})
	reqs := auto(names(4)...)
	out := s.place(0, reqs)
	for i := range reqs {
		reqs[i].Lag = 0.1
	}
	reqs[2].Lag = 30
	for i := range 4 {
		if m := moved(out, s.place(5*time.Minute, reqs)); m != nil {
			t.Fatalf("round %d: moved %v", i, m)
		}
	}
	reqs[1].Lag = 30 // half of them now: the GPU is behind
	s.place(5*time.Minute, reqs)
	if m := moved(out, s.place(time.Minute, reqs)); len(m) != 1 {
		t.Fatalf("moves %v, want one", m)
	}
}
