package main

import (
	"fmt"
	"io"
	"math"

	"github.com/streamqc/streamqc/gpu/nvml"
)

// gpuCmd is `streamqc gpu info`: the NVIDIA GPUs NVML sees. Without a usable
// driver it prints one line saying why and exits 1.
func gpuCmd(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "info" {
		return groupUsage(args, "usage: streamqc gpu info [--nvml LIBRARY]\n", stdout, stderr)
	}
	fs := newFlags("gpu info", "[--nvml LIBRARY]", `Prints the NVIDIA GPUs NVML sees: driver, compute capability, memory, NVDEC
engines and their load. Without a usable driver: one line saying why, exit 1.`, stdout, stderr)
	lib := fs.String("nvml", "", "NVML library to load (default: libnvidia-ml.so.1 from the loader's path)")
	if code, done := fs.parse(args[1:]); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	n, err := nvml.Open(*lib)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc gpu info: %v\n", err)
		return 1
	}
	defer n.Close()
	s, err := n.Snapshot()
	if err != nil {
		fmt.Fprintf(stderr, "streamqc gpu info: %v\n", err)
		return 1
	}
	printGPUs(stdout, s)
	return 0
}

func printGPUs(w io.Writer, s nvml.Snapshot) {
	fmt.Fprintf(w, "driver %s, %d GPU(s)\n", orDash(s.Driver), len(s.Devices))
	const gib = 1 << 30
	for _, d := range s.Devices {
		engines, load := "?", "?"
		if d.Decoders > 0 {
			engines = fmt.Sprint(d.Decoders)
		}
		if !math.IsNaN(d.DecoderUtil) {
			load = fmt.Sprintf("%.0f%%", d.DecoderUtil)
		}
		fmt.Fprintf(w, "gpu %d: %s, compute %d.%d, memory %.1f/%.1f GiB used, NVDEC engines %s, decoder load %s, %s\n",
			d.Index, orDash(d.Name), d.ComputeMajor, d.ComputeMinor,
			float64(d.MemoryUsed)/gib, float64(d.MemoryTotal)/gib, engines, load, orDash(d.UUID))
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
