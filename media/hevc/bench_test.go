package hevc

import (
	"math/rand/v2"
	"testing"
)

// benchPackets returns access units as a decoder loop sees them: a B
// picture with long-term pictures, lists modification and a weight table
// (the longest hand-built header), 2 slices of an I picture, each NAL unit
// followed by 20 kB of slice data; and the same I picture with its SPS and
// PPS in band, as a broadcast stream repeats them.
func benchPackets() (b, i, iWithPS []byte) {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 20000)
	for k := range data {
		data[k] = byte(rng.UintN(256))
	}
	withData := func(nal []byte) []byte { return append(append([]byte(nil), nal...), escape(data)...) }
	b = lengthPrefixed(4, withData(findHand("B slice, long-term pictures, lists modification, weights with chroma").pkt[0]))
	var nals [][]byte
	for _, n := range findHand("slice segments: dependent one skipped, mean rounded half up").pkt {
		nals = append(nals, withData(n))
	}
	i = lengthPrefixed(4, nals...)
	iWithPS = lengthPrefixed(4, append([][]byte{handSPS5, handPPS5}, nals...)...)
	return b, i, iWithPS
}

func findHand(name string) handCase {
	for _, c := range handCases() {
		if c.name == name {
			return c
		}
	}
	panic("no hand-built case " + name)
}

func BenchmarkPacket(b *testing.B) {
	pb, pi, pps := benchPackets()
	for _, bc := range []struct {
		name string
		pkt  []byte
		want int
	}{{"B long header", pb, 46}, {"I 2 slices", pi, 32}, {"I 2 slices with SPS and PPS", pps, 32}} {
		b.Run(bc.name, func(b *testing.B) {
			var p Parser
			if _, err := p.Extradata(hvcC(4, handParamSets...)); err == nil {
				b.Fatal("want the unsupported SPS 7 and PPS 8 reported")
			}
			b.ReportAllocs()
			for b.Loop() {
				if qp, ok := p.Packet(bc.pkt, 4); !ok || qp != bc.want {
					b.Fatalf("got %d, %v, %v; want %d", qp, ok, p.Last().Err, bc.want)
				}
			}
		})
	}
}

// TestPacketAllocs: Packet allocates nothing once its parameter sets are
// stored, in-band ones read again included.
func TestPacketAllocs(t *testing.T) {
	pb, pi, pps := benchPackets()
	var p Parser
	p.Extradata(hvcC(4, handParamSets...))
	p.Packet(pps, 4) // the in-band SPS takes a slot, its predecessor becomes the scratch one
	for _, pkt := range [][]byte{pb, pi, pps} {
		if n := testing.AllocsPerRun(50, func() {
			if _, ok := p.Packet(pkt, 4); !ok {
				t.Fatalf("not ok: %v", p.Last().Err)
			}
		}); n != 0 {
			t.Errorf("%g allocations per packet", n)
		}
	}
}
