package firmware

import (
	"errors"
	"strings"
	"testing"
)

func TestParseJob(t *testing.T) {
	sha := strings.Repeat("ab", 32)
	base := `"job_id":"j-1","type":"firmware_update","created":"2026-12-01T07:00:00Z"`
	tests := []struct {
		name, doc, topic, err string // err "": accepted
	}{
		{"streamed", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"}}`, "j-1", ""},
		{"streamed with block size", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `","block_size":4096}}`, "j-1", ""},
		{"https", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `","url":"https://h/b?x=1"},"health_deadline":60}`, "j-1", ""},
		{"any topic when none given", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"}}`, "", ""},
		{"topic of another job", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"}}`, "j-2", "published on the topic"},
		{"unknown field", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"},"evil":1}`, "j-1", "unknown field"},
		{"trailing data", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"}} {}`, "j-1", "trailing data"},
		{"not JSON", `job please`, "j-1", "invalid"},
		{"bad id", `{"job_id":"../x","type":"firmware_update","created":"2026-12-01T07:00:00Z","bundle":{"size":10,"sha256":"` + sha + `"}}`, "", "job_id"},
		{"other type", `{"job_id":"j-1","type":"reboot","created":"2026-12-01T07:00:00Z","bundle":{"size":10,"sha256":"` + sha + `"}}`, "j-1", "type"},
		{"no created", `{"job_id":"j-1","type":"firmware_update","bundle":{"size":10,"sha256":"` + sha + `"}}`, "j-1", "created"},
		{"no size", `{` + base + `,"bundle":{"sha256":"` + sha + `"}}`, "j-1", "bundle.size"},
		{"upper-case sha", `{` + base + `,"bundle":{"size":10,"sha256":"` + strings.ToUpper(sha) + `"}}`, "j-1", "sha256"},
		{"http", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `","url":"http://h/b"}}`, "j-1", "want https"},
		{"credentials in the URL", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `","url":"https://u:p@h/b"}}`, "j-1", "no credentials"},
		{"block too small", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `","block_size":10}}`, "j-1", "block_size"},
		{"block size with a URL", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `","url":"https://h/b","block_size":4096}}`, "j-1", "block_size"},
		{"health deadline too short", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"},"health_deadline":1}`, "j-1", "health_deadline"},
		{"health deadline too long", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"},"health_deadline":100000}`, "j-1", "health_deadline"},
		{"too large", `{` + base + `,"bundle":{"size":10,"sha256":"` + sha + `"},"x":"` + strings.Repeat("a", MaxJobSize) + `"}`, "j-1", "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			j, err := ParseJob([]byte(tc.doc), tc.topic)
			if tc.err == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if j.JobID != "j-1" || j.Bundle.Size != 10 {
					t.Fatalf("decoded %+v", j)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrJob) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want ErrJob mentioning %q", err, tc.err)
			}
		})
	}
}

func TestValidJobID(t *testing.T) {
	for id, want := range map[string]bool{
		"j-1": true, "fw-20261201T070000Z-1a2b3c": true, "A.b_c-d": true, "_x": true,
		"": false, ".hidden": false, "a/b": false, `a\b`: false, "a b": false, "+": false, "#": false,
		strings.Repeat("x", 64): true, strings.Repeat("x", 65): false,
	} {
		if got := ValidJobID(id); got != want {
			t.Errorf("ValidJobID(%q) = %v", id, got)
		}
	}
}

func TestBlockCodec(t *testing.T) {
	data := []byte("some bundle bytes")
	msg := EncodeBlock(BlockHeader{Offset: 4096, Total: 9000}, data)
	h, got, err := DecodeBlock(msg)
	if err != nil || h.Offset != 4096 || h.Total != 9000 || string(got) != string(data) {
		t.Fatalf("round trip: %+v %q %v", h, got, err)
	}
	flipped := append([]byte(nil), msg...)
	flipped[len(flipped)-1] ^= 1
	short := msg[:len(msg)-3]
	for name, m := range map[string][]byte{
		"corrupt": flipped, "truncated": short, "empty": nil, "header longer than the message": {0, 0, 0x10, 0, '{'},
		"header not JSON": append([]byte{0, 0, 0, 2}, 'x', 'y'),
	} {
		if _, _, err := DecodeBlock(m); !errors.Is(err, ErrBlock) {
			t.Errorf("%s: err = %v, want ErrBlock", name, err)
		}
	}
	h, got, err = DecodeBlock(EncodeBlock(BlockHeader{Offset: 1, Error: "no such job"}, nil))
	if err != nil || h.Error != "no such job" || got != nil {
		t.Errorf("error block: %+v %v %v", h, got, err)
	}
}
