package detectors

import "testing"

func TestAcceleratedDevice(t *testing.T) {
	tests := []struct {
		hw, dev string
		ordinal int
		ok      bool
	}{
		{"cuda", "", 0, true},
		{"auto", "", 0, true},
		{"cuda", "1", 1, true},
		{"none", "", 0, false},
		{"vaapi", "/dev/dri/renderD128", 0, false},
		{"cuda", "-1", 0, false},
		{"cuda", "gpu0", 0, false},
	}
	for _, tc := range tests {
		n, ok := AcceleratedDevice(tc.hw, tc.dev)
		if n != tc.ordinal || ok != tc.ok {
			t.Errorf("AcceleratedDevice(%q, %q) = %d %v, want %d %v", tc.hw, tc.dev, n, ok, tc.ordinal, tc.ok)
		}
	}
}
