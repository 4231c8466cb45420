package config

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/detectors"
)

func TestDetectors(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	tests := []struct {
		name    string
		file    string
		sets    []string
		check   func(detectors.Config) bool
		wantErr string
	}{
		{name: "defaults", check: func(c detectors.Config) bool { return c.Black.MinDuration == 2 && c.Silence.Threshold == -60 }},
		{name: "file overrides one field", file: write("a.json", `{"black":{"min_duration":5}}`),
			check: func(c detectors.Config) bool { return c.Black.MinDuration == 5 && c.Black.PictureThreshold == 0.98 }},
		{name: "set overrides file", file: write("b.json", `{"freeze":{"min_duration":5}}`), sets: []string{"freeze.min_duration=3"},
			check: func(c detectors.Config) bool { return c.Freeze.MinDuration == 3 }},
		{name: "disable a detector", sets: []string{"blockiness.enabled=false"},
			check: func(c detectors.Config) bool { return !c.Blockiness.Enabled }},
		{name: "unknown field is named", file: write("c.json", `{"black":{"min_durration":5}}`), wantErr: "min_durration"},
		{name: "unknown detector", sets: []string{"purple.x=1"}, wantErr: "purple"},
		{name: "invalid value names the field", sets: []string{"black.picture_threshold=2"}, wantErr: "black.picture_threshold"},
		{name: "string value refused", sets: []string{`black.min_duration="3"`}, wantErr: "not a number"},
		{name: "injection refused", sets: []string{`black.min_duration=1},"x":{"y":1`}, wantErr: "not a number"},
		{name: "no equals sign", sets: []string{"black.min_duration"}, wantErr: "want detector.field=value"},
		{name: "garbage file", file: write("d.json", "\x00\x01not json"), wantErr: "invalid character"},
		{name: "trailing data", file: write("e.json", `{} {}`), wantErr: "trailing data"},
		{name: "missing file", file: filepath.Join(dir, "none.json"), wantErr: "no such file"},
		{name: "negative duration", sets: []string{"silence.min_duration=-1"}, wantErr: "silence.min_duration"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Detectors(tc.file, tc.sets)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(c) {
				t.Errorf("config not as expected: %+v", c)
			}
		})
	}
}

// FuzzMergeJSON: any bytes either merge into a config or give an error;
// never a panic. Whatever merges must then validate or be refused cleanly.
func FuzzMergeJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"black":{"min_duration":5}}`, `{"loudness":{"max_short_term":-10,"min_short_term":-40}}`,
		`{"sampling":{"row_step":0}}`, `[]`, `null`, `{"black":null}`, `{"clipping":{"min_run":1e308}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c := detectors.DefaultConfig()
		if err := MergeJSON(&c, b); err != nil {
			return
		}
		_ = c.Validate()
	})
}

// FuzzSet: any key=value setting is applied or refused, never a panic, and
// never touches more than the one field it names.
func FuzzSet(f *testing.F) {
	for _, s := range []string{"black.min_duration=3", "x=y", "a.b.c=1", "black.enabled=true", "=", "freeze.noise=1e-3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, kv string) {
		c := detectors.DefaultConfig()
		if err := Set(&c, kv); err != nil {
			return
		}
		if n := changedLeaves(t, detectors.DefaultConfig(), c); n > 1 {
			t.Errorf("Set(%q) changed %d fields", kv, n)
		}
		_ = c.Validate()
	})
}

// changedLeaves counts the detector fields that differ between a and b.
func changedLeaves(t *testing.T, a, b detectors.Config) int {
	t.Helper()
	flat := func(c detectors.Config) map[string]any {
		raw, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatal(err)
		}
		out := map[string]any{}
		for k, sub := range m {
			for f, v := range sub {
				out[k+"."+f] = v
			}
		}
		return out
	}
	fa, fb := flat(a), flat(b)
	n := 0
	for k, v := range fa {
		if fb[k] != v {
			n++
		}
	}
	return n
}
