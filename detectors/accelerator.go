package detectors

import (
	"strconv"
	"strings"
)

// Accelerator gives pipelines that decode on a GPU a backend that measures
// their frames there (the cuda build's gpu package). Builds without it pass
// nil, and every pipeline measures on the CPU.
type Accelerator interface {
	// Backend returns a backend for a pipeline decoding on GPU ordinal, and
	// what releases it when the pipeline ends.
	Backend(ordinal int, cfg Config) (VideoBackend, func(), error)
}

// AcceleratedDevice says whether a pipeline asked to decode with hwaccel on
// hwDevice may keep its frames on a GPU, and which one: cuda or auto
// (NVDEC first), the device a CUDA ordinal ("" is 0).
func AcceleratedDevice(hwaccel, hwDevice string) (ordinal int, ok bool) {
	if hwaccel != "cuda" && hwaccel != "auto" {
		return 0, false
	}
	if hwDevice == "" {
		return 0, true
	}
	n, err := strconv.Atoi(strings.TrimSpace(hwDevice))
	if err != nil || n < 0 {
		return 0, false
	}
	return n, true
}
