package nvml

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// The few NVML calls used, looked up with dlsym: nothing is left for the
// dynamic linker to resolve, so builds linked with -z now start anywhere.
typedef void *sq_dev;
typedef struct { unsigned long long total, free, used; } sq_mem;
typedef struct {
	unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount,
		copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
	unsigned long long memorySizeMB;
} sq_profile;

typedef struct {
	void *h;
	int (*init)(void);
	int (*shutdown)(void);
	int (*driver)(char *, unsigned int);
	int (*count)(unsigned int *);
	int (*handle)(unsigned int, sq_dev *);
	int (*name)(sq_dev, char *, unsigned int);
	int (*uuid)(sq_dev, char *, unsigned int);
	int (*cc)(sq_dev, int *, int *);
	int (*mem)(sq_dev, sq_mem *);
	int (*dec)(sq_dev, unsigned int *, unsigned int *);
	int (*profile)(sq_dev, unsigned int, sq_profile *);
} sq_nvml;

typedef struct {
	char name[96], uuid[96];
	int name_ret, uuid_ret;
	int major, minor, cc_ret;
	unsigned long long total, used;
	int mem_ret;
	unsigned int util;
	int util_ret;
	unsigned int decoders;
	int profile_ret;
} sq_device;

enum { SQ_NOT_FOUND = 13 }; // NVML_ERROR_FUNCTION_NOT_FOUND

// sq_open: 0 with *out filled, or 1 (no library: msg) or 2 (a required
// symbol missing: msg).
static int sq_open(const char *lib, sq_nvml *out, char *msg, int msglen) {
	memset(out, 0, sizeof *out);
	out->h = dlopen(lib, RTLD_NOW | RTLD_LOCAL);
	if (!out->h) {
		snprintf(msg, msglen, "%s", dlerror());
		return 1;
	}
	out->init = dlsym(out->h, "nvmlInit_v2");
	out->shutdown = dlsym(out->h, "nvmlShutdown");
	out->driver = dlsym(out->h, "nvmlSystemGetDriverVersion");
	out->count = dlsym(out->h, "nvmlDeviceGetCount_v2");
	out->handle = dlsym(out->h, "nvmlDeviceGetHandleByIndex_v2");
	out->name = dlsym(out->h, "nvmlDeviceGetName");
	out->uuid = dlsym(out->h, "nvmlDeviceGetUUID");
	out->cc = dlsym(out->h, "nvmlDeviceGetCudaComputeCapability");
	out->mem = dlsym(out->h, "nvmlDeviceGetMemoryInfo");
	out->dec = dlsym(out->h, "nvmlDeviceGetDecoderUtilization");
	out->profile = dlsym(out->h, "nvmlDeviceGetGpuInstanceProfileInfo");
	if (!out->init || !out->shutdown || !out->count || !out->handle) {
		snprintf(msg, msglen, "%s lacks nvmlInit_v2, nvmlDeviceGetCount_v2 or nvmlDeviceGetHandleByIndex_v2", lib);
		dlclose(out->h);
		out->h = NULL;
		return 2;
	}
	return 0;
}

static int sq_init(sq_nvml *n) { return n->init(); }
static int sq_shutdown(sq_nvml *n) { return n->shutdown(); }
static int sq_driver(sq_nvml *n, char *buf, unsigned int len) {
	return n->driver ? n->driver(buf, len) : SQ_NOT_FOUND;
}
static int sq_count(sq_nvml *n, unsigned int *c) { return n->count(c); }

// sq_device_read fills d; each field group carries NVML's answer.
static int sq_device_read(sq_nvml *n, unsigned int i, sq_device *d) {
	memset(d, 0, sizeof *d);
	sq_dev h;
	int r = n->handle(i, &h);
	if (r != 0) {
		return r;
	}
	d->name_ret = n->name ? n->name(h, d->name, sizeof d->name) : SQ_NOT_FOUND;
	d->uuid_ret = n->uuid ? n->uuid(h, d->uuid, sizeof d->uuid) : SQ_NOT_FOUND;
	d->cc_ret = n->cc ? n->cc(h, &d->major, &d->minor) : SQ_NOT_FOUND;
	sq_mem m = {0};
	d->mem_ret = n->mem ? n->mem(h, &m) : SQ_NOT_FOUND;
	d->total = m.total;
	d->used = m.used;
	unsigned int period;
	d->util_ret = n->dec ? n->dec(h, &d->util, &period) : SQ_NOT_FOUND;
	d->profile_ret = SQ_NOT_FOUND;
	// The whole-GPU MIG profiles (8, then 7 slices) carry the engine counts.
	for (unsigned int p = 5; n->profile && p >= 4; p--) {
		sq_profile info = {0};
		if ((d->profile_ret = n->profile(h, p, &info)) == 0 && info.decoderCount > 0) {
			d->decoders = info.decoderCount;
			break;
		}
	}
	return 0;
}
*/
import "C"

import (
	"unsafe"
)

// cLibrary is NVML loaded with dlopen.
type cLibrary struct {
	n C.sq_nvml
}

// load opens the library; the error text is dlerror's, or the missing symbols'.
func load(path string) (*cLibrary, string, bool) {
	cp := C.CString(path)
	defer C.free(unsafe.Pointer(cp))
	l := &cLibrary{}
	var msg [512]C.char
	if C.sq_open(cp, &l.n, &msg[0], C.int(len(msg))) != 0 {
		return nil, C.GoString(&msg[0]), false
	}
	return l, "", true
}

func (l *cLibrary) init() ret     { return ret(C.sq_init(&l.n)) }
func (l *cLibrary) shutdown() ret { return ret(C.sq_shutdown(&l.n)) }

func (l *cLibrary) driverVersion() (string, ret) {
	var buf [96]C.char
	r := ret(C.sq_driver(&l.n, &buf[0], C.uint(len(buf))))
	return C.GoString(&buf[0]), r
}

func (l *cLibrary) deviceCount() (int, ret) {
	var c C.uint
	r := ret(C.sq_count(&l.n, &c))
	return int(c), r
}

func (l *cLibrary) device(i int) (rawDevice, ret) {
	var d C.sq_device
	if r := ret(C.sq_device_read(&l.n, C.uint(i), &d)); r != success {
		return rawDevice{}, r
	}
	return rawDevice{
		name: C.GoString(&d.name[0]), nameRet: ret(d.name_ret),
		uuid: C.GoString(&d.uuid[0]), uuidRet: ret(d.uuid_ret),
		major: int(d.major), minor: int(d.minor), ccRet: ret(d.cc_ret),
		total: uint64(d.total), used: uint64(d.used), memRet: ret(d.mem_ret),
		util: uint32(d.util), utilRet: ret(d.util_ret),
		decoders: int(d.decoders), profileRet: ret(d.profile_ret),
	}, success
}
