// Package deb holds the .deb packaging scripts; this test runs version.sh.
package deb

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestVersionSh runs version.sh, the .deb's version, on every form of
// `git describe` output, in a throwaway repository: commit hashes with
// letters and of digits only (0859122 once read as a version, and the
// install test's arithmetic read its leading 0 as octal), tags, pre-releases,
// dirty trees and strings that are no version.
func TestVersionSh(t *testing.T) {
	for _, tool := range []string{"bash", "git"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed: version.sh not run", tool)
		}
	}
	script, err := filepath.Abs("version.sh")
	if err != nil {
		t.Fatal(err)
	}
	repo := t.TempDir()
	env := append(os.Environ(), "GIT_CONFIG_GLOBAL=/dev/null", "GIT_CONFIG_NOSYSTEM=1",
		"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@t", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@t",
		"GIT_COMMITTER_DATE=2026-03-04T05:06:07Z", "GIT_AUTHOR_DATE=2026-03-04T05:06:07Z")
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir, cmd.Env = repo, env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q")
	// Commit until one abbreviated hash is digits only (about 1 in 25),
	// keeping the first one that has a letter.
	digits := regexp.MustCompile(`^[0-9]{7}$`)
	var lettered, numeric string
	for i := 0; i < 2000 && (lettered == "" || numeric == ""); i++ {
		git("commit", "-q", "--allow-empty", "-m", "c"+strings.Repeat(".", i))
		h := git("rev-parse", "--short=7", "HEAD")
		switch {
		case digits.MatchString(h) && numeric == "":
			numeric = h
		case !digits.MatchString(h) && lettered == "":
			lettered = h
		}
	}
	if numeric == "" || lettered == "" {
		t.Fatalf("no digits-only hash in 2000 commits (lettered %q)", lettered)
	}
	today := time.Now().UTC().Format("20060102")
	tests := []struct {
		in, want string // want "" : an error
	}{
		{"v1.2.3", "1.2.3"},
		{"1.2.3", "1.2.3"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-5-gabc1234", "1.2.3+git5.abc1234"},
		{"v1.2.3-rc.1-5-gabc1234", "1.2.3~rc.1+git5.abc1234"},
		{"v1.2.3-dirty", "1.2.3+dirty"},
		{"v1.2.3-5-gabc1234-dirty", "1.2.3+git5.abc1234.dirty"},
		{lettered, "0.0.0~git20260304." + lettered},
		{numeric, "0.0.0~git20260304." + numeric},
		{numeric + "-dirty", "0.0.0~git20260304." + numeric + "+dirty"},
		// A hash-shaped string that is not a commit here: today's date.
		{"abcdef0", "0.0.0~git" + today + ".abcdef0"},
		{"dev", ""},
		{"", ""}, // no argument: git describe, below
		{"v1.2.3;rm -rf /", ""},
		{"v1.2.3-", ""},
		{"1.2.3-beta_1", ""},
	}
	for _, tc := range tests {
		if tc.in == "" {
			continue
		}
		t.Run(tc.in, func(t *testing.T) {
			cmd := exec.Command("bash", script, tc.in)
			cmd.Dir, cmd.Env = repo, env
			out, err := cmd.Output()
			got := strings.TrimSpace(string(out))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("version.sh %q = %q, want an error", tc.in, got)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("version.sh %q = %q (%v), want %q", tc.in, got, err, tc.want)
			}
		})
	}
	// No argument, no $VERSION: git describe of HEAD. A tag named like a
	// hash must stay a tag.
	t.Run("git describe", func(t *testing.T) {
		git("tag", "v2.0.0")
		cmd := exec.Command("bash", script)
		cmd.Dir = repo
		cmd.Env = append(env, "VERSION=")
		out, err := cmd.Output()
		if got := strings.TrimSpace(string(out)); err != nil || got != "2.0.0" {
			t.Fatalf("version.sh (HEAD tagged v2.0.0) = %q (%v), want 2.0.0", got, err)
		}
	})
}
