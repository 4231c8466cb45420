package hevc

import (
	"math/rand/v2"
	"testing"
)

// benchPacket is an access unit as a decoder loop sees it, with 4-byte
// lengths, each slice NAL unit followed by 20 kB of slice data.
type benchPacket struct {
	name string
	pkt  []byte
	want int
}

// benchPackets returns: a B picture with long-term pictures, lists
// modification and a weight table; a P picture whose header (243 bytes)
// runs past the first 128 bytes read; 2 slices of an I picture; and the
// same I picture with its SPS and PPS (scaling lists in both) in band, as a
// broadcast stream repeats them.
func benchPackets() []benchPacket {
	rng := rand.New(rand.NewPCG(1, 2))
	data := make([]byte, 20000)
	for k := range data {
		data[k] = byte(rng.UintN(256))
	}
	withData := func(nals ...[]byte) [][]byte {
		var out [][]byte
		for _, n := range nals {
			out = append(out, append(append([]byte(nil), n...), escape(data)...))
		}
		return out
	}
	islices := withData(findHand("slice segments: dependent one skipped, mean rounded half up").pkt...)
	return []benchPacket{
		{"B long-term refs weights", lengthPrefixed(4, withData(findHand("B slice, long-term pictures, lists modification, weights with chroma").pkt...)...), 46},
		{"P 243-byte header", lengthPrefixed(4, withData(nalUnit(1, longHeader(15)))...), 51},
		{"I 2 slices", lengthPrefixed(4, islices...), 32},
		{"I 2 slices with SPS and PPS", lengthPrefixed(4, append([][]byte{handSPS5, handPPS5}, islices...)...), 32},
	}
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
	for _, bc := range benchPackets() {
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
	var p Parser
	p.Extradata(hvcC(4, handParamSets...))
	pkts := benchPackets()
	p.Packet(pkts[len(pkts)-1].pkt, 4) // the in-band SPS takes a slot, its predecessor becomes the scratch one
	for _, bp := range pkts {
		if n := testing.AllocsPerRun(50, func() {
			if qp, ok := p.Packet(bp.pkt, 4); !ok || qp != bp.want {
				t.Fatalf("%s: got %d, %v, %v", bp.name, qp, ok, p.Last().Err)
			}
		}); n != 0 {
			t.Errorf("%s: %g allocations per packet", bp.name, n)
		}
	}
}
