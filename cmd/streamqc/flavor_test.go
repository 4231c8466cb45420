package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/internal/cudaprobe"
)

func TestHandover(t *testing.T) {
	gpu := func(string) (cudaprobe.Result, error) { return cudaprobe.Result{Devices: 1}, nil }
	noGPU := func(string) (cudaprobe.Result, error) {
		return cudaprobe.Result{}, errors.New("no usable NVIDIA GPU: cuInit failed with CUDA error 100")
	}
	installed := func(p string) bool { return p == "/usr/bin/streamqc-cuda" }
	none := func(string) bool { return false }
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	tests := []struct {
		name        string
		args        []string
		getenv      func(string) string
		exists      func(string) bool
		probe       func(string) (cudaprobe.Result, error)
		target, why string
	}{
		{"run, GPU answers", []string{"run"}, env(), installed, gpu, "/usr/bin/streamqc-cuda", ""},
		{"analyze, GPU answers", []string{"analyze", "x.ts"}, env(), installed, gpu, "/usr/bin/streamqc-cuda", ""},
		{"run, driver gone", []string{"run"}, env(), installed, noGPU, "", "CUDA error 100: detectors run on the CPU"},
		{"no cuda flavour installed", []string{"run"}, env(), none, gpu, "", ""},
		{"other commands stay", []string{"events"}, env(), installed, gpu, "", ""},
		{"never twice", []string{"run"}, env(envHandover, "1"), installed, gpu, "", ""},
		{"turned off", []string{"run"}, env(envNoCUDA, "1"), installed, gpu, "", "STREAMQC_NO_CUDA is set"},
		{"explicit binary", []string{"run"}, env(envCUDABinary, "/opt/x/streamqc-cuda"),
			func(p string) bool { return p == "/opt/x/streamqc-cuda" }, gpu, "/opt/x/streamqc-cuda", ""},
		{"no arguments", nil, env(), installed, gpu, "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			target, why := handover(tc.args, tc.getenv, "/usr/bin/streamqc", tc.exists, tc.probe)
			if target != tc.target || !strings.Contains(why, tc.why) || (tc.why == "" && why != "") {
				t.Errorf("handover = %q, %q; want %q, %q", target, why, tc.target, tc.why)
			}
		})
	}
}

// TestCUDAFallbackHere runs the real binary on this machine, which has no
// NVIDIA driver, with a stand-in streamqc-cuda beside it that would leave a
// mark: the binary must go on itself (and say why), never exec it; with a
// stand-in driver that reports a GPU it must hand over.
func TestCUDAFallbackHere(t *testing.T) {
	if _, err := cudaprobe.Probe(""); err == nil {
		t.Skip("SKIP: this host has a usable NVIDIA GPU")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "streamqc")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	mark := filepath.Join(dir, "cuda-ran")
	fake := "#!/bin/sh\necho \"$STREAMQC_CUDA_HANDOVER $*\" > " + mark + "\n"
	if err := os.WriteFile(filepath.Join(dir, "streamqc-cuda"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "analyze", "--hwaccel", "cuda", filepath.Join(dir, "missing.ts")).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
		t.Fatalf("analyze of a missing file: %v (want exit 1)\n%s", err, out)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("streamqc-cuda ran on a host without a GPU")
	}
	if !strings.Contains(string(out), "streamqc-cuda is installed, but no usable NVIDIA GPU") {
		t.Errorf("no reason given for measuring on the CPU:\n%s", out)
	}

	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("SKIP handover half: no gcc for a stand-in driver")
	}
	src := filepath.Join(dir, "cuda.c")
	os.WriteFile(src, []byte("int cuInit(unsigned f){return 0;}\nint cuDeviceGetCount(int *n){*n=1;return 0;}\n"), 0o644)
	lib := filepath.Join(dir, "libcuda.so.1")
	if o, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, o)
	}
	cmd := exec.Command(bin, "analyze", "x.ts")
	cmd.Env = append(os.Environ(), envCUDALib+"="+lib)
	if o, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("handover: %v\n%s", err, o)
	}
	got, err := os.ReadFile(mark)
	if err != nil || strings.TrimSpace(string(got)) != "1 analyze x.ts" {
		t.Fatalf("streamqc-cuda got %q (%v), want it run with the handover mark and the same arguments", got, err)
	}
}
