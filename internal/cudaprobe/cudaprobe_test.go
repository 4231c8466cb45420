package cudaprobe

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fakeDriver builds a libcuda stand-in whose cuInit returns initCode and
// which reports devices devices.
func fakeDriver(t *testing.T, initCode, devices int) string {
	t.Helper()
	cc, err := exec.LookPath("gcc")
	if err != nil {
		t.Skip("SKIP fake driver: no gcc")
	}
	dir := t.TempDir()
	src := filepath.Join(dir, "cuda.c")
	code := "int cuInit(unsigned f) { return " + strconv.Itoa(initCode) + "; }\n" +
		"int cuDeviceGetCount(int *n) { *n = " + strconv.Itoa(devices) + "; return 0; }\n" +
		"int cuDriverGetVersion(int *v) { *v = 12080; return 0; }\n"
	if err := os.WriteFile(src, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	lib := filepath.Join(dir, "libcuda.so.1")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, src).CombinedOutput(); err != nil {
		t.Fatalf("gcc: %v\n%s", err, out)
	}
	return lib
}

func TestProbe(t *testing.T) {
	tests := []struct {
		name    string
		lib     func(t *testing.T) string
		devices int
		err     string
	}{
		{"this host (no NVIDIA driver here)", func(*testing.T) string { return "" }, 0, "libcuda.so.1"},
		{"a library that is no driver", func(*testing.T) string { return "libc.so.6" }, 0, "lacks cuInit"},
		{"driver without GPU (cuInit: CUDA_ERROR_NO_DEVICE)", func(t *testing.T) string { return fakeDriver(t, 100, 0) }, 0, "CUDA error 100"},
		{"driver that sees no device", func(t *testing.T) string { return fakeDriver(t, 0, 0) }, 0, "sees no device"},
		{"two GPUs", func(t *testing.T) string { return fakeDriver(t, 0, 2) }, 2, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lib := tc.lib(t)
			if lib == "" {
				if _, err := Probe(""); err == nil {
					t.Skip("SKIP: this host has a usable NVIDIA GPU")
				}
			}
			r, err := Probe(lib)
			if tc.err == "" {
				if err != nil || r.Devices != tc.devices || r.DriverVersion != 12080 {
					t.Fatalf("Probe = %+v, %v", r, err)
				}
				return
			}
			if !errors.Is(err, ErrNoGPU) || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Probe error %v, want ErrNoGPU mentioning %q", err, tc.err)
			}
		})
	}
}
