package agent

import (
	"log/slog"
	"math"
	"os"
	"runtime"
	"time"

	"github.com/streamqc/streamqc/agent/placement"
	"github.com/streamqc/streamqc/gpu/nvml"
)

// gpuReader reads the GPUs; *nvml.NVML is one.
type gpuReader interface {
	Snapshot() (nvml.Snapshot, error)
}

// boxProbe measures the box for decoder placement: the GPUs' NVDEC load
// through NVML, this process's CPU time through getrusage.
type boxProbe struct {
	gpus  gpuReader // nil: no driver
	noGPU string
	cpu   *cpuMeter
	cores int
	last  []placement.GPU // the last GPUs read, kept through a failed read
	log   *slog.Logger
	erred bool
	// cpuPct and cpuAt: the CPU load is measured over a second at least, so
	// a config change just after a round does not read a spike.
	cpuPct float64
	cpuAt  time.Time
}

// newBoxProbe opens NVML; without it the box has no GPU for placement. The
// returned close releases NVML.
func newBoxProbe(log *slog.Logger) (*boxProbe, func()) {
	p := &boxProbe{cpu: newCPUMeter(), cpuAt: time.Now(), cores: runtime.NumCPU(), log: log}
	n, err := nvml.Open("")
	if err != nil {
		p.noGPU = err.Error()
		return p, func() {}
	}
	if os.Getenv("CUDA_DEVICE_ORDER") == "" {
		// CUDA numbers GPUs fastest first, NVML by PCI bus: make FFmpeg's
		// device "1" the GPU NVML calls 1.
		os.Setenv("CUDA_DEVICE_ORDER", "PCI_BUS_ID")
	}
	p.gpus = n
	return p, func() { _ = n.Close() }
}

// Load implements placement.Probe.
func (p *boxProbe) Load() placement.Load {
	if now := time.Now(); now.Sub(p.cpuAt) >= time.Second {
		p.cpuPct, p.cpuAt = p.cpu.percent(), now
	}
	l := placement.Load{CPUPercent: p.cpuPct, Cores: p.cores, NoGPU: p.noGPU}
	if p.gpus == nil {
		return l
	}
	s, err := p.gpus.Snapshot()
	switch {
	case err != nil:
		// A failed read is not a lost GPU: keep the list, load unknown
		// (the streams' lag still says when one falls behind).
		if !p.erred {
			p.log.Warn("GPU load unreadable; placing by decode lag", "err", err)
		}
		p.erred = true
		for i := range p.last {
			p.last[i].DecoderUtil = math.NaN()
		}
	case len(s.Devices) == 0:
		p.last, l.NoGPU = nil, "NVML lists no GPU"
	default:
		p.erred = false
		p.last = p.last[:0]
		for _, d := range s.Devices {
			p.last = append(p.last, placement.GPU{Index: d.Index, DecoderUtil: d.DecoderUtil})
		}
	}
	l.GPUs = append([]placement.GPU(nil), p.last...)
	return l
}
