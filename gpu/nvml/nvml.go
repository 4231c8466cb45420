// Package nvml reads the NVIDIA GPUs of this box (devices, driver, memory,
// NVDEC engines and their load) through NVML, which go-nvml loads with
// dlopen at run time: the binary starts and runs on machines without the
// driver, where Open returns an error wrapping ErrNoDriver.
package nvml

import (
	"errors"
	"fmt"
	"math"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
)

// ErrNoDriver is wrapped by Open when there is no usable NVIDIA driver.
var ErrNoDriver = errors.New("no NVIDIA driver")

// Device is one GPU as NVML sees it.
type Device struct {
	Index        int
	Name         string
	UUID         string
	ComputeMajor int
	ComputeMinor int
	MemoryTotal  uint64 // bytes
	MemoryUsed   uint64
	// Decoders is the number of NVDEC engines, 0 when NVML does not say
	// (it does through the full-GPU MIG profile only).
	Decoders int
	// DecoderUtil is the NVDEC load in percent over NVML's last sampling
	// period; NaN when NVML cannot say.
	DecoderUtil float64
}

// Snapshot is every GPU of the box at one moment.
type Snapshot struct {
	Driver  string
	Devices []Device
}

// NVML is an open NVML library.
type NVML struct {
	lib nvml.Interface
}

// Open loads NVML (libnvidia-ml.so.1, or libraryPath when set) and
// initializes it.
func Open(libraryPath string) (*NVML, error) {
	var opts []nvml.LibraryOption
	if libraryPath != "" {
		opts = append(opts, nvml.WithLibraryPath(libraryPath))
	}
	return open(nvml.New(opts...))
}

func open(lib nvml.Interface) (*NVML, error) {
	switch r := lib.Init(); r {
	case nvml.SUCCESS:
		return &NVML{lib: lib}, nil
	case nvml.ERROR_LIBRARY_NOT_FOUND:
		return nil, fmt.Errorf("%w: libnvidia-ml.so.1 not found", ErrNoDriver)
	case nvml.ERROR_DRIVER_NOT_LOADED:
		return nil, fmt.Errorf("%w: the kernel driver is not loaded", ErrNoDriver)
	case nvml.ERROR_NO_PERMISSION:
		return nil, fmt.Errorf("%w: no permission to open /dev/nvidia*", ErrNoDriver)
	default:
		return nil, fmt.Errorf("%w: NVML init: %w", ErrNoDriver, r)
	}
}

// Close releases NVML.
func (n *NVML) Close() error {
	if r := n.lib.Shutdown(); r != nvml.SUCCESS {
		return fmt.Errorf("NVML shutdown: %w", r)
	}
	return nil
}

// Snapshot reads every device. A device field NVML refuses stays zero (NaN
// for DecoderUtil): one unsupported query must not hide the GPU.
func (n *NVML) Snapshot() (Snapshot, error) {
	var s Snapshot
	if v, r := n.lib.SystemGetDriverVersion(); r == nvml.SUCCESS {
		s.Driver = v
	}
	count, r := n.lib.DeviceGetCount()
	if r != nvml.SUCCESS {
		return s, fmt.Errorf("NVML device count: %w", r)
	}
	for i := range count {
		h, r := n.lib.DeviceGetHandleByIndex(i)
		if r != nvml.SUCCESS {
			return s, fmt.Errorf("NVML device %d: %w", i, r)
		}
		s.Devices = append(s.Devices, device(i, h))
	}
	return s, nil
}

func device(i int, h nvml.Device) Device {
	d := Device{Index: i, DecoderUtil: math.NaN()}
	if v, r := h.GetName(); r == nvml.SUCCESS {
		d.Name = v
	}
	if v, r := h.GetUUID(); r == nvml.SUCCESS {
		d.UUID = v
	}
	if maj, mnr, r := h.GetCudaComputeCapability(); r == nvml.SUCCESS {
		d.ComputeMajor, d.ComputeMinor = maj, mnr
	}
	if m, r := h.GetMemoryInfo(); r == nvml.SUCCESS {
		d.MemoryTotal, d.MemoryUsed = m.Total, m.Used
	}
	if u, _, r := h.GetDecoderUtilization(); r == nvml.SUCCESS {
		d.DecoderUtil = float64(u)
	}
	// The whole-GPU MIG profiles carry the engine counts; GPUs without MIG
	// answer NOT_SUPPORTED and the count stays unknown.
	for _, p := range []int{nvml.GPU_INSTANCE_PROFILE_8_SLICE, nvml.GPU_INSTANCE_PROFILE_7_SLICE} {
		if info, r := h.GetGpuInstanceProfileInfo(p); r == nvml.SUCCESS && info.DecoderCount > 0 {
			d.Decoders = int(info.DecoderCount)
			break
		}
	}
	return d
}
