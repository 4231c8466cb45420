package agent

import (
	"errors"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/gpu/nvml"
)

type fakeGPUs struct {
	s   nvml.Snapshot
	err error
}

func (f *fakeGPUs) Snapshot() (nvml.Snapshot, error) { return f.s, f.err }

func TestBoxProbe(t *testing.T) {
	f := &fakeGPUs{s: nvml.Snapshot{Devices: []nvml.Device{{Index: 0, DecoderUtil: 40}, {Index: 1, DecoderUtil: math.NaN()}}}}
	p := &boxProbe{gpus: f, cpu: newCPUMeter(), cores: 16, log: slog.New(slog.DiscardHandler)}
	l := p.Load()
	if len(l.GPUs) != 2 || l.GPUs[0].DecoderUtil != 40 || !math.IsNaN(l.GPUs[1].DecoderUtil) || l.Cores != 16 || l.NoGPU != "" {
		t.Fatalf("load %+v", l)
	}
	// A failed read keeps the GPUs, their load unknown.
	f.err = errors.New("NVML device count: ERROR_UNKNOWN")
	l = p.Load()
	if len(l.GPUs) != 2 || !math.IsNaN(l.GPUs[0].DecoderUtil) {
		t.Fatalf("after a failed read: %+v", l)
	}
	// The CPU load read less than a second ago is kept.
	p.cpuPct, p.cpuAt = 55, time.Now()
	if l = p.Load(); l.CPUPercent != 55 {
		t.Errorf("CPU %.1f%% within a second of the last read, want the kept 55%%", l.CPUPercent)
	}
	f.err, f.s = nil, nvml.Snapshot{}
	if l = p.Load(); len(l.GPUs) != 0 || l.NoGPU == "" {
		t.Fatalf("no devices: %+v", l)
	}
}

// TestBoxProbeWithoutDriver: here there is no NVIDIA driver; the probe says
// why, and places nothing on a GPU.
func TestBoxProbeWithoutDriver(t *testing.T) {
	p, closeProbe := newBoxProbe(slog.New(slog.DiscardHandler))
	defer closeProbe()
	if p.gpus != nil {
		t.Skip("this machine has an NVIDIA driver")
	}
	l := p.Load()
	if len(l.GPUs) != 0 || !strings.HasPrefix(l.NoGPU, "no NVIDIA driver") || l.Cores < 1 {
		t.Fatalf("load %+v", l)
	}
}
