package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseAgent(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	good := `
fleet: eu-west
agent: box-1
state_dir: /tmp/sq
media_dir: /srv/media
broker:
  url: ssl://broker:8883
  username: agent
  password_file: ` + pw + `
  ca_file: /etc/ca.pem
  cert_file: /etc/c.pem
  key_file: /etc/k.pem
metrics_interval: 5s
stop_timeout: 3
streams:
  - id: ch1
    url: udp://239.0.0.1:5000
    detectors: {black: {min_duration: 3}}
detectors:
  silence: {min_duration: 4}
`
	a := DefaultAgent()
	if err := ParseAgent([]byte(good), &a); err != nil {
		t.Fatal(err)
	}
	if a.Fleet != "eu-west" || a.Broker.Password != "s3cret" || time.Duration(a.MetricsInterval) != 5*time.Second ||
		time.Duration(a.StopTimeout) != 3*time.Second || len(a.Streams) != 1 || a.Spool.MaxBytes != 256<<20 {
		t.Fatalf("parsed %+v", a)
	}
	bad := []struct{ doc, want string }{
		{"fleet: [", "yaml"},
		{"nosuch: 1", "nosuch"},
		{"fleet: a/b", "fleet"},
		{"agent: config", "reserved"},
		{"agent: '+'", "agent"},
		{"broker: {url: ''}", "broker.url"},
		{"broker: {cert_file: x}", "key_file"},
		{"metrics_interval: soon", "duration"},
		{"metrics_interval: 10ms", "metrics_interval"},
		{"spool: {max_bytes: 10}", "spool.max_bytes"},
		{"schemes: [gopher]", "schemes[0]"},
		{"detectors: {black: {nosuch: 1}}", "detectors"},
		{"detectors: {black: {min_duration: -1}}", "min_duration"},
		{"broker: {password_file: /nonexistent/pw}", "password_file"},
	}
	for _, c := range bad {
		a := DefaultAgent()
		err := ParseAgent([]byte(c.doc), &a)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: error %v, want one naming %q", c.doc, err, c.want)
		}
	}
}

func TestSafeID(t *testing.T) {
	for in, want := range map[string]string{"box-1.example.com": "box-1.example.com", "we ird/host": "we-ird-host", "": "agent", "...": "agent"} {
		if got := SafeID(in); got != want {
			t.Errorf("SafeID(%q) = %q, want %q", in, got, want)
		}
	}
}

func FuzzParseAgent(f *testing.F) {
	f.Add([]byte("fleet: a\nagent: b\nstreams: [{id: x, url: 'udp://h:1'}]\n"))
	f.Add([]byte("metrics_interval: 5s\nbroker: {url: tcp://x:1}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		a := DefaultAgent()
		_ = ParseAgent(b, &a)
	})
}
