package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/firmware"
)

func TestConfigCmd(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.yaml", "fleet: eu\nagent: box\nbroker: {url: 'tcp://b:1883'}\nstreams: [{id: a, url: 'udp://h:1'}]\n")
	bad := write("bad.yaml", "fleet: eu\nagent: box\nnosuch: 1\nbroker: {url: ''}\nmetrics_interval: soon\nstreams: [{id: 'a b', url: ''}]\n")
	notYAML := write("notyaml.yaml", "fleet: [\n")
	pub := filepath.Join(dir, "config.pub")
	if err := firmware.GenerateKey(filepath.Join(dir, "config.key"), pub); err != nil {
		t.Fatal(err)
	}
	signedOK := write("keys.yaml", "fleet: eu\nagent: box\nconfig: {trusted_keys: ['"+pub+"']}\n")
	identity := write("identity.yaml", "fleet: eu\nagent: box\nbroker: {username: box2}\nconfig: {trusted_keys: ['"+filepath.Join(dir, "none.pub")+"', '"+good+"']}\n")
	sample := filepath.Join("..", "..", "packaging", "agent.yaml")
	tests := []struct {
		name       string
		args       []string
		env        map[string]string
		code       int
		wantOut    []string // lines of stdout, exactly
		wantErr    []string // lines of stderr, exactly
		errContain string
	}{
		{name: "ok", args: []string{"check", good}, code: 0,
			wantOut: []string{good + ": ok", "fleet eu, agent box, broker tcp://b:1883, 1 streams"}},
		{name: "sample", args: []string{"check", sample}, env: map[string]string{"STREAMQC_AGENT": "box"}, code: 0,
			wantOut: []string{sample + ": ok", "fleet default, agent box, broker tcp://127.0.0.1:1883, 0 streams"}},
		{name: "env applied", args: []string{"check", good}, env: map[string]string{"STREAMQC_FLEET": "us"}, code: 0,
			wantOut: []string{good + ": ok", "fleet us, agent box, broker tcp://b:1883, 1 streams"}},
		{name: "every problem", args: []string{"check", bad}, code: 1, wantErr: []string{
			bad + ": nosuch: line 3: unknown key",
			bad + `: metrics_interval: line 5: "soon" is not a duration (like 10s)`,
			bad + ": broker.url: line 4: required",
			bad + `: streams[0].id: line 6: "a b": only letters, digits, '.', '_' and '-' (not first)`,
			bad + ": streams[0].url: line 6: required",
		}},
		{name: "trusted config keys", args: []string{"check", signedOK}, code: 0,
			wantOut: []string{signedOK + ": ok", "fleet eu, agent box, broker tcp://127.0.0.1:1883, 0 streams"}},
		{name: "identity and keys", args: []string{"check", identity}, code: 1, wantErr: []string{
			identity + `: broker.username: line 3: "box2" is not the agent id "box": the broker's ACL grants an agent the topics of its username only (or set broker.identity: none)`,
			identity + ": config.trusted_keys[0]: line 4: firmware: open " + filepath.Join(dir, "none.pub") + ": no such file or directory",
			identity + ": config.trusted_keys[1]: line 4: firmware: " + good + `: not a PEM "PUBLIC KEY"`,
		}},
		{name: "bad env", args: []string{"check", good}, env: map[string]string{"STREAMQC_SPOOL_MAX_BYTES": "lots"}, code: 1,
			wantErr: []string{good + `: STREAMQC_SPOOL_MAX_BYTES: "lots" is not a whole number of bytes`}},
		{name: "not yaml", args: []string{"check", notYAML}, code: 1, errContain: notYAML + ": yaml: line"},
		{name: "missing file", args: []string{"check", filepath.Join(dir, "none.yaml")}, code: 2, errContain: "no such file"},
		{name: "no command", args: nil, code: 2, errContain: "usage: streamqc config check"},
		{name: "unknown command", args: []string{"lint"}, code: 2, errContain: `unknown command "lint"`},
		{name: "two files", args: []string{"check", good, bad}, code: 2, errContain: "one FILE at most"},
		{name: "unknown flag", args: []string{"check", "-x"}, code: 2, errContain: `unknown flag "-x"`},
		{name: "help", args: []string{"check", "-h"}, code: 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			lookup := func(k string) (string, bool) { v, ok := tc.env[k]; return v, ok }
			code := configCmdEnv(context.Background(), tc.args, &out, &errb, lookup)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, &out, &errb)
			}
			if tc.wantOut != nil && out.String() != strings.Join(tc.wantOut, "\n")+"\n" {
				t.Errorf("stdout:\n%s\nwant:\n%s", &out, strings.Join(tc.wantOut, "\n"))
			}
			if tc.wantErr != nil && errb.String() != strings.Join(tc.wantErr, "\n")+"\n" {
				t.Errorf("stderr:\n%s\nwant:\n%s", &errb, strings.Join(tc.wantErr, "\n"))
			}
			if tc.errContain != "" && !strings.Contains(errb.String(), tc.errContain) {
				t.Errorf("stderr %q, want %q", &errb, tc.errContain)
			}
			if code == 0 && errb.Len() != 0 {
				t.Errorf("stderr on success: %s", &errb)
			}
		})
	}
}

// configCmd (the entry point main calls) reads the process environment.
func TestConfigCmdDefaultFile(t *testing.T) {
	var out, errb bytes.Buffer
	code := configCmd(context.Background(), []string{"check"}, &out, &errb)
	if _, err := os.Stat(configCheckDefault); err != nil {
		if code != 2 || !strings.Contains(errb.String(), configCheckDefault) {
			t.Errorf("no %s: exit %d, stderr %q", configCheckDefault, code, &errb)
		}
	}
}

// TestConfigCheckRefusesWhatRunRefuses: config check and run share
// agent.Preflight, so each problem here is reported by check (with its
// field path, all of them at once) and refused by run.
func TestConfigCheckRefusesWhatRunRefuses(t *testing.T) {
	dir := t.TempDir()
	media := filepath.Join(dir, "media")
	if err := os.Mkdir(media, 0o755); err != nil {
		t.Fatal(err)
	}
	head := "fleet: eu\nagent: box\nstate_dir: " + filepath.Join(dir, "state") + "\nmedia_dir: " + media + "\n"
	tests := []struct {
		name, body string
		want       []string
		runRefuses bool // run refuses to start (the rest: it starts without those streams)
	}{
		{"ftp broker", "broker: {url: 'ftp://b:21'}\n", []string{`broker.url: broker "ftp://b:21": unsupported scheme "ftp"`}, true},
		{"broker without scheme", "broker: {url: 'b:1883'}\n", []string{"broker.url: broker \"b:1883\""}, true},
		{"missing CA file", "broker: {url: 'ssl://b:8883', ca_file: '" + filepath.Join(dir, "ca.pem") + "'}\n", []string{"broker: CA file: open "}, true},
		{"missing password file", "broker: {url: 'tcp://b:1883', password_file: '" + filepath.Join(dir, "pw") + "'}\n", []string{"broker.password_file: open "}, true},
		{"local streams", "broker: {url: 'tcp://b:1883'}\nstreams:\n  - {id: a, url: 'concat:/etc/passwd|/etc/group'}\n  - {id: b, url: '/etc/passwd'}\n  - {id: c, url: 'http://127.0.0.1/x.m3u8'}\n",
			[]string{`streams[0].url: scheme "concat" is not allowed`, "streams[1].url: file input /etc/passwd is outside media_dir",
				`streams[2].url: host "127.0.0.1" is this machine`}, false},
		{"unknown detector field hides nothing", "broker: {url: 'tcp://b:1883'}\ndetectors:\n  black: {nosuch: 1}\n  freeze: {noise: 9}\n",
			[]string{`unknown field "nosuch"`, "freeze.noise: must be in [0, 1)"}, true},
		{"missing media_dir", "broker: {url: 'tcp://b:1883'}\nmedia_dir: " + filepath.Join(dir, "nope") + "\n", []string{"media_dir: stat "}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".yaml")
			body := head + tc.body
			if strings.Contains(tc.body, "media_dir:") {
				body = strings.Replace(body, "media_dir: "+media+"\n", "", 1)
			}
			if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
			var out, errb bytes.Buffer
			if code := configCmdEnv(context.Background(), []string{"check", p}, &out, &errb, func(string) (string, bool) { return "", false }); code != 1 {
				t.Fatalf("config check: exit %d, want 1\n%s%s", code, out.String(), errb.String())
			}
			// Every problem names its line; the messages are checked without it.
			for _, l := range strings.Split(strings.TrimSpace(errb.String()), "\n") {
				if !regexp.MustCompile(`: line [0-9]+: `).MatchString(l) {
					t.Errorf("a problem without its line: %s", l)
				}
			}
			text := regexp.MustCompile(`: line [0-9]+: `).ReplaceAllString(errb.String(), ": ")
			for _, w := range tc.want {
				if !strings.Contains(text, w) {
					t.Errorf("config check lacks %q:\n%s", w, errb.String())
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			var runErr bytes.Buffer
			code := runCmd(ctx, []string{"--config", p}, &runErr)
			if tc.runRefuses && code == 0 {
				t.Errorf("run started with what config check refuses:\n%s", runErr.String())
			}
		})
	}
}
