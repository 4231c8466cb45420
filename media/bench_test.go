package media

import (
	"context"
	"runtime"
	"testing"

	"github.com/streamqc/streamqc/detectors"
)

// allocSink wraps the real analyzer and counts heap allocations from frame
// 'from' on, so the benchmark shows the steady state apart from set-up.
type allocSink struct {
	*detectors.Analyzer
	from, frames int
	start, end   uint64
	ms           runtime.MemStats
}

func (s *allocSink) Video(cur, ref *detectors.VideoFrame) bool {
	keep := s.Analyzer.Video(cur, ref)
	s.frames++
	if s.frames >= s.from {
		runtime.ReadMemStats(&s.ms)
		if s.frames == s.from {
			s.start = s.ms.Mallocs
		}
		s.end = s.ms.Mallocs
	}
	return keep
}

// BenchmarkPipeline decodes a 4 s 320x240 H.264 + AAC clip through every
// detector. allocs/frame is counted between frame 25 and the last frame:
// demux, decode (video and audio), features and decisions together.
func BenchmarkPipeline(b *testing.B) {
	clip := avClip(b, "bench.mp4")
	o := quiet()
	o.URL = clip
	b.ReportAllocs()
	var frames, allocs uint64
	for b.Loop() {
		an, err := detectors.NewAnalyzer(detectors.DefaultConfig(), nil, func(detectors.Event) {})
		if err != nil {
			b.Fatal(err)
		}
		s := &allocSink{Analyzer: an, from: 25}
		if _, err := Run(context.Background(), o, s); err != nil {
			b.Fatal(err)
		}
		frames += uint64(s.frames - s.from)
		allocs += s.end - s.start
	}
	b.ReportMetric(float64(allocs)/float64(frames), "allocs/frame")
}
