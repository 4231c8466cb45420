package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAnalyzeExitCodes(t *testing.T) {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg CLI not on PATH (make deps installs it)")
	}
	dir := t.TempDir()
	clip := filepath.Join(dir, "audio only.wav")
	if o, err := exec.Command("ffmpeg", "-hide_banner", "-loglevel", "error", "-f", "lavfi", "-i", "sine=r=48000:d=3", clip).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, o)
	}
	garbage := filepath.Join(dir, "garbage.mp4")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a video "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		args       []string
		code       int
		stdout     string
		stderr     string
		jsonOutput bool
	}{
		{name: "no input", args: nil, code: 2, stderr: "missing INPUT"},
		{name: "help", args: []string{"-h"}, code: 0, stdout: "usage: streamqc analyze"},
		{name: "missing file", args: []string{filepath.Join(dir, "nope.ts")}, code: 1, stderr: "No such file"},
		{name: "garbage", args: []string{garbage}, code: 1, stderr: "streamqc analyze: input: open"},
		{name: "bad format", args: []string{"--format", "xml", clip}, code: 2, stderr: "want text or json"},
		{name: "bad setting", args: []string{"--set", "black.picture_threshold=9", clip}, code: 2, stderr: "black.picture_threshold"},
		{name: "two inputs", args: []string{clip, clip}, code: 2, stderr: "one argument only"},
		{name: "audio only is analyzed", args: []string{clip, "--format", "json"}, code: 0, stdout: `"reason":"no video track"`, jsonOutput: true},
		{name: "text summary", args: []string{clip}, code: 0, stdout: "signal_loss       1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := analyzeCmd(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			if tc.stdout != "" && !strings.Contains(out.String(), tc.stdout) {
				t.Errorf("stdout lacks %q:\n%s", tc.stdout, out.String())
			}
			if tc.stderr != "" && !strings.Contains(errb.String(), tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errb.String())
			}
			if code == 1 && strings.Count(strings.TrimSpace(errb.String()), "\n") != 0 {
				t.Errorf("the reason should be one line:\n%s", errb.String())
			}
			if tc.jsonOutput {
				lines := strings.Split(strings.TrimSpace(out.String()), "\n")
				for _, l := range lines {
					var m map[string]any
					if err := json.Unmarshal([]byte(l), &m); err != nil {
						t.Errorf("not JSON: %q", l)
					}
				}
				if !strings.Contains(lines[len(lines)-1], `"type":"summary"`) {
					t.Errorf("last line is not the summary: %s", lines[len(lines)-1])
				}
			}
		})
	}
}

func TestRunCommands(t *testing.T) {
	if code := run(context.Background(), []string{"bogus"}); code != 2 {
		t.Errorf("unknown command: exit %d, want 2", code)
	}
	if code := run(context.Background(), nil); code != 2 {
		t.Errorf("no command: exit %d, want 2", code)
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cases := []struct {
		name, file string
		code       int
		stderr     string
	}{
		{"missing", filepath.Join(dir, "nope.yaml"), 2, "no such file"},
		{"garbage", write("garbage.yaml", "\x00\x01{{{"), 2, "config"},
		{"unknown key", write("unknown.yaml", "fleet: a\nbrokr: {url: tcp://x:1}\n"), 2, "brokr"},
		{"missing CA", write("ca.yaml", "state_dir: "+dir+"/state\nbroker: {url: 'ssl://127.0.0.1:1', ca_file: /nonexistent/ca.pem}\n"), 1, "ca.pem"},
		{"bad broker URL", write("url.yaml", "state_dir: "+dir+"/state\nbroker: {url: 'gopher://x'}\n"), 1, "gopher"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			code := runCmd(ctx, []string{"--config", c.file}, &stderr)
			if code != c.code || !strings.Contains(strings.ToLower(stderr.String()), strings.ToLower(c.stderr)) {
				t.Errorf("exit %d, stderr %q; want %d and %q", code, stderr.String(), c.code, c.stderr)
			}
		})
	}
}

func TestServiceCommand(t *testing.T) {
	var out, errb bytes.Buffer
	if code := serviceCmd(context.Background(), []string{"unit", "--config", "/etc/streamqc/agent.yaml"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), "Type=notify") || !strings.Contains(out.String(), "ExecStart=/usr/bin/streamqc run") {
		t.Fatalf("service unit: %d\n%s%s", code, out.String(), errb.String())
	}
	for _, args := range [][]string{nil, {"bogus"}, {"unit", "--config", "/etc/my config.yaml"}} {
		errb.Reset()
		if code := serviceCmd(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("service %v: exit %d, want 2 (%s)", args, code, errb.String())
		}
	}
}
