package config

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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
	if a.Spool.KeepUntil != KeepAuto || time.Duration(a.Spool.ResendAfter) != 10*time.Second {
		t.Fatalf("spool delivery defaults %+v", a.Spool)
	}
	for doc, want := range map[string]Spool{
		"spool: {keep_until: stored, resend_after: 30s}": {KeepUntil: KeepStored, ResendAfter: Duration(30 * time.Second)},
		"spool: {keep_until: broker, resend_after: 1}":   {KeepUntil: KeepBroker, ResendAfter: Duration(time.Second)},
	} {
		b := DefaultAgent()
		if err := ParseAgent([]byte(doc), &b); err != nil || b.Spool.KeepUntil != want.KeepUntil || b.Spool.ResendAfter != want.ResendAfter {
			t.Errorf("%q: %+v, %v", doc, b.Spool, err)
		}
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
		{"spool: {keep_until: forever}", "spool.keep_until"},
		{"spool: {keep_until: ''}", "spool.keep_until"},
		{"spool: {resend_after: 100ms}", "spool.resend_after"},
		{"spool: {resend_after: 2h}", "spool.resend_after"},
		{"spool: {resend_after: never}", "duration"},
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

func TestAgentValidateReportsEveryProblem(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // one per problem, in order: a substring of each
	}{
		{name: "valid", doc: "fleet: a\nagent: b\n"},
		{name: "many fields", doc: `
fleet: "a b"
agent: config
state_dir: ""
broker:
  url: ""
  cert_file: c
  keepalive: 10ms
spool: {max_bytes: 10, segment_bytes: 10}
metrics_interval: 10ms
stop_timeout: 0
schemes: [udp, gopher]
detectors: {black: {min_duration: -1}, silence: {min_duration: -2}}
`, want: []string{
			`fleet: "a b": only letters`,
			`agent: "config" is reserved`,
			"state_dir: required",
			"broker.url: required",
			"broker.key_file: required",
			"broker.keepalive: 10ms",
			"spool.max_bytes: 10 is below 1 MiB",
			"spool.segment_bytes: 10 must be",
			"metrics_interval: 10ms: at least 1s",
			"stop_timeout: 0s: must be positive",
			`schemes[1]: "gopher"`,
			"detectors: black.min_duration: must be in",
			"detectors: silence.min_duration: must be in",
		}},
		{name: "streams", doc: `
streams:
  - {id: x, url: "udp://h:1"}
  - {id: x, url: "", hwaccel: gpu, threads: 99}
  - {id: "a b", url: u, threads: -1, detectors: {black: {nope: 1}}}
  - {id: y, url: u, hwaccel: cuda, threads: 64, detectors: {black: {min_duration: 3}}}
  - {id: z, url: u, detectors: {freeze: {noise: 2}}}
`, want: []string{
			`streams[1].id: "x" appears twice (also streams[0])`,
			"streams[1].url: required",
			`streams[1].hwaccel: "gpu" is not auto`,
			"streams[1].threads: 99 is not between 0 and 64",
			`streams[2].id: "a b": only letters`,
			"streams[2].threads: -1",
			`streams[2].detectors: json: unknown field "nope"`,
			"streams[4].detectors: freeze.keyframe_noise",
			"streams[4].detectors: freeze.noise: must be in [0, 1)",
		}},
		{name: "stream detectors over the file's", doc: `
detectors: {loudness: {max_short_term: -40}}
streams: [{id: a, url: u, detectors: {loudness: {min_short_term: -50}}}]
`, want: []string{"detectors: loudness.min_short_term: must be below"}},
		{name: "stream detectors merge over the file's", doc: `
detectors: {loudness: {min_short_term: -50}}
streams: [{id: a, url: u, detectors: {loudness: {max_short_term: -45}}}]
`},
		{name: "key without cert", doc: "broker: {key_file: k}", want: []string{"broker.cert_file: required"}},
		{name: "firmware", doc: "firmware: {trusted_keys: ['', /k.pub], max_bundle_bytes: 10, health_deadline: 1s, flavor: gpu, downgrades: always, stall_timeout: 0.5s}",
			want: []string{"firmware.trusted_keys[0]: empty path", "firmware.max_bundle_bytes: 10: between 1 MiB and 8 GiB",
				"firmware.health_deadline: 1s: between 5s and 24h", `firmware.flavor: "gpu" is not cpu or cuda`, "firmware.stall_timeout: 500ms: between 1s and 168h", `firmware.downgrades: "always" is not job or never`}},
		{name: "yaml and validation together", doc: "nosuch: 1\nfleet: '-x'\n", want: []string{
			"nosuch: line 1: unknown key", `fleet: "-x"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAgent()
			a.ID = "box"
			err := ParseAgent([]byte(tc.doc), &a)
			got := Problems(err)
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(got), len(tc.want), err)
			}
			for i, e := range got {
				if !strings.Contains(e.Error(), tc.want[i]) {
					t.Errorf("problem %d = %q, want it to contain %q", i, e, tc.want[i])
				}
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("problem %d (%v) is a %T, not a *FieldError", i, e, e)
				}
			}
		})
	}
}

func TestParseAgentYAMLProblems(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []string // "path|line|substring of the message"
	}{
		{name: "unknown keys everywhere", doc: `nosuch: 1
broker:
  url: tcp://h:1
  bogus: 2
spool: {max_bytes: 20000000, extra: 1}
streams:
  - {id: a, url: u}
  - {id: b, url: u, colour: red}
`, want: []string{"nosuch|1|unknown key", "broker.bogus|4|unknown key", "spool.extra|5|unknown key", "streams[1].colour|8|unknown key"}},
		{name: "type errors", doc: `fleet: [a, b]
spool: {max_bytes: 20000000, segment_bytes: big}
metrics_interval: soon
allow_local_hosts: maybe
streams:
  - {id: a, url: u, threads: many}
broker: {keepalive: [1]}
`, want: []string{
			"fleet|1|cannot unmarshal !!seq",
			"spool.segment_bytes|2|`big`",
			`metrics_interval|3|"soon" is not a duration`,
			"allow_local_hosts|4|`maybe`",
			"streams[0].threads|6|`many`",
			"broker.keepalive|7|cannot unmarshal !!seq",
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAgent()
			a.ID = "box"
			err := ParseAgent([]byte(tc.doc), &a)
			got := Problems(err)
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d:\n%v", len(got), len(tc.want), err)
			}
			for i, e := range got {
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Fatalf("problem %d (%v) is a %T", i, e, e)
				}
				w := strings.SplitN(tc.want[i], "|", 3)
				if fe.Path != w[0] || strconv.Itoa(fe.Line) != w[1] || !strings.Contains(fe.Err.Error(), w[2]) {
					t.Errorf("problem %d = path %q line %d %q, want %s", i, fe.Path, fe.Line, fe.Err, tc.want[i])
				}
			}
		})
	}
	// A document that is not YAML is one problem.
	a := DefaultAgent()
	err := ParseAgent([]byte("fleet: [\nagent: x\n"), &a)
	if got := Problems(err); len(got) != 1 || !strings.Contains(err.Error(), "yaml: line") {
		t.Errorf("syntax error: %v", err)
	}
}

func TestLoadAgentErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte("broker: {url: ''}\nspool: {max_bytes: 1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := LoadAgentEnv(p, nil)
	if err == nil || !strings.HasPrefix(err.Error(), "config "+p+": ") {
		t.Fatalf("err = %v", err)
	}
	if got := Problems(err); len(got) != 3 { // url, max_bytes, segment_bytes
		t.Errorf("%d problems: %v", len(got), err)
	}
	var fe *FieldError
	if !errors.As(err, &fe) || fe.Path != "broker.url" {
		t.Errorf("errors.As: %+v", fe)
	}
	if _, err := LoadAgentEnv(filepath.Join(dir, "none.yaml"), nil); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# \n"), maxConfigSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadAgentEnv(big, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestSampleAgentFile(t *testing.T) {
	sample := filepath.Join("..", "..", "packaging", "agent.yaml")
	a, err := LoadAgentEnv(sample, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The sample shows the defaults: loading it changes nothing but the
	// agent's name (the host name) and the empty maps and lists.
	want := DefaultAgent()
	if a.Fleet != want.Fleet || a.StateDir != "/var/lib/streamqc" || a.Broker != want.Broker || a.Spool != want.Spool ||
		a.MetricsInterval != want.MetricsInterval || a.StopTimeout != want.StopTimeout ||
		strings.Join(a.Schemes, ",") != strings.Join(want.Schemes, ",") || a.AllowLocalHosts || a.MediaDir != "" ||
		len(a.Streams) != 0 || len(a.Detectors) != 0 || len(a.Firmware.TrustedKeys) != 0 || len(a.Config.TrustedKeys) != 0 ||
		a.Firmware.MaxBundleBytes != want.Firmware.MaxBundleBytes || a.Firmware.HealthDeadline != want.Firmware.HealthDeadline ||
		a.Firmware.Flavor != want.Firmware.Flavor || a.Firmware.Downgrades != want.Firmware.Downgrades || a.Firmware.CAFile != "" ||
		a.Firmware.StallTimeout != want.Firmware.StallTimeout {
		t.Errorf("sample is not the defaults:\n got %+v\nwant %+v", a, want)
	}
	// Every environment variable is named in it.
	b, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range EnvVars() {
		if !bytes.Contains(b, []byte(v)) {
			t.Errorf("the sample does not mention %s", v)
		}
	}
}
