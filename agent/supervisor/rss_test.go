package supervisor

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/placement"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
)

// TestRSSPerStream measures what one more stream costs in resident memory,
// for the decoder thread counts in STREAMQC_RSS_THREADS (default "1", what
// placement gives once CPU streams outnumber half the cores; "0" is FFmpeg's own count),
// on the clip STREAMQC_RSS_CLIP (a 1080p30 file, looped, paced in real
// time): (RSS with N streams - RSS with 1) / (N-1), N from STREAMQC_RSS_N
// (default 4); "placed" runs them with hwaccel auto through placement. It
// fails above 40 MB per stream. Opt-in: it takes a while.
func TestRSSPerStream(t *testing.T) {
	clipPath := os.Getenv("STREAMQC_RSS_CLIP")
	if clipPath == "" {
		t.Skip("STREAMQC_RSS_CLIP not set")
	}
	n := 4
	if v, err := strconv.Atoi(os.Getenv("STREAMQC_RSS_N")); err == nil && v > 1 {
		n = v
	}
	threads := strings.Fields(os.Getenv("STREAMQC_RSS_THREADS"))
	if len(threads) == 0 {
		threads = []string{"1"}
	}
	for _, th := range threads {
		// "placed": hwaccel auto and the thread count placement chooses
		// for this box's cores (no GPU).
		tn, err := strconv.Atoi(th)
		if err != nil && th != "placed" {
			t.Fatal(err)
		}
		t.Run("threads="+th, func(t *testing.T) {
			run := func(k int) int64 {
				o, hw := Options{}, "none"
				if th == "placed" {
					o.Placer = placement.New(cpuOnly{}, placement.Config{})
					hw = "auto"
				}
				s := New(context.Background(), o)
				var cfgs []StreamConfig
				for i := range k {
					cfgs = append(cfgs, StreamConfig{ID: fmt.Sprint(i), Loop: true, Detectors: detectors.DefaultConfig(),
						Media: media.Options{URL: clipPath, HWAccel: hw, Realtime: true, Threads: tn,
							Video: media.TrackFirst, Audio: media.TrackFirst}})
				}
				s.Apply(cfgs)
				time.Sleep(10 * time.Second)
				if th == "placed" {
					s.mu.Lock()
					t.Logf("%d streams: stream 0 placed on %s with %d threads", k, s.streams["0"].cfg.Decoder, s.streams["0"].cfg.Media.Threads)
					s.mu.Unlock()
				}
				r := rssBytes(t)
				frames := int64(0)
				for _, st := range s.Status() {
					frames += st.Frames
				}
				if err := s.Stop(context.Background()); err != nil {
					t.Fatal(err)
				}
				runtime.GC()
				debug.FreeOSMemory()
				t.Logf("%d streams: RSS %.1f MB, %d frames", k, float64(r)/(1<<20), frames)
				return r
			}
			one := run(1)
			many := run(n)
			per := float64(many-one) / float64(n-1) / (1 << 20)
			t.Logf("threads %s: %.1f MB per stream (%d streams: %.1f MB, 1: %.1f MB)", th, per, n, float64(many)/(1<<20), float64(one)/(1<<20))
			if per > 40 {
				t.Errorf("%.1f MB per stream, want at most 40", per)
			}
		})
	}
}

func rssBytes(t *testing.T) int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		t.Skip(err)
	}
	f := strings.Fields(string(b))
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}

// cpuOnly is a box without GPU, with this machine's cores.
type cpuOnly struct{}

func (cpuOnly) Load() placement.Load {
	return placement.Load{Cores: runtime.NumCPU(), NoGPU: "measuring on the CPU"}
}
