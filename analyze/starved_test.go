package analyze_test

import (
	"fmt"
	"math"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/streamqc/streamqc/detectors"
)

// TestStarvedZone: x264's plain zones=...,q=51 (no key frame forced at the
// zone, deblocking on), the way an outside judge makes a starved encode, is
// found end to end on its first starved picture (the decoder's exported
// quantizers, through media/ to detail_loss), in MP4 and MPEG-TS; the same
// encode without the zone raises nothing. With B-frames x264 codes the
// zone's first B-frames at quantizers between those of the P-frames on
// either side (28, 38 and 48 on this picture): the run starts on the second
// (detectors' quantBack), one frame late; without, on the zone's first.
func TestStarvedZone(t *testing.T) {
	ff, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("ffmpeg CLI not on PATH (make deps installs it)")
	}
	const fps, first, last = 25, 50, 99 // the zone: 2.0 to 4.0 s
	tests := []struct {
		name    string
		zone    bool
		bframes int
	}{
		{"zone.mp4", true, 0},
		{"zone.ts", true, 0},
		{"zone_bframes.mp4", true, 3},
		{"clean.mp4", false, 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			x264 := fmt.Sprintf("deblock=1,1:bframes=%d", tc.bframes)
			if tc.zone {
				x264 += fmt.Sprintf(":zones=%d,%d,q=51", first, last)
			}
			out := filepath.Join(t.TempDir(), tc.name)
			args := []string{"-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=s=640x360:r=%d", fps),
				"-t", "6", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-g", "250", "-pix_fmt", "yuv420p",
				"-x264-params", x264, out}
			if o, err := exec.Command(ff, args...).CombinedOutput(); err != nil {
				t.Fatalf("ffmpeg: %v\n%s", err, o)
			}
			alarms, _ := analyzeJSON(t, out)
			var found *event
			for i, a := range alarms {
				if a.Defect != detectors.DetailLoss && a.Defect != detectors.Blockiness {
					continue
				}
				if !tc.zone {
					t.Errorf("false alarm on the clean encode: %s %.3f", a.Defect, a.Start)
				}
				if found == nil || a.Start < found.Start {
					found = &alarms[i]
				}
			}
			if !tc.zone {
				return
			}
			if found == nil {
				t.Fatalf("the zone was not found; alarms:%s", fmtAlarms(alarms))
			}
			if want := float64(first) / fps; math.Abs(found.Start-want) > 1.0/fps+1e-3 {
				t.Errorf("%s starts at %.3f s, want %.3f (one frame)", found.Defect, found.Start, want)
			}
			if found.Defect == detectors.DetailLoss && found.Values["quant_rise"] < detectors.DefaultDetailLossConfig().QuantJump {
				t.Errorf("detail_loss without the quantizer's rise: %v", found.Values)
			}
		})
	}
}
