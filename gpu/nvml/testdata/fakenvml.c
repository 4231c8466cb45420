// A stand-in libnvidia-ml for TestFakeLibrary: two GPUs, the second
// refusing most queries, so that the dlopen shim's calls and structure
// layouts are exercised on machines without the driver.
#include <string.h>

typedef struct { unsigned long long total, free, used; } mem;
typedef struct {
	unsigned int id, isP2pSupported, sliceCount, instanceCount, multiprocessorCount,
		copyEngineCount, decoderCount, encoderCount, jpegCount, ofaCount;
	unsigned long long memorySizeMB;
} profile;

static int devs[2];

int nvmlInit_v2(void) { return 0; }
int nvmlShutdown(void) { return 0; }
int nvmlSystemGetDriverVersion(char *v, unsigned int n) { strncpy(v, "999.1", n); return 0; }
int nvmlDeviceGetCount_v2(unsigned int *c) { *c = 2; return 0; }
int nvmlDeviceGetHandleByIndex_v2(unsigned int i, void **h) {
	if (i > 1) return 2;
	*h = &devs[i];
	return 0;
}
static int idx(void *h) { return h == &devs[0] ? 0 : 1; }
int nvmlDeviceGetName(void *h, char *v, unsigned int n) {
	if (idx(h)) return 3;
	strncpy(v, "Fake GPU", n);
	return 0;
}
int nvmlDeviceGetUUID(void *h, char *v, unsigned int n) { strncpy(v, idx(h) ? "GPU-b" : "GPU-a", n); return 0; }
int nvmlDeviceGetCudaComputeCapability(void *h, int *ma, int *mi) {
	if (idx(h)) return 3;
	*ma = 9; *mi = 0;
	return 0;
}
int nvmlDeviceGetMemoryInfo(void *h, mem *m) {
	if (idx(h)) return 3;
	m->total = 1ULL << 40; m->free = 1ULL << 39; m->used = 1ULL << 39;
	return 0;
}
int nvmlDeviceGetDecoderUtilization(void *h, unsigned int *u, unsigned int *p) {
	if (idx(h)) return 3;
	*u = 42; *p = 167000;
	return 0;
}
int nvmlDeviceGetGpuInstanceProfileInfo(void *h, unsigned int p, profile *info) {
	if (idx(h) || p != 4) return 3; // only the 7-slice profile, as on an H100
	memset(info, 0, sizeof *info);
	info->decoderCount = 7;
	info->memorySizeMB = 1;
	return 0;
}
