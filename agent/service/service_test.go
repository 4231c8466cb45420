package service

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// section returns the lines of one [section] of a unit.
func section(unit, name string) []string {
	var out []string
	in := false
	for _, l := range strings.Split(unit, "\n") {
		if strings.HasPrefix(l, "[") {
			in = l == "["+name+"]"
			continue
		}
		if in && l != "" {
			out = append(out, l)
		}
	}
	return out
}

func TestUnit(t *testing.T) {
	unit, err := Unit(Options{Executable: "/usr/bin/streamqc", Watchdog: 45 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	has := func(sec, line string) bool {
		for _, l := range section(unit, sec) {
			if l == line {
				return true
			}
		}
		return false
	}
	for _, c := range []struct{ sec, line string }{
		{"Unit", "StartLimitIntervalSec=300"},
		{"Unit", "StartLimitBurst=5"},
		{"Service", "Type=notify"},
		{"Service", "WatchdogSec=45s"},
		{"Service", "Restart=on-failure"},
		{"Service", "RestartSec=2s"},
		{"Service", "User=streamqc"},
		{"Service", "ExecStart=/usr/bin/streamqc run --config /etc/streamqc/agent.yaml --log-format json"},
		{"Service", "NoNewPrivileges=yes"},
		{"Service", "ProtectSystem=strict"},
		{"Service", "ProtectHome=yes"},
		{"Service", "PrivateTmp=yes"},
		{"Service", "ReadWritePaths=/var/lib/streamqc"},
		{"Service", "CapabilityBoundingSet="},
		{"Service", "RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX AF_NETLINK"},
		{"Service", "DevicePolicy=closed"},
		{"Service", "DeviceAllow=char-drm rw"},
		{"Service", "DeviceAllow=char-nvidia-frontend rw"},
		{"Install", "WantedBy=multi-user.target"},
	} {
		if !has(c.sec, c.line) {
			t.Errorf("[%s] lacks %q", c.sec, c.line)
		}
	}
	for _, l := range section(unit, "Service") {
		if strings.HasPrefix(l, "StartLimit") || l == "RestartSec=120" {
			t.Errorf("[Service] has %q (systemd ignores StartLimit* there; 120 s is the library's default we replace)", l)
		}
	}
	for _, bad := range []Options{{Executable: "/opt/my streamqc"}, {Config: "/etc/x;rm -rf /"}, {User: "a b"}, {Config: "$HOME/x"}} {
		if _, err := Unit(bad); err == nil {
			t.Errorf("unit accepted %+v", bad)
		}
	}
}

// TestUnitVerifies runs systemd's own checker on the unit.
func TestUnitVerifies(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		if os.Getenv("STREAMQC_REQUIRE_SYSTEMD") != "" {
			t.Fatal("systemd-analyze not installed (make deps installs the systemd package)")
		}
		t.Skip("systemd-analyze not installed")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "streamqc")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	unit, err := Unit(Options{Executable: exe})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "streamqc.service")
	if err := os.WriteFile(path, []byte(unit), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	// verify exits 0 on mere warnings: any output is a problem too.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s\n%s", err, out, unit)
	}
	// The checker is not a rubber stamp: a wrong value is reported.
	broken := strings.Replace(unit, "Restart=on-failure", "Restart=sometimes", 1)
	if err := os.WriteFile(path, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, _ := exec.Command(analyze, "verify", path).CombinedOutput(); !strings.Contains(string(out), "sometimes") {
		t.Fatalf("systemd-analyze verify did not notice a broken unit: %s", out)
	}
}

func TestConfigOptions(t *testing.T) {
	c, err := Options{Executable: "/usr/bin/streamqc"}.config()
	if err != nil {
		t.Fatal(err)
	}
	if c.Name != Name || strings.Join(c.Arguments, " ") != "run --config "+DefaultConfigPath() {
		t.Errorf("config %+v", c)
	}
	if c.Option["OnFailure"] != "restart" || c.Option["OnFailureDelayDuration"] != "5s" {
		t.Errorf("windows recovery actions not set: %v", c.Option)
	}
}
