package config

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/thumbnail"
)

func TestThumbnails(t *testing.T) {
	for _, tc := range []struct {
		name string
		doc  string
		want thumbnail.Config
		errs []string // a substring of each problem, in order
	}{
		{name: "defaults", doc: "fleet: a\n", want: thumbnail.Config{Alarms: true, Width: 320, Quality: 75,
			MinInterval: 2 * time.Second, MaxPerSecond: 10}},
		{name: "every key", doc: "thumbnails: {alarms: false, live_interval: 10s, width: 480, quality: 60, min_interval: 0, max_per_second: 50}\n",
			want: thumbnail.Config{Live: 10 * time.Second, Width: 480, Quality: 60, MaxPerSecond: 50}},
		{name: "some keys keep the others' defaults", doc: "thumbnails: {live_interval: 30}\n",
			want: thumbnail.Config{Alarms: true, Live: 30 * time.Second, Width: 320, Quality: 75, MinInterval: 2 * time.Second, MaxPerSecond: 10}},
		{name: "every problem", doc: "thumbnails: {live_interval: 0.5s, width: 321, quality: 0, min_interval: -1, max_per_second: 0}\n",
			errs: []string{
				"thumbnails.live_interval: 500ms: 0 (off) or between 1s and 24h",
				"thumbnails.width: 321: an even number of pixels from 64 to 1280",
				"thumbnails.quality: 0: a JPEG quality from 1 to 100",
				"thumbnails.min_interval: -1s: between 0 and 1h",
				"thumbnails.max_per_second: 0: from 1 to 1000",
			}},
		{name: "too wide", doc: "thumbnails: {width: 1920}\n", errs: []string{"thumbnails.width: 1920"}},
		{name: "unknown key", doc: "thumbnails: {size: 2}\n", errs: []string{"thumbnails.size: line 1: unknown key"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAgent()
			a.ID = "box"
			err := ParseAgent([]byte(tc.doc), &a)
			got := Problems(err)
			if len(got) != len(tc.errs) {
				t.Fatalf("%d problems, want %d:\n%v", len(got), len(tc.errs), err)
			}
			for i, e := range got {
				if !strings.Contains(e.Error(), tc.errs[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, e, tc.errs[i])
				}
			}
			if err == nil && a.Thumbnails.Config() != tc.want {
				t.Errorf("config %+v, want %+v", a.Thumbnails.Config(), tc.want)
			}
		})
	}
}

// TestSampleThumbnails: packaging/agent.yaml shows the section's defaults.
func TestSampleThumbnails(t *testing.T) {
	a, err := LoadAgentEnv(filepath.Join("..", "..", "packaging", "agent.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if a.Thumbnails != DefaultThumbnails() {
		t.Errorf("sample thumbnails %+v, defaults %+v", a.Thumbnails, DefaultThumbnails())
	}
	b, err := os.ReadFile(filepath.Join("..", "..", "packaging", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"alarms:", "live_interval:", "width:", "quality:", "min_interval:", "max_per_second:"} {
		if !bytes.Contains(b, []byte("\n  "+k)) {
			t.Errorf("the sample does not show thumbnails.%s", k)
		}
	}
}
