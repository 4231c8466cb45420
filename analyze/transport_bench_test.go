package analyze_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// BenchmarkTransportCost is the CPU time the TR 101 290 analyzer adds to
// `streamqc analyze` of a 60 s 1080p30 H.264 MPEG-TS (the bench clip remuxed),
// one decoder thread: the same run with and without tr101290, interleaved,
// best of each.
func BenchmarkTransportCost(b *testing.B) {
	bin := os.Getenv("STREAMQC_BIN")
	if bin == "" {
		b.Skip("STREAMQC_BIN is not set: run `make bench`")
	}
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		b.Skip("ffmpeg is not on PATH")
	}
	ts := strings.TrimSuffix(benchClip(b, 1080), ".mp4") + ".ts"
	if _, err := os.Stat(ts); err != nil {
		if o, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", benchClip(b, 1080),
			"-c", "copy", "-f", "mpegts", ts+".tmp").CombinedOutput(); err != nil {
			b.Fatalf("remuxing to MPEG-TS: %v\n%s", err, o)
		}
		if err := os.Rename(ts+".tmp", ts); err != nil {
			b.Fatal(err)
		}
	}
	const rounds = 5
	inf := time.Duration(1<<63 - 1)
	for range b.N {
		with, without := inf, inf
		for r := 0; r < rounds; r++ {
			on := func() { with = min(with, cpuTime(b, bin, "analyze", "--threads", "1", "--format", "json", ts)) }
			off := func() {
				without = min(without, cpuTime(b, bin, "analyze", "--threads", "1", "--format", "json", "--set", "tr101290.enabled=false", ts))
			}
			if r%2 == 0 {
				on()
				off()
			} else {
				off()
				on()
			}
		}
		added := (with.Seconds() - without.Seconds()) / without.Seconds() * 100
		b.ReportMetric(with.Seconds(), "cpu-s/with")
		b.ReportMetric(without.Seconds(), "cpu-s/without")
		b.ReportMetric(added, "%-added")
		fmt.Printf("1080p30 60 s H.264 MPEG-TS: analyze %.2f s CPU with tr101290, %.2f s without: %+.2f%% (best of %d each)\n",
			with.Seconds(), without.Seconds(), added, rounds)
	}
}
