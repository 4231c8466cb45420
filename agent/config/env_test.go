package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// env is a fake environment for ApplyEnv and LoadAgentEnv.
func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := kv[k]
		return v, ok
	}
}

func TestApplyEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		check   func(a Agent) bool
		wantErr []string
	}{
		{name: "none", env: nil, check: func(a Agent) bool { return a.Fleet == "file-fleet" && a.Broker.URL == "tcp://file:1883" }},
		{name: "fleet", env: map[string]string{EnvFleet: "eu"}, check: func(a Agent) bool { return a.Fleet == "eu" }},
		{name: "agent", env: map[string]string{EnvAgent: "box-9"}, check: func(a Agent) bool { return a.ID == "box-9" }},
		{name: "state dir", env: map[string]string{EnvStateDir: "/s"}, check: func(a Agent) bool { return a.StateDir == "/s" }},
		{name: "media dir", env: map[string]string{EnvMediaDir: "/m"}, check: func(a Agent) bool { return a.MediaDir == "/m" }},
		{name: "empty media dir clears it", env: map[string]string{EnvMediaDir: ""}, check: func(a Agent) bool { return a.MediaDir == "" }},
		{name: "broker url", env: map[string]string{EnvBrokerURL: "ssl://b:8883"}, check: func(a Agent) bool { return a.Broker.URL == "ssl://b:8883" }},
		{name: "username", env: map[string]string{EnvBrokerUsername: "u"}, check: func(a Agent) bool { return a.Broker.Username == "u" }},
		{name: "password wins over file", env: map[string]string{EnvBrokerPassword: "p", EnvBrokerPasswordFile: "/f"},
			check: func(a Agent) bool { return a.Broker.Password == "p" && a.Broker.PasswordFile == "" }},
		{name: "password file", env: map[string]string{EnvBrokerPasswordFile: "/f"},
			check: func(a Agent) bool { return a.Broker.PasswordFile == "/f" && a.Broker.Password == "file-pw" }},
		{name: "ca file", env: map[string]string{EnvBrokerCAFile: "/ca"}, check: func(a Agent) bool { return a.Broker.CAFile == "/ca" }},
		{name: "cert file", env: map[string]string{EnvBrokerCertFile: "/c"}, check: func(a Agent) bool { return a.Broker.CertFile == "/c" }},
		{name: "key file", env: map[string]string{EnvBrokerKeyFile: "/k"}, check: func(a Agent) bool { return a.Broker.KeyFile == "/k" }},
		{name: "client id", env: map[string]string{EnvBrokerClientID: "cid"}, check: func(a Agent) bool { return a.Broker.ClientID == "cid" }},
		{name: "metrics interval", env: map[string]string{EnvMetricsInterval: "1m"},
			check: func(a Agent) bool { return time.Duration(a.MetricsInterval) == time.Minute }},
		{name: "metrics interval seconds", env: map[string]string{EnvMetricsInterval: "2.5"},
			check: func(a Agent) bool { return time.Duration(a.MetricsInterval) == 2500*time.Millisecond }},
		{name: "spool max bytes", env: map[string]string{EnvSpoolMaxBytes: "1048576"},
			check: func(a Agent) bool { return a.Spool.MaxBytes == 1<<20 }},
		{name: "bad metrics interval", env: map[string]string{EnvMetricsInterval: "soon"},
			wantErr: []string{`STREAMQC_METRICS_INTERVAL: "soon" is not a duration`}},
		{name: "empty metrics interval", env: map[string]string{EnvMetricsInterval: ""},
			wantErr: []string{`STREAMQC_METRICS_INTERVAL: "" is not a duration`}},
		{name: "bad spool and interval", env: map[string]string{EnvSpoolMaxBytes: "1MiB", EnvMetricsInterval: "1e400"},
			wantErr: []string{"STREAMQC_METRICS_INTERVAL", `STREAMQC_SPOOL_MAX_BYTES: "1MiB" is not a whole number of bytes`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAgent()
			a.Fleet, a.Broker.URL, a.Broker.Password, a.MediaDir = "file-fleet", "tcp://file:1883", "file-pw", "/srv"
			before := a
			err := ApplyEnv(&a, env(tc.env))
			got := Problems(err)
			if len(got) != len(tc.wantErr) {
				t.Fatalf("problems %v, want %d", err, len(tc.wantErr))
			}
			for i, e := range got {
				if !strings.Contains(e.Error(), tc.wantErr[i]) {
					t.Errorf("problem %d = %q, want %q", i, e, tc.wantErr[i])
				}
			}
			if tc.wantErr != nil {
				if a.MetricsInterval != before.MetricsInterval || a.Spool != before.Spool {
					t.Errorf("a bad value changed the config: %+v", a)
				}
				return
			}
			if !tc.check(a) {
				t.Errorf("after ApplyEnv: %+v", a)
			}
		})
	}
}

func TestLoadAgentEnv(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	filePW := write("file-pw", "from-file\n")
	envPW := write("env-pw", "from-env-file\n")
	cfg := write("agent.yaml", "fleet: eu\nagent: box\nbroker:\n  url: tcp://file:1883\n  password_file: "+filePW+"\nmetrics_interval: 5s\n")
	tests := []struct {
		name    string
		env     map[string]string
		check   func(a Agent) bool
		wantErr []string
	}{
		{name: "file only", check: func(a Agent) bool {
			return a.Fleet == "eu" && a.Broker.Password == "from-file" && time.Duration(a.MetricsInterval) == 5*time.Second
		}},
		{name: "env over file", env: map[string]string{EnvFleet: "us", EnvBrokerURL: "ssl://b:8883", EnvMetricsInterval: "20s"},
			check: func(a Agent) bool {
				return a.Fleet == "us" && a.Broker.URL == "ssl://b:8883" && time.Duration(a.MetricsInterval) == 20*time.Second
			}},
		{name: "env password file is read", env: map[string]string{EnvBrokerPasswordFile: envPW},
			check: func(a Agent) bool { return a.Broker.Password == "from-env-file" }},
		{name: "env password wins over both files", env: map[string]string{EnvBrokerPasswordFile: envPW, EnvBrokerPassword: "direct"},
			check: func(a Agent) bool { return a.Broker.Password == "direct" }},
		{name: "env password file missing", env: map[string]string{EnvBrokerPasswordFile: filepath.Join(dir, "none")},
			wantErr: []string{"broker.password_file: open"}},
		{name: "env values are validated", env: map[string]string{EnvFleet: "a/b", EnvSpoolMaxBytes: "10", EnvBrokerURL: ""},
			wantErr: []string{`fleet: "a/b"`, "broker.url: required", "spool.max_bytes: 10 is below 1 MiB", "spool.segment_bytes"}},
		{name: "bad env values and file problems together", env: map[string]string{EnvMetricsInterval: "x", EnvAgent: "config"},
			wantErr: []string{"STREAMQC_METRICS_INTERVAL", `agent: "config" is reserved`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := LoadAgentEnv(cfg, env(tc.env))
			got := Problems(err)
			if len(got) != len(tc.wantErr) {
				t.Fatalf("problems %v, want %d", err, len(tc.wantErr))
			}
			for i, e := range got {
				if !strings.Contains(e.Error(), tc.wantErr[i]) {
					t.Errorf("problem %d = %q, want %q", i, e, tc.wantErr[i])
				}
				var fe *FieldError
				if !errors.As(e, &fe) {
					t.Errorf("problem %d is a %T", i, e)
				}
			}
			if tc.wantErr == nil && !tc.check(a) {
				t.Errorf("loaded %+v", a)
			}
		})
	}
}
