package main

import (
	"bytes"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/gpu/nvml"
)

func TestGPUInfoWithoutDriver(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"no subcommand", nil, 2, "usage: streamqc gpu info"},
		{"unknown subcommand", []string{"list"}, 2, "usage: streamqc gpu info"},
		{"bad flag", []string{"info", "--nope"}, 2, "flag provided but not defined"},
		{"no driver", []string{"info", "--nvml", missing}, 1, "streamqc gpu info: no NVIDIA driver: " + missing + ": cannot open shared object file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			if code := gpuCmd(tc.args, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tc.code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.stderr) || out.Len() != 0 {
				t.Errorf("stdout %q stderr %q, want stderr with %q", out.String(), errb.String(), tc.stderr)
			}
			if tc.code == 1 && strings.Count(errb.String(), "\n") != 1 {
				t.Errorf("the reason should be one line: %q", errb.String())
			}
		})
	}
}

func TestPrintGPUs(t *testing.T) {
	var b bytes.Buffer
	printGPUs(&b, nvml.Snapshot{Driver: "580.65", Devices: []nvml.Device{
		{Index: 0, Name: "NVIDIA H200", UUID: "GPU-a", ComputeMajor: 9, MemoryTotal: 140 << 30, MemoryUsed: 3 << 29, Decoders: 7, DecoderUtil: 42},
		{Index: 1, DecoderUtil: math.NaN()},
	}})
	want := "driver 580.65, 2 GPU(s)\n" +
		"gpu 0: NVIDIA H200, compute 9.0, memory 1.5/140.0 GiB used, NVDEC engines 7, decoder load 42%, GPU-a\n" +
		"gpu 1: -, compute 0.0, memory 0.0/0.0 GiB used, NVDEC engines ?, decoder load ?, -\n"
	if b.String() != want {
		t.Errorf("got\n%s\nwant\n%s", b.String(), want)
	}
}
