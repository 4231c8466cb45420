// Package cudaprobe says whether this host has a usable NVIDIA GPU without
// linking the driver: it opens libcuda.so.1 at run time, as FFmpeg's NVDEC
// loader does, and asks it to initialize and count devices. The cuda
// flavour's binary links libcuda and exits in its package init when the
// driver does not answer, so the CPU binary asks here first and only then
// hands over (cmd/streamqc flavor.go): a box whose GPU is gone keeps
// monitoring on the CPU instead of crash-looping.
package cudaprobe

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*sq_cu_init)(unsigned int);
typedef int (*sq_cu_count)(int *);
typedef int (*sq_cu_version)(int *);

// sq_probe: 0 and *n devices, *version the driver's CUDA version; else a
// stage code (1 no library, 2 no symbol, 3 cuInit failed with *err, 4
// cuDeviceGetCount failed with *err).
static int sq_probe(const char *lib, int *n, int *version, int *err, char *msg, int msglen) {
	void *h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		snprintf(msg, msglen, "%s", dlerror());
		return 1;
	}
	sq_cu_init init = (sq_cu_init)dlsym(h, "cuInit");
	sq_cu_count count = (sq_cu_count)dlsym(h, "cuDeviceGetCount");
	sq_cu_version ver = (sq_cu_version)dlsym(h, "cuDriverGetVersion");
	if (!init || !count) {
		snprintf(msg, msglen, "%s lacks cuInit or cuDeviceGetCount", lib);
		dlclose(h);
		return 2;
	}
	if ((*err = init(0)) != 0) {
		dlclose(h);
		return 3;
	}
	if ((*err = count(n)) != 0) {
		dlclose(h);
		return 4;
	}
	if (ver) {
		ver(version);
	}
	// Not closed: a driver once initialized stays loaded in this process.
	return 0;
}
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// ErrNoGPU wraps every reason the host has no usable GPU.
var ErrNoGPU = errors.New("no usable NVIDIA GPU")

// Result is what the driver said.
type Result struct {
	Devices       int
	DriverVersion int // CUDA version the driver supports, e.g. 12080
}

// Probe loads lib (libcuda.so.1 when empty) and initializes it.
func Probe(lib string) (Result, error) {
	if lib == "" {
		lib = "libcuda.so.1"
	}
	cl := C.CString(lib)
	defer C.free(unsafe.Pointer(cl))
	var n, version, code C.int
	var msg [256]C.char
	switch C.sq_probe(cl, &n, &version, &code, &msg[0], C.int(len(msg))) {
	case 0:
		if n == 0 {
			return Result{}, fmt.Errorf("%w: the driver sees no device", ErrNoGPU)
		}
		return Result{Devices: int(n), DriverVersion: int(version)}, nil
	case 1, 2:
		return Result{}, fmt.Errorf("%w: %s", ErrNoGPU, C.GoString(&msg[0]))
	case 3:
		return Result{}, fmt.Errorf("%w: cuInit failed with CUDA error %d", ErrNoGPU, int(code))
	default:
		return Result{}, fmt.Errorf("%w: cuDeviceGetCount failed with CUDA error %d", ErrNoGPU, int(code))
	}
}
