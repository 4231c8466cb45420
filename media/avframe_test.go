package media

import (
	"strings"
	"testing"

	"github.com/asticode/go-astiav"
)

func TestLumaFormat(t *testing.T) {
	tests := []struct {
		name  string
		depth int
		ok    bool
	}{
		{"yuv420p", 8, true},
		{"yuvj420p", 8, true},
		{"nv12", 8, true}, // NVDEC's 8-bit output
		{"gray", 8, true},
		{"yuv420p10le", 10, true},
		{"yuv422p10le", 10, true},
		{"p010le", 16, true}, // NVDEC's 10-bit output: the value in the high bits, read as 16-bit
		{"p016le", 16, true},
		{"yuv420p10be", 10, false},
		{"rgb24", 8, false},
		{"cuda", 0, false},
		{"pal8", 8, false},
	}
	for _, tc := range tests {
		pf := astiav.FindPixelFormatByName(tc.name)
		if pf == astiav.PixelFormatNone {
			t.Fatalf("no pixel format %q", tc.name)
		}
		depth, ok := lumaFormat(pf)
		if ok != tc.ok || (ok && depth != tc.depth) {
			t.Errorf("%s: depth %d ok %v, want %d %v", tc.name, depth, ok, tc.depth, tc.ok)
		}
	}
}

func TestDecodeReason(t *testing.T) {
	for _, code := range []int{-1, -22, -1094995529, -123456789, -2147483648} {
		r := decodeReason(code)
		if !strings.HasPrefix(r, "decode: ") || strings.TrimSpace(strings.TrimPrefix(r, "decode: ")) == "" {
			t.Errorf("decodeReason(%d) = %q", code, r)
		}
	}
}
