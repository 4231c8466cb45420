package main

import (
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	builtOnce sync.Once
	builtBin  string
	builtErr  error
)

// binary builds this command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	builtOnce.Do(func() {
		dir, err := filepath.Abs(filepath.Join("..", "..", "build", "test-bin"))
		if err != nil {
			builtErr = err
			return
		}
		builtBin = filepath.Join(dir, "streamqc")
		if out, err := exec.Command("go", "build", "-o", builtBin, ".").CombinedOutput(); err != nil {
			builtErr = &buildError{err, string(out)}
		}
	})
	if builtErr != nil {
		t.Fatal(builtErr)
	}
	return builtBin
}

type buildError struct {
	err error
	out string
}

func (e *buildError) Error() string { return "go build: " + e.err.Error() + "\n" + e.out }

// TestHelpAndUsageErrors: every command's --help prints "usage: streamqc
// ..." on stdout with exit 0 and nothing on stderr; a flag it does not know
// is exit 2 with the usage line on stderr.
func TestHelpAndUsageErrors(t *testing.T) {
	bin := binary(t)
	commands := [][]string{
		{}, {"analyze"}, {"run"}, {"events"}, {"dashboard"}, {"fleet"}, {"fleet", "agents"}, {"fleet", "config", "get"},
		{"fleet", "config", "push"}, {"service"}, {"service", "status"}, {"service", "unit"}, {"config"},
		{"config", "check"}, {"firmware"}, {"firmware", "keygen"}, {"firmware", "sign"}, {"firmware", "verify"},
		{"firmware", "push"}, {"version"}, {"gpu"}, {"gpu", "info"},
	}
	for _, c := range commands {
		name := strings.Join(c, " ")
		t.Run("help "+name, func(t *testing.T) {
			cmd := exec.Command(bin, append(c, "--help")...)
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			if err := cmd.Run(); err != nil {
				t.Fatalf("exit %v\nstderr: %s", err, errb.String())
			}
			if !strings.HasPrefix(out.String(), "usage: streamqc") || errb.Len() != 0 {
				t.Errorf("stdout %.80q, stderr %.80q", out.String(), errb.String())
			}
		})
		if len(c) == 0 || c[0] == "fleet" && len(c) == 1 || c[0] == "firmware" && len(c) == 1 ||
			c[0] == "service" && len(c) == 1 || c[0] == "gpu" && len(c) == 1 || c[0] == "config" {
			continue // groups: a flag is an unknown subcommand, tested below
		}
		t.Run("bad flag "+name, func(t *testing.T) {
			cmd := exec.Command(bin, append(c, "--no-such-flag")...)
			var errb strings.Builder
			cmd.Stderr = &errb
			err := cmd.Run()
			ee, ok := err.(*exec.ExitError)
			if !ok || ee.ExitCode() != 2 || !strings.Contains(errb.String(), "usage: streamqc "+name) {
				t.Errorf("exit %v, stderr %q", err, errb.String())
			}
		})
	}
	for _, c := range [][]string{{"nonsense"}, {"fleet", "nonsense"}, {"firmware", "nonsense"}, {"service", "nonsense"},
		{"gpu", "nonsense"}, {"config", "nonsense"}, {"analyze", "--format", "xml", "x.ts"}, {"analyze", "a.ts", "b.ts"}} {
		t.Run("usage error "+strings.Join(c, " "), func(t *testing.T) {
			err := exec.Command(bin, c...).Run()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 2 {
				t.Errorf("exit %v, want 2", err)
			}
		})
	}
}

// TestServiceStatusNotInstalled: without the service installed (no unit, no
// service manager answering), status says so with exit 3, as documented.
func TestServiceStatusNotInstalled(t *testing.T) {
	for _, p := range []string{"/etc/systemd/system/streamqc.service", "/lib/systemd/system/streamqc.service"} {
		if _, err := exec.Command("test", "-e", p).CombinedOutput(); err == nil {
			t.Skipf("SKIP: %s exists here", p)
		}
	}
	out, err := exec.Command(binary(t), "service", "status").Output()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != 3 || strings.TrimSpace(string(out)) != "not installed" {
		t.Errorf("service status: %q, %v; want \"not installed\", exit 3", out, err)
	}
}
