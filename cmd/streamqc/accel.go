//go:build !cuda

package main

import "github.com/streamqc/streamqc/detectors"

// accelerator: the default build measures every frame on the CPU (NVDEC
// frames, if any, are copied to host memory).
func accelerator() detectors.Accelerator { return nil }
