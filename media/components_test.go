package media

import (
	"strings"
	"testing"
)

// TestComponents fails when the FFmpeg this test links (Debian's, or the
// portable build's own in its flavour) lacks a component an input needs.
func TestComponents(t *testing.T) {
	if m := Missing(); len(m) > 0 {
		t.Fatalf("FFmpeg lacks what streamqc's inputs need: %v", m)
	}
	v, conf := FFmpegVersion()
	if v == "" || conf == "" {
		t.Fatalf("FFmpeg version %q, configuration %q", v, conf)
	}
	seen := map[Component]bool{}
	for _, c := range Required() {
		if seen[c] || c.Name == "" || strings.Contains(c.Name, ",") {
			t.Errorf("required component %v listed twice or malformed", c)
		}
		seen[c] = true
	}
}
