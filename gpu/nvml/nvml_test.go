package nvml

import (
	"errors"
	"math"
	"path/filepath"
	"strings"
	"testing"

	"github.com/NVIDIA/go-nvml/pkg/nvml"
	"github.com/NVIDIA/go-nvml/pkg/nvml/mock"
)

// TestOpenWithoutDriver loads a library that does not exist, so it checks
// the no-driver path on every machine, GPU hosts included.
func TestOpenWithoutDriver(t *testing.T) {
	_, err := Open(filepath.Join(t.TempDir(), "libnvidia-ml.so.1"))
	if !errors.Is(err, ErrNoDriver) {
		t.Fatalf("Open: %v, want ErrNoDriver", err)
	}
	if want := "no NVIDIA driver: libnvidia-ml.so.1 not found"; err.Error() != want {
		t.Errorf("error %q, want %q", err, want)
	}
}

// TestOpenDefault: here (no driver) the default library fails cleanly; on a
// GPU host it opens and lists at least one device.
func TestOpenDefault(t *testing.T) {
	n, err := Open("")
	if err != nil {
		if !errors.Is(err, ErrNoDriver) {
			t.Fatalf("Open: %v, want ErrNoDriver", err)
		}
		t.Logf("no driver here: %v", err)
		return
	}
	defer n.Close()
	s, err := n.Snapshot()
	if err != nil || len(s.Devices) == 0 || s.Driver == "" {
		t.Fatalf("snapshot %+v, %v: want a driver version and a device", s, err)
	}
}

func TestInitFailures(t *testing.T) {
	tests := []struct {
		ret  nvml.Return
		want string
	}{
		{nvml.ERROR_LIBRARY_NOT_FOUND, "no NVIDIA driver: libnvidia-ml.so.1 not found"},
		{nvml.ERROR_DRIVER_NOT_LOADED, "no NVIDIA driver: the kernel driver is not loaded"},
		{nvml.ERROR_NO_PERMISSION, "no NVIDIA driver: no permission"},
		{nvml.ERROR_UNKNOWN, "no NVIDIA driver: NVML init: ERROR_UNKNOWN"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := open(&mock.Interface{InitFunc: func() nvml.Return { return tc.ret }})
			if !errors.Is(err, ErrNoDriver) || !strings.HasPrefix(err.Error(), tc.want) {
				t.Errorf("open: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSnapshot(t *testing.T) {
	full := &mock.Device{
		GetNameFunc:                  func() (string, nvml.Return) { return "NVIDIA H200", nvml.SUCCESS },
		GetUUIDFunc:                  func() (string, nvml.Return) { return "GPU-1", nvml.SUCCESS },
		GetCudaComputeCapabilityFunc: func() (int, int, nvml.Return) { return 9, 0, nvml.SUCCESS },
		GetMemoryInfoFunc:            func() (nvml.Memory, nvml.Return) { return nvml.Memory{Total: 100, Used: 40}, nvml.SUCCESS },
		GetDecoderUtilizationFunc:    func() (uint32, uint32, nvml.Return) { return 37, 167000, nvml.SUCCESS },
		GetGpuInstanceProfileInfoFunc: func(p int) (nvml.GpuInstanceProfileInfo, nvml.Return) {
			if p == nvml.GPU_INSTANCE_PROFILE_7_SLICE {
				return nvml.GpuInstanceProfileInfo{DecoderCount: 7}, nvml.SUCCESS
			}
			return nvml.GpuInstanceProfileInfo{}, nvml.ERROR_INVALID_ARGUMENT
		},
	}
	// A GPU that refuses every query is still listed.
	no := func() (string, nvml.Return) { return "", nvml.ERROR_NOT_SUPPORTED }
	bare := &mock.Device{
		GetNameFunc: no, GetUUIDFunc: no,
		GetCudaComputeCapabilityFunc: func() (int, int, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED },
		GetMemoryInfoFunc:            func() (nvml.Memory, nvml.Return) { return nvml.Memory{}, nvml.ERROR_NOT_SUPPORTED },
		GetDecoderUtilizationFunc:    func() (uint32, uint32, nvml.Return) { return 0, 0, nvml.ERROR_NOT_SUPPORTED },
		GetGpuInstanceProfileInfoFunc: func(int) (nvml.GpuInstanceProfileInfo, nvml.Return) {
			return nvml.GpuInstanceProfileInfo{}, nvml.ERROR_NOT_SUPPORTED
		},
	}
	devs := []nvml.Device{full, bare}
	lib := &mock.Interface{
		InitFunc:                   func() nvml.Return { return nvml.SUCCESS },
		ShutdownFunc:               func() nvml.Return { return nvml.SUCCESS },
		SystemGetDriverVersionFunc: func() (string, nvml.Return) { return "580.65", nvml.SUCCESS },
		DeviceGetCountFunc:         func() (int, nvml.Return) { return len(devs), nvml.SUCCESS },
		DeviceGetHandleByIndexFunc: func(i int) (nvml.Device, nvml.Return) { return devs[i], nvml.SUCCESS },
	}
	n, err := open(lib)
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Driver != "580.65" || len(s.Devices) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	want := Device{Index: 0, Name: "NVIDIA H200", UUID: "GPU-1", ComputeMajor: 9, MemoryTotal: 100, MemoryUsed: 40, Decoders: 7, DecoderUtil: 37}
	if s.Devices[0] != want {
		t.Errorf("device 0 %+v, want %+v", s.Devices[0], want)
	}
	b := s.Devices[1]
	if b.Index != 1 || b.Name != "" || b.Decoders != 0 || !math.IsNaN(b.DecoderUtil) {
		t.Errorf("device 1 %+v: want index 1, unknown fields, NaN load", b)
	}

	lib.DeviceGetCountFunc = func() (int, nvml.Return) { return 0, nvml.ERROR_GPU_IS_LOST }
	if _, err := n.Snapshot(); err == nil || !strings.Contains(err.Error(), "ERROR_GPU_IS_LOST") {
		t.Errorf("lost GPU: %v", err)
	}
}
