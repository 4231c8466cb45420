// Package nvml reads the NVIDIA GPUs of this box (devices, driver, memory,
// NVDEC engines and their load) through NVML, loaded with dlopen at run
// time: the binary starts and runs on machines without the driver, where
// Open returns an error wrapping ErrNoDriver.
package nvml

import (
	"errors"
	"fmt"
	"math"
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
	// (it does through the whole-GPU MIG profile only).
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

// ret is an nvmlReturn_t.
type ret int

// The nvmlReturn_t values this package tells apart.
const (
	success          ret = 0
	errNoPermission  ret = 4
	errDriverMissing ret = 9  // NVML_ERROR_DRIVER_NOT_LOADED
	errLibNotFound   ret = 12 // NVML_ERROR_LIBRARY_NOT_FOUND
	errNotFound      ret = 13 // NVML_ERROR_FUNCTION_NOT_FOUND
	errGPULost       ret = 15
)

func (r ret) Error() string {
	switch r {
	case 1:
		return "NVML not initialized"
	case 2:
		return "invalid argument"
	case 3:
		return "not supported"
	case errNoPermission:
		return "no permission"
	case errDriverMissing:
		return "the kernel driver is not loaded"
	case errLibNotFound:
		return "library not found"
	case errNotFound:
		return "function not found"
	case errGPULost:
		return "GPU is lost"
	}
	return fmt.Sprintf("NVML error %d", int(r))
}

// rawDevice is what NVML answered about one device, field by field.
type rawDevice struct {
	name, uuid       string
	nameRet, uuidRet ret
	major, minor     int
	ccRet            ret
	total, used      uint64
	memRet           ret
	util             uint32
	utilRet          ret
	decoders         int
	profileRet       ret
}

// library is the NVML calls this package makes: the dlopen'ed one, or a
// fake in tests.
type library interface {
	init() ret
	shutdown() ret
	driverVersion() (string, ret)
	deviceCount() (int, ret)
	device(i int) (rawDevice, ret)
}

// NVML is an open NVML library.
type NVML struct {
	lib library
}

// Open loads NVML (libnvidia-ml.so.1, or libraryPath when set) and
// initializes it.
func Open(libraryPath string) (*NVML, error) {
	if libraryPath == "" {
		libraryPath = "libnvidia-ml.so.1"
	}
	l, msg, ok := load(libraryPath)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNoDriver, msg)
	}
	return open(l)
}

func open(l library) (*NVML, error) {
	switch r := l.init(); r {
	case success:
		return &NVML{lib: l}, nil
	case errDriverMissing, errNoPermission, errLibNotFound:
		return nil, fmt.Errorf("%w: %w", ErrNoDriver, r)
	default:
		return nil, fmt.Errorf("%w: NVML init: %w", ErrNoDriver, r)
	}
}

// Close releases NVML.
func (n *NVML) Close() error {
	if r := n.lib.shutdown(); r != success {
		return fmt.Errorf("NVML shutdown: %w", r)
	}
	return nil
}

// Snapshot reads every device. A field NVML refuses stays zero (NaN for
// DecoderUtil): one unsupported query must not hide the GPU.
func (n *NVML) Snapshot() (Snapshot, error) {
	var s Snapshot
	if v, r := n.lib.driverVersion(); r == success {
		s.Driver = v
	}
	count, r := n.lib.deviceCount()
	if r != success {
		return s, fmt.Errorf("NVML device count: %w", r)
	}
	for i := range count {
		raw, r := n.lib.device(i)
		if r != success {
			return s, fmt.Errorf("NVML device %d: %w", i, r)
		}
		s.Devices = append(s.Devices, device(i, raw))
	}
	return s, nil
}

func device(i int, r rawDevice) Device {
	d := Device{Index: i, DecoderUtil: math.NaN()}
	if r.nameRet == success {
		d.Name = r.name
	}
	if r.uuidRet == success {
		d.UUID = r.uuid
	}
	if r.ccRet == success {
		d.ComputeMajor, d.ComputeMinor = r.major, r.minor
	}
	if r.memRet == success {
		d.MemoryTotal, d.MemoryUsed = r.total, r.used
	}
	if r.utilRet == success {
		d.DecoderUtil = float64(r.util)
	}
	if r.profileRet == success {
		d.Decoders = r.decoders
	}
	return d
}
