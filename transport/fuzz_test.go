package transport_test

import (
	"testing"

	"github.com/streamqc/streamqc/transport"
	"github.com/streamqc/streamqc/transport/tstest"
)

// FuzzFeed: no input makes the packet or section parser panic, loop or
// count backwards; the seed corpus runs in `go test`.
func FuzzFeed(f *testing.F) {
	clean := tstest.Bytes(tstest.Generate(tstest.Options{Packets: 60, CAT: true})) // small: the fuzzer minimizes what it finds
	f.Add(clean, uint16(188))
	f.Add(clean[:1000], uint16(7))
	// Hostile lengths: a section_length of 4095, an adaptation field of 255,
	// a pointer_field past the packet.
	hostile := append([]byte(nil), clean[:188*10]...)
	hostile[5+1], hostile[5+2] = 0xBF, 0xFF
	hostile[188+4] = 0xFF
	hostile[2*188+4] = 200
	f.Add(hostile, uint16(1))
	f.Add([]byte{0x47, 0x47, 0x47}, uint16(2))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint16) {
		a := transport.New(transport.DefaultLimits(), nil, 0)
		step := int(chunk%400) + 1
		for off := 0; off < len(data); off += step {
			a.Feed(data[off:min(off+step, len(data))])
		}
		a.Flush()
		for i, c := range a.Counts() {
			if c < 0 {
				t.Fatalf("%s: %d", transport.Indicator(i), c)
			}
		}
		if a.Packets() > int64(len(data)/transport.PacketSize) {
			t.Fatalf("%d packets from %d bytes", a.Packets(), len(data))
		}
	})
}
