//go:build cuda

package main

import (
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/gpu"
)

// accelerator: the cuda build measures NVDEC frames on their GPU, in place.
// Its GPUs stay open for the life of the process.
func accelerator() detectors.Accelerator { return gpu.NewAccelerator() }
