package nvml

import (
	"errors"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestOpenWithoutDriver loads libraries that cannot be NVML, so it checks
// the no-driver paths on every machine, GPU hosts included.
func TestOpenWithoutDriver(t *testing.T) {
	dir := t.TempDir()
	notELF := filepath.Join(dir, "libnvidia-ml.so.1")
	if err := os.WriteFile(notELF, []byte("not a library"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, path, want string }{
		{"missing", filepath.Join(dir, "missing", "libnvidia-ml.so.1"), "cannot open shared object file"},
		{"not a library", notELF, "libnvidia-ml.so.1"},
		// libc loads but has no NVML in it.
		{"no NVML symbols", "libc.so.6", "lacks nvmlInit_v2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.path)
			if !errors.Is(err, ErrNoDriver) || !strings.HasPrefix(err.Error(), "no NVIDIA driver: ") ||
				!strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
				t.Fatalf("Open(%s): %v, want one line wrapping ErrNoDriver and saying %q", tc.path, err, tc.want)
			}
		})
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

type fake struct {
	initRet  ret
	driver   string
	devs     []rawDevice
	countRet ret
	closed   bool
}

func (f *fake) init() ret                     { return f.initRet }
func (f *fake) shutdown() ret                 { f.closed = true; return success }
func (f *fake) driverVersion() (string, ret)  { return f.driver, success }
func (f *fake) deviceCount() (int, ret)       { return len(f.devs), f.countRet }
func (f *fake) device(i int) (rawDevice, ret) { return f.devs[i], success }

func TestInitFailures(t *testing.T) {
	tests := []struct {
		ret  ret
		want string
	}{
		{errDriverMissing, "no NVIDIA driver: the kernel driver is not loaded"},
		{errNoPermission, "no NVIDIA driver: no permission"},
		{errLibNotFound, "no NVIDIA driver: library not found"},
		{999, "no NVIDIA driver: NVML init: NVML error 999"},
	}
	for _, tc := range tests {
		t.Run(tc.want, func(t *testing.T) {
			_, err := open(&fake{initRet: tc.ret})
			if !errors.Is(err, ErrNoDriver) || err.Error() != tc.want {
				t.Errorf("open: %v, want %q", err, tc.want)
			}
		})
	}
}

func TestSnapshot(t *testing.T) {
	notSupported := ret(3)
	f := &fake{driver: "580.65", devs: []rawDevice{
		{name: "NVIDIA H200", uuid: "GPU-1", major: 9, total: 100, used: 40, util: 37, decoders: 7},
		// A GPU that refuses every query is still listed.
		{name: "junk", nameRet: notSupported, uuidRet: notSupported, major: 3, ccRet: notSupported,
			total: 5, memRet: notSupported, util: 50, utilRet: notSupported, decoders: 2, profileRet: errNotFound},
	}}
	n, err := open(f)
	if err != nil {
		t.Fatal(err)
	}
	s, err := n.Snapshot()
	if err != nil {
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
	if b.Index != 1 || b.Name != "" || b.ComputeMajor != 0 || b.MemoryTotal != 0 || b.Decoders != 0 || !math.IsNaN(b.DecoderUtil) {
		t.Errorf("device 1 %+v: want index 1, every refused field unknown", b)
	}
	f.countRet = errGPULost
	if _, err := n.Snapshot(); err == nil || !strings.Contains(err.Error(), "GPU is lost") {
		t.Errorf("lost GPU: %v", err)
	}
	if err := n.Close(); err != nil || !f.closed {
		t.Errorf("close: %v", err)
	}
}

// TestFakeLibrary builds a stand-in libnvidia-ml (testdata/fakenvml.c) and
// reads it through the real dlopen path.
func TestFakeLibrary(t *testing.T) {
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skip("no C compiler")
	}
	lib := filepath.Join(t.TempDir(), "libnvidia-ml.so.1")
	if out, err := exec.Command(cc, "-shared", "-fPIC", "-o", lib, "testdata/fakenvml.c").CombinedOutput(); err != nil {
		t.Fatalf("cc: %v\n%s", err, out)
	}
	n, err := Open(lib)
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
	if s.Driver != "999.1" || len(s.Devices) != 2 {
		t.Fatalf("snapshot %+v", s)
	}
	want := Device{Index: 0, Name: "Fake GPU", UUID: "GPU-a", ComputeMajor: 9, MemoryTotal: 1 << 40, MemoryUsed: 1 << 39, Decoders: 7, DecoderUtil: 42}
	if s.Devices[0] != want {
		t.Errorf("device 0 %+v, want %+v", s.Devices[0], want)
	}
	if b := s.Devices[1]; b.UUID != "GPU-b" || b.Name != "" || b.MemoryTotal != 0 || b.Decoders != 0 || !math.IsNaN(b.DecoderUtil) {
		t.Errorf("device 1 %+v: want its UUID and nothing else", b)
	}
}
