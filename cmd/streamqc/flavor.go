package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/streamqc/streamqc/internal/cudaprobe"
)

// The cuda flavour installs two binaries: this one (CPU detectors, FFmpeg's
// NVDEC through dlopen) as /usr/bin/streamqc, and streamqc-cuda (GPU
// detectors; it links libcuda and cannot start without a working driver)
// beside it or in /usr/lib/streamqc. `run` and `analyze` hand over to
// streamqc-cuda only when the driver answers with a device: a box whose
// GPU or driver is gone keeps monitoring on the CPU and says why, instead of
// crash-looping under systemd.

const (
	envHandover   = "STREAMQC_CUDA_HANDOVER" // set in the cuda binary's environment: never hand over twice
	envCUDABinary = "STREAMQC_CUDA_BINARY"   // where streamqc-cuda is, overriding the places below
	envCUDALib    = "STREAMQC_CUDA_LIB"      // the driver library to probe (default libcuda.so.1)
	envNoCUDA     = "STREAMQC_NO_CUDA"       // set: never hand over (measure on the CPU)
)

// handover returns the cuda binary this invocation should run instead of
// itself, or "" and, when a cuda binary exists but is not used, why.
func handover(args []string, getenv func(string) string, exe string, exists func(string) bool,
	probe func(lib string) (cudaprobe.Result, error)) (target, why string) {
	if cudaBuild || len(args) == 0 || !slices.Contains([]string{"run", "analyze"}, args[0]) ||
		getenv(envHandover) != "" {
		return "", ""
	}
	candidates := []string{getenv(envCUDABinary)}
	if getenv(envCUDABinary) == "" {
		candidates = []string{filepath.Join(filepath.Dir(exe), "streamqc-cuda"), "/usr/lib/streamqc/streamqc-cuda"}
	}
	for _, c := range candidates {
		if c == "" || !exists(c) {
			continue
		}
		if getenv(envNoCUDA) != "" {
			return "", fmt.Sprintf("%s is installed, and %s is set: detectors run on the CPU", c, envNoCUDA)
		}
		if _, err := probe(getenv(envCUDALib)); err != nil {
			return "", fmt.Sprintf("%s is installed, but %v: detectors run on the CPU", c, err)
		}
		return c, ""
	}
	return "", ""
}

func isExecutable(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0
}
