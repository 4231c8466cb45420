package supervisor

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/placement"
	"github.com/streamqc/streamqc/internal/cudaprobe"
)

// fakePlacer decides what the test says and records what it was asked.
type fakePlacer struct {
	mu   sync.Mutex
	d    map[string]placement.Decision
	asks [][]placement.Request
}

func (f *fakePlacer) Place(_ time.Time, reqs []placement.Request) map[string]placement.Decision {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asks = append(f.asks, reqs)
	out := map[string]placement.Decision{}
	for _, r := range reqs {
		if d, ok := f.d[r.ID]; ok {
			out[r.ID] = d
		}
	}
	return out
}

func (f *fakePlacer) set(id string, d placement.Decision) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.d[id] = d
}

// TestPlacementRestartsOnlyTheMovedStream: a new decision for one stream
// restarts that stream with its new decoder; the others keep running.
func TestPlacementRestartsOnlyTheMovedStream(t *testing.T) {
	quiet := clip(t, "clean_quiet")
	cpu := placement.Decision{Decoder: "cpu", HWAccel: "none", Threads: 1}
	fp := &fakePlacer{d: map[string]placement.Decision{"a": cpu, "b": cpu, "c": cpu}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := New(ctx, Options{Placer: fp, PlaceEvery: time.Hour})
	var cfgs []StreamConfig
	for _, id := range []string{"a", "b", "c"} {
		c := cfg(id, quiet, true)
		c.Media.HWAccel, c.Media.Threads = "auto", 0
		cfgs = append(cfgs, c)
	}
	if d := s.Apply(cfgs); len(d.Started) != 3 {
		t.Fatalf("diff %+v", d)
	}
	waitFor(t, "all running", 20*time.Second, func() bool {
		for _, st := range s.Status() {
			if st.Frames == 0 || st.Decoder != "cpu" {
				return false
			}
		}
		return len(s.Status()) == 3
	})
	if d := s.Rebalance(); len(d.Restarted) != 0 || len(d.Unchanged) != 3 {
		t.Fatalf("the same decisions restarted %v", d.Restarted)
	}
	before := s.Status()
	// cuda here falls back to software decoding inside media; the restart
	// and the reported placement are what this test is about.
	fp.set("b", placement.Decision{Decoder: "nvdec:1", HWAccel: "cuda", HWDevice: "1", Threads: 1})
	d := s.Rebalance()
	if !slices.Equal(d.Restarted, []string{"b"}) || !slices.Equal(d.Unchanged, []string{"a", "c"}) {
		t.Fatalf("diff %+v, want only b restarted", d)
	}
	after := s.Status()
	for i, id := range []string{"a", "c"} {
		j := 2 * i // a and c in the sorted status list
		if after[j].ID != id || after[j].Frames < before[j].Frames || after[j].Decoder != "cpu" {
			t.Errorf("%s was disturbed: %+v then %+v", id, before[j], after[j])
		}
	}
	// b reports where it really decodes once media opened its decoder:
	// without a second CUDA GPU, NVDEC cannot open and b decodes in
	// software, which it says ("cpu"), not where it was placed.
	want := "cpu"
	if r, err := cudaprobe.Probe(""); err == nil && r.Devices > 1 {
		want = "nvdec:1"
	}
	waitFor(t, "b decoding again", 20*time.Second, func() bool {
		b, _ := state(s, "b")
		return b.Frames > 0
	})
	if b, _ := state(s, "b"); b.Decoder != want {
		t.Errorf("b decoder %q, want %s", b.Decoder, want)
	}
	// The placer is asked with the configuration, not what it decided.
	fp.mu.Lock()
	last := fp.asks[len(fp.asks)-1]
	fp.mu.Unlock()
	for _, r := range last {
		if r.HWAccel != "auto" || r.Threads != 0 {
			t.Errorf("placer asked with %+v, want the configured auto, 0 threads", r)
		}
	}
	// A configuration change still restarts what it changes, and keeps the
	// placement of the others.
	cfgs[2].Detectors.Black.MinDuration = 4
	if d := s.Apply(cfgs); !slices.Equal(d.Restarted, []string{"c"}) {
		t.Fatalf("diff %+v, want only c restarted", d)
	}
	if err := s.Stop(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := s.Rebalance(); len(d.Started) != 0 || len(s.Status()) != 0 {
		t.Fatalf("Rebalance after Stop started %v", d.Started)
	}
}

func TestActualDecoder(t *testing.T) {
	for _, tc := range []struct{ placed, device, name, want string }{
		{"nvdec:1", "1", "", "nvdec:1"},            // not opened yet: as placed
		{"nvdec:1", "1", "h264 (software)", "cpu"}, // NVDEC could not open: software
		{"nvdec:1", "1", "h264 (cuda)", "nvdec:1"}, // as placed
		{"cpu", "", "hevc (software)", "cpu"},      // as placed
		{"", "", "h264 (cuda)", "nvdec:0"},         // no placer, FFmpeg's default device
		{"", "2", "h264 (cuda)", "nvdec:2"},        // no placer, a device asked for
		{"", "", "h264 (software)", "cpu"},         // no placer
		{"vaapi", "/dev/dri/renderD128", "h264 (vaapi)", "vaapi"},
		{"", "", "h264 (vaapi)", "h264 (vaapi)"},
	} {
		if got := actualDecoder(tc.placed, tc.device, tc.name); got != tc.want {
			t.Errorf("actualDecoder(%q, %q, %q) = %q, want %q", tc.placed, tc.device, tc.name, got, tc.want)
		}
	}
}
