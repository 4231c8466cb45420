package transport_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/streamqc/streamqc/transport"
	"github.com/streamqc/streamqc/transport/tstest"
)

// feedChunks feeds data as FFmpeg's reads do (32 KiB) and reports ns per packet.
func feedChunks(b *testing.B, data []byte) {
	b.Helper()
	b.ReportAllocs()
	b.SetBytes(int64(len(data)))
	a := transport.New(transport.DefaultLimits(), nil, 0)
	a.Feed(data) // the PSI buffers and PMT lists are allocated here, once
	b.ResetTimer()
	for range b.N {
		for off := 0; off < len(data); off += 32768 {
			a.Feed(data[off:min(off+32768, len(data))])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(len(data)/transport.PacketSize), "ns/packet")
}

// BenchmarkAnalyzer is the analyzer alone on a generated stream (tables,
// PCRs and PES headers far denser than broadcast) and on a real 1080p
// capture when ../shared/media has it.
func BenchmarkAnalyzer(b *testing.B) {
	b.Run("generated", func(b *testing.B) {
		feedChunks(b, tstest.Bytes(tstest.Generate(tstest.Options{Packets: 10000, CAT: true})))
	})
	b.Run("tsduck064_1080p", func(b *testing.B) {
		data, err := os.ReadFile(filepath.Join("..", "..", "shared", "media", "tsduck064_bbb_1080p_h264_mp2.ts"))
		if err != nil {
			b.Skip("real capture absent:", err)
		}
		feedChunks(b, data)
	})
}
