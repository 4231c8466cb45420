package hevc

import (
	"bytes"
	"errors"
	"testing"
)

func TestUnescape(t *testing.T) {
	tests := []struct {
		name     string
		in       []byte
		dst      int
		want     []byte
		complete bool
	}{
		{"none", []byte{1, 2, 3}, 8, []byte{1, 2, 3}, true},
		{"one", []byte{0, 0, 3, 1}, 8, []byte{0, 0, 1}, true},
		{"two in a row", []byte{0, 0, 3, 0, 0, 3, 0}, 8, []byte{0, 0, 0, 0, 0}, true},
		{"at the end", []byte{5, 0, 0, 3}, 8, []byte{5, 0, 0}, true},
		{"0x000004 kept", []byte{0, 0, 4}, 8, []byte{0, 0, 4}, true},
		{"full", []byte{1, 2, 3, 4, 5}, 3, []byte{1, 2, 3}, false},
		{"full exactly", []byte{1, 2, 3}, 3, []byte{1, 2, 3}, true},
		{"full before an escape", []byte{1, 0, 0, 3, 2}, 2, []byte{1, 0}, false},
		{"escape fits, rest not", []byte{1, 0, 0, 3, 2, 7}, 4, []byte{1, 0, 0, 2}, false},
		{"escape past the window", append(bytes.Repeat([]byte{9}, 10), 0, 0, 3, 1), 4, []byte{9, 9, 9, 9}, false},
	}
	for _, tt := range tests {
		dst := make([]byte, tt.dst)
		n, complete := unescape(dst, tt.in)
		if !bytes.Equal(dst[:n], tt.want) || complete != tt.complete {
			t.Errorf("%s: got % x, %v; want % x, %v", tt.name, dst[:n], complete, tt.want, tt.complete)
		}
	}
}

func TestBitReader(t *testing.T) {
	// 1 | 010 | 011 | 00100 | 00101 | 0000 1111 1111 ... : u(1), ue 1, ue 2, se +2, se -2
	r := bitReader{b: []byte{0b10100110, 0b01000010, 0b10000000}}
	if v := r.u(1); v != 1 {
		t.Errorf("u(1) = %d", v)
	}
	if v := r.ue(); v != 1 {
		t.Errorf("ue = %d, want 1", v)
	}
	if v := r.ue(); v != 2 {
		t.Errorf("ue = %d, want 2", v)
	}
	if v := r.se(); v != 2 {
		t.Errorf("se = %d, want 2", v)
	}
	if v := r.se(); v != -2 {
		t.Errorf("se = %d, want -2", v)
	}
	if r.err() != nil || r.left() != 7 {
		t.Errorf("err %v, %d bits left", r.err(), r.left())
	}
	r.skip(8)
	if !errors.Is(r.err(), ErrTruncated) {
		t.Errorf("past the end: %v", r.err())
	}

	// The longest code: 31 zeros, then 32 bits: 2^32 - 2.
	w := bitWriter{}
	w.ue(1<<32 - 2)
	w.u(1, 1)
	r = bitReader{b: w.b}
	if v := r.ue(); v != 1<<32-2 || r.err() != nil || !r.flag() {
		t.Errorf("longest ue: %d, %v", v, r.err())
	}
	// 32 zeros: not a code this parser reads.
	r = bitReader{b: []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0xff}}
	if v := r.ue(); v != 0 || !errors.Is(r.err(), ErrInvalid) {
		t.Errorf("33-bit prefix: %d, %v", v, r.err())
	}
	// A code cut by the end of the data.
	r = bitReader{b: []byte{0, 0x10}}
	if r.ue(); !errors.Is(r.err(), ErrTruncated) {
		t.Errorf("cut code: %v", r.err())
	}
	// u(32) across 5 bytes at an odd position.
	r = bitReader{b: []byte{0x7f, 0xff, 0xff, 0xff, 0x80}}
	r.skip(1)
	if v := r.u(32); v != 0xffffffff {
		t.Errorf("u(32) = %x", v)
	}
}

func TestCeilLog2(t *testing.T) {
	for n, want := range map[uint32]int{0: 0, 1: 0, 2: 1, 3: 2, 4: 2, 5: 3, 16: 4, 17: 5, 64: 6, 3600: 12} {
		if got := ceilLog2(n); got != want {
			t.Errorf("ceilLog2(%d) = %d, want %d", n, got, want)
		}
	}
}

func TestRoundDiv(t *testing.T) {
	for _, tt := range []struct {
		sum  int64
		n    int
		want int
	}{{63, 2, 32}, {62, 2, 31}, {-3, 2, -2}, {-1, 2, -1}, {100, 3, 33}, {101, 3, 34}, {-101, 3, -34}, {0, 5, 0}} {
		if got := roundDiv(tt.sum, tt.n); got != tt.want {
			t.Errorf("roundDiv(%d, %d) = %d, want %d", tt.sum, tt.n, got, tt.want)
		}
	}
}
