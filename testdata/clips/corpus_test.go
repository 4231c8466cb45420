package clips

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestCorpusCatalogue checks the quality corpus recipes without ffmpeg: every
// class in both splits, several codecs and sizes, and a held-back split that
// shares no source with the tune split.
func TestCorpusCatalogue(t *testing.T) {
	want := []string{ClassStarved, ClassFreezeGrain, ClassFreezeRecoded, ClassClipLossy, ClassBlack, ClassClean}
	files := map[string][]string{}
	for _, split := range []string{Tune, Held} {
		names := CorpusNames(split)
		if len(names) < 12 {
			t.Errorf("%s: %d clips, want at least 12", split, len(names))
		}
		seen := map[string]bool{}
		classes := map[string]int{}
		codecs := map[string]bool{}
		for i, c := range corpusClips[split] {
			n := names[i]
			if seen[n] {
				t.Errorf("%s: clip %s listed twice", split, n)
			}
			seen[n] = true
			classes[CorpusClass(n)]++
			codecs[c.video] = true
			if c.h < 480 || c.h > 1080 || c.seconds < 3 || c.seconds > 8 {
				t.Errorf("%s: %s is %dp, %d s; want 480p-1080p, 3-8 s", split, n, c.h, c.seconds)
			}
		}
		for _, c := range want {
			need := 2
			if c == ClassBlack {
				need = 1
			}
			if classes[c] < need {
				t.Errorf("%s: %d clips of class %s, want at least %d", split, classes[c], c, need)
			}
		}
		for _, v := range []string{"h264", "mpeg2"} {
			if !codecs[v] {
				t.Errorf("%s: no %s clip", split, v)
			}
		}
		if !codecs["hevc"] && !codecs["hevc10"] {
			t.Errorf("%s: no HEVC clip", split)
		}
		for _, s := range corpusSources[split] {
			if s.file != "" {
				files[split] = append(files[split], filepath.Base(s.file))
			}
		}
	}
	for _, f := range files[Held] {
		if slices.Contains(files[Tune], f) {
			t.Errorf("source %s is in both splits", f)
		}
	}
	if CorpusClass("no_such_clip") != "" {
		t.Error("CorpusClass of an unknown name is not empty")
	}
	if _, err := EnsureCorpus(t.Context(), "no_such_split", ""); err == nil || !strings.Contains(err.Error(), "no_such_split") {
		t.Errorf("EnsureCorpus(unknown split) = %v, want an error naming it", err)
	}
}

// TestMaxPCRGap: PCRs 80 ms apart on one PID (FFmpeg's muxer on the plain-zone clips) and 20 ms on another.
func TestMaxPCRGap(t *testing.T) {
	pkt := func(pid int, pcr uint64) []byte {
		p := make([]byte, 188)
		p[0], p[1], p[2], p[3], p[4], p[5] = 0x47, byte(pid>>8), byte(pid), 0x30, 7, 0x10
		base, ext := pcr/300, pcr%300
		p[6], p[7], p[8], p[9] = byte(base>>25), byte(base>>17), byte(base>>9), byte(base>>1)
		p[10], p[11] = byte(base&1)<<7|byte(ext>>8), byte(ext)
		return p
	}
	var ts []byte
	for i := uint64(0); i < 5; i++ {
		ts = append(ts, pkt(256, i*80*27000)...)
		ts = append(ts, pkt(257, i*20*27000+13)...)
		ts = append(ts, make([]byte, 188)...) // no sync byte: skipped
	}
	f := filepath.Join(t.TempDir(), "a.ts")
	if err := os.WriteFile(f, ts, 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := maxPCRGap(f); err != nil || math.Abs(got-0.080) > 1e-9 {
		t.Errorf("maxPCRGap = %v, %v; want 0.080", got, err)
	}
	if _, err := maxPCRGap(filepath.Join(t.TempDir(), "none.ts")); err == nil {
		t.Error("maxPCRGap of a missing file: no error")
	}
}
