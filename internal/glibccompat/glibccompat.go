//go:build portable && linux && amd64

// Package glibccompat lets the portable binary start on glibc 2.34 (Amazon
// Linux 2023) although it is linked on Debian 12 (glibc 2.36). Three symbols
// of newer versions come in with the static archives, and build.sh wraps each
// (-Wl,--wrap=NAME) to the function of the same name here:
//
//   - hypot@GLIBC_2.35 (FFmpeg): the GLIBC_2.2.5 version, same results, errno
//     set as SVID wanted (nobody reads it);
//   - arc4random@GLIBC_2.36 (libstdc++'s random_device): getrandom(2);
//   - _dl_find_object@GLIBC_2.35 (libgcc's unwinder, for libsrt's C++
//     exceptions): the same answer found with dl_iterate_phdr (GLIBC_2.2.5).
//
// Imported for its C code only, by the portable flavour of cmd/streamqc.
package glibccompat

/*
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <sys/random.h>

double hypot_2_2_5(double, double);
__asm__(".symver hypot_2_2_5,hypot@GLIBC_2.2.5");

double __wrap_hypot(double x, double y) { return hypot_2_2_5(x, y); }

uint32_t __wrap_arc4random(void) {
	uint32_t v;
	unsigned char *p = (unsigned char *)&v;
	size_t n = 0;
	while (n < sizeof v) {
		ssize_t r = getrandom(p + n, sizeof v - n, 0);
		if (r > 0) {
			n += (size_t)r;
		} else if (r < 0 && errno != EINTR) {
			// arc4random cannot fail; the kernel's getrandom only fails
			// before 3.17 (ENOSYS), where glibc 2.34 does not run either.
			__builtin_trap();
		}
	}
	return v;
}

struct find_pc {
	uintptr_t pc;
	struct dl_find_object *out;
	int found;
};

static int find_pc_cb(struct dl_phdr_info *info, size_t size, void *data) {
	struct find_pc *f = data;
	uintptr_t lo = UINTPTR_MAX, hi = 0;
	int in = 0;
	const ElfW(Phdr) *eh = NULL;
	(void)size;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
		if (ph->p_type == PT_GNU_EH_FRAME) {
			eh = ph;
		}
		if (ph->p_type != PT_LOAD) {
			continue;
		}
		uintptr_t start = info->dlpi_addr + ph->p_vaddr, end = start + ph->p_memsz;
		if (start < lo) lo = start;
		if (end > hi) hi = end;
		if (f->pc >= start && f->pc < end) in = 1;
	}
	if (!in) {
		return 0;
	}
	f->out->dlfo_flags = 0;
	f->out->dlfo_map_start = (void *)lo;
	f->out->dlfo_map_end = (void *)hi;
	f->out->dlfo_link_map = NULL;
	f->out->dlfo_eh_frame = eh ? (void *)(info->dlpi_addr + eh->p_vaddr) : NULL;
	f->found = 1;
	return 1;
}

int __wrap__dl_find_object(void *pc, struct dl_find_object *out) {
	struct find_pc f = {(uintptr_t)pc, out, 0};
	dl_iterate_phdr(find_pc_cb, &f);
	return f.found ? 0 : -1;
}
*/
import "C"
