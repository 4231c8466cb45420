package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFirmwareCLI runs keygen, sign and verify with their exit codes.
func TestFirmwareCLI(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	run := func(args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := firmwareCmd(ctx, args, &out, &errb)
		return code, out.String(), errb.String()
	}
	keys, other := filepath.Join(dir, "keys"), filepath.Join(dir, "other")
	os.Mkdir(keys, 0o700)
	os.Mkdir(other, 0o700)
	if code, _, e := run("keygen", "--out", keys); code != 0 {
		t.Fatalf("keygen: %d %s", code, e)
	}
	if code, _, _ := run("keygen", "--out", keys); code != 1 {
		t.Fatalf("keygen over existing keys: %d", code)
	}
	if code, _, e := run("keygen", "--out", other); code != 0 {
		t.Fatalf("keygen: %d %s", code, e)
	}
	key, pub := filepath.Join(keys, "streamqc-firmware.key"), filepath.Join(keys, "streamqc-firmware.pub")
	otherPub := filepath.Join(other, "streamqc-firmware.pub")

	bin := filepath.Join(dir, "build", "streamqc")
	os.MkdirAll(filepath.Dir(bin), 0o755)
	if err := os.WriteFile(bin, []byte("#!/bin/sh\necho hi\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "streamqc-1.2.3.bundle")
	if code, _, e := run("sign", "--key", key, "--version", "1.2.3", "--os", "linux", "--arch", "amd64", "--flavor", "cuda", "--out", bundle, bin); code != 0 {
		t.Fatalf("sign: %d %s", code, e)
	}
	target := []string{"--os", "linux", "--arch", "amd64", "--flavor", "cuda"}
	verify := func(extra ...string) (int, string, string) {
		return run(append(append([]string{"verify"}, target...), extra...)...)
	}
	tests := []struct {
		name string
		args []string
		code int
		out  string // in stdout (code 0) or stderr
	}{
		{"good", []string{"--trusted", pub, bundle}, 0, "ok "},
		{"two keys", []string{"--trusted", otherPub + "," + pub, "--current-version", "1.2.2", bundle}, 0, "streamqc 1.2.3 linux/amd64 cuda"},
		{"unknown key", []string{"--trusted", otherPub, bundle}, 1, "unknown key"},
		{"equal version", []string{"--trusted", pub, "--current-version", "1.2.3", bundle}, 1, "already installed"},
		{"older version allowed", []string{"--trusted", pub, "--current-version", "2.0.0", "--allow-downgrade", bundle}, 0, "ok "},
		{"older version", []string{"--trusted", pub, "--current-version", "2.0.0", bundle}, 1, "older"},
		{"wrong flavor", []string{"--trusted", pub, "--flavor", "cpu", bundle}, 1, "another target"},
		{"limit", []string{"--trusted", pub, "--limit", "1000", bundle}, 1, "larger than the limit"},
		{"missing bundle", []string{"--trusted", pub, filepath.Join(dir, "nope")}, 1, "nope"},
		{"no trusted", []string{bundle}, 2, "usage"},
		{"two bundles", []string{"--trusted", pub, bundle, bundle}, 2, "usage"},
		{"bad flag", []string{"--trusted", pub, "--bogus", bundle}, 2, "bogus"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := verify(tc.args...)
			text := errOut
			if tc.code == 0 {
				text = out
			}
			if code != tc.code || !strings.Contains(text, tc.out) {
				t.Fatalf("exit %d (want %d)\nstdout: %s\nstderr: %s", code, tc.code, out, errOut)
			}
		})
	}

	// A tampered bundle is refused.
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte("echo hi"))
	data[i] = 'E'
	bad := filepath.Join(dir, "bad.bundle")
	os.WriteFile(bad, data, 0o644)
	if code, _, e := verify("--trusted", pub, bad); code != 1 || !strings.Contains(e, "corrupt") {
		t.Fatalf("tampered: %d %s", code, e)
	}

	for _, args := range [][]string{
		{},
		{"push"},
		{"keygen"},
		{"sign", "--key", key, "--out", bundle, bin},                                          // no version
		{"sign", "--key", key, "--version", "1.2.3", bin},                                     // no out
		{"sign", "--key", key, "--version", "1.2.3", "--out", bundle},                         // no files
		{"sign", "--key", key, "--version", "1.2.3", "--out", bundle, bin, "x/" + "streamqc"}, // same base name
	} {
		if code, _, _ := run(args...); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if code, _, _ := run("sign", "--key", key, "--version", "1.2", "--out", filepath.Join(dir, "x.bundle"), bin); code != 1 {
		t.Errorf("bad version: exit %d", code)
	}
	if names, _ := filepath.Glob(filepath.Join(dir, "*tmp*")); len(names) != 0 {
		t.Errorf("sign left %v", names)
	}
}
