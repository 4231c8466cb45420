package media

import (
	"testing"
	"unsafe"
)

// TestSliceQuantBadInput: unreadable extradata still gives a reader (in-band
// parameter sets may come), and packets without a timestamp, empty or
// garbage ones leave no value behind; TestQuantizers covers real streams.
func TestSliceQuantBadInput(t *testing.T) {
	const noPts = -1 << 63
	tests := []struct {
		name      string
		extradata []byte
		wantErr   bool
	}{
		{"none", nil, false},
		{"hvcC record cut short", []byte{1, 2, 3, 4, 5}, true},
		{"Annex B SPS cut short", []byte{0, 0, 1, 0x42, 0x01, 0x01}, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q, err := newSliceQuant(tc.extradata)
			if q == nil || (err != nil) != tc.wantErr {
				t.Fatalf("newSliceQuant: reader %t, error %v; want a reader and an error: %t", q != nil, err, tc.wantErr)
			}
			garbage := []byte{0, 0, 0, 1, 0x26, 0x01, 0xaf, 0x00, 0x00, 0x03, 0x01}
			q.packet(nil, 0, 1, noPts)
			q.packet(unsafe.Pointer(&garbage[0]), len(garbage), 2, noPts)
			q.packet(unsafe.Pointer(&garbage[0]), len(garbage), noPts, noPts)
			for _, pts := range []int64{1, 2, noPts} {
				if v, ok := q.take(pts); ok {
					t.Errorf("take(%d) = %v, want nothing", pts, v)
				}
			}
		})
	}
}
