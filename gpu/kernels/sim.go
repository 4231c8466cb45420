package kernels

// The host run of the kernels: the per-thread work of sq_features.h, thread
// by thread and row by row as the kernels partition it, summed as the
// kernels sum it. Its tests hold it to detectors/, the CPU reference, on
// every sample, 8 and 10 bit: the kernels' arithmetic is checked here without
// a GPU; what only a GPU can check (launches, reductions, atomics, NVDEC
// frames) is in gpu/'s tests under the build tag cuda and `make gpu-check`.

/*
#cgo CFLAGS: -O2
#include "sq_features.h"

// The kernels' block size: any gives the same sums; this one is theirs.
#define THREADS 256

static void black_plane(const sq_u8 *plane, long long pitch, int w, int h, int sixteen, int th,
                        int cy0, int cy1, int cx0, int cx1, int mid, sq_i64 *out) {
	struct sq_black c = {0, 0, 0};
	for (int y = 0; y < h; y++) {
		for (int t = 0; t < THREADS; t++) {
			sq_black_row(plane + y * pitch, w, sixteen, th, y >= cy0 && y < cy1, cx0, cx1, mid, t, THREADS, &c);
		}
	}
	out[0] = c.black;
	out[1] = c.sum;
	out[2] = c.bright;
}

static sq_i64 freeze_plane(const sq_u8 *cur, long long cp, const sq_u8 *ref, long long rp, int w, int h, int sixteen, int shift) {
	sq_i64 sad = 0;
	for (int y = 0; y < h; y++) {
		sq_i64 row = 0;
		for (int t = 0; t < THREADS; t++) {
			row += sq_freeze_row(cur + y * cp, ref + y * rp, w, sixteen, t, THREADS);
		}
		sad += row >> shift;
	}
	return sad;
}

static void freeze_cells_plane(const sq_u8 *cur, long long cp, const sq_u8 *ref, long long rp, int w, int h, int sixteen,
                               sq_i64 floor16, sq_i64 *out) {
	for (int y0 = 0; y0 < h; y0 += SQ_CELL_ROWS) {
		for (int t = 0; t < THREADS; t++) {
			sq_freeze_cells(cur, cp, ref, rp, w, h, y0, sixteen, floor16, t, THREADS, &out[0], &out[1]);
		}
	}
}

static void block_plane(const sq_u8 *plane, long long pitch, int w, int h, int sixteen, int shift,
                        int strong, int moderate, int edges, sq_i64 *bands) {
	for (int y = 0; y < h; y++) {
		sq_i64 c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		for (int t = 0; t < THREADS; t++) {
			sq_block_vertical_row(plane + y * pitch, w, sixteen, shift, strong, moderate, t, THREADS, c);
		}
		sq_i64 *b = bands + SQ_BAND_COUNTERS * (y / SQ_BAND);
		b[SQ_V_POSITIONS] += c[0];
		b[SQ_V_STEPS] += c[1];
		b[SQ_V_CONTROL] += c[2];
		b[SQ_V_STEPS_M] += c[3];
		b[SQ_V_CONTROL_M] += c[4];
		b[SQ_GRID_SUM] += c[5];
		b[SQ_CONTROL_SUM] += c[6];
		b[SQ_FLAT] += c[7];
	}
	for (int band = 0; band < edges; band++) {
		sq_i64 c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
		for (int t = 0; t < THREADS; t++) {
			sq_block_horizontal(plane, pitch, SQ_BAND * (band + 1), w, sixteen, shift, strong, moderate, t, THREADS, c);
		}
		sq_i64 *b = bands + SQ_BAND_COUNTERS * band;
		b[SQ_H_POSITIONS] += c[0];
		b[SQ_H_STEPS] += c[1];
		b[SQ_H_CONTROL] += c[2];
		b[SQ_H_STEPS_M] += c[3];
		b[SQ_H_CONTROL_M] += c[4];
		b[SQ_GRID_SUM] += c[5];
		b[SQ_CONTROL_SUM] += c[6];
		b[SQ_FLAT] += c[7];
	}
}
*/
import "C"

import (
	"unsafe"

	"github.com/streamqc/streamqc/detectors"
)

func plane(f *detectors.VideoFrame) *C.sq_u8 { return (*C.sq_u8)(unsafe.Pointer(&f.Y[0])) }

func sixteen(f *detectors.VideoFrame) (C.int, int) {
	if f.BitDepth > 8 {
		return 1, f.BitDepth - 8
	}
	return 0, 0
}

// HostBlack computes the black feature of every sample of f.
func HostBlack(f *detectors.VideoFrame, pixelThreshold float64, out *detectors.BlackFeature) {
	g := detectors.NewBlackGeometry(f, pixelThreshold)
	six, _ := sixteen(f)
	var c [3]C.sq_i64
	C.black_plane(plane(f), C.longlong(f.Stride), C.int(f.Width), C.int(f.Height), six, C.int(g.Th),
		C.int(g.CY0), C.int(g.CY1), C.int(g.CX0), C.int(g.CX1), C.int(g.Mid), &c[0])
	detectors.BlackFromCounts(f, g, int(c[0]), int(c[2]), uint64(c[1]), out)
}

// HostFreeze computes the freeze feature of every sample of cur against ref
// (cellFloor: FreezeConfig.CellFloor).
func HostFreeze(cur, ref *detectors.VideoFrame, cellFloor float64, out *detectors.FreezeFeature) {
	if ref == nil || ref.Width != cur.Width || ref.Height != cur.Height || ref.BitDepth != cur.BitDepth {
		*out = detectors.FreezeFeature{}
		return
	}
	six, shift := sixteen(cur)
	sad := C.freeze_plane(plane(cur), C.longlong(cur.Stride), plane(ref), C.longlong(ref.Stride),
		C.int(cur.Width), C.int(cur.Height), six, C.int(shift))
	var cells [2]C.sq_i64
	C.freeze_cells_plane(plane(cur), C.longlong(cur.Stride), plane(ref), C.longlong(ref.Stride),
		C.int(cur.Width), C.int(cur.Height), six, C.sq_i64(detectors.FreezeCellFloor16(cur, cellFloor)), &cells[0])
	detectors.FreezeFromCounts(cur, ref, uint64(sad), int(cells[0]), int(cells[1]), out)
}

// HostBlockiness computes the blockiness feature of every sample of f.
func HostBlockiness(f *detectors.VideoFrame, minStep, moderateStep int, out *detectors.BlockFeature) {
	if f.Width < 16 || f.Height < 16 {
		*out = detectors.BlockFeature{Band: -1}
		return
	}
	bands := make([]detectors.BandCounts, detectors.BlockBands(f.Height))
	six, shift := sixteen(f)
	C.block_plane(plane(f), C.longlong(f.Stride), C.int(f.Width), C.int(f.Height), six, C.int(shift),
		C.int(minStep), C.int(moderateStep), C.int(detectors.BlockHorizontalEdges(f.Height)),
		(*C.sq_i64)(unsafe.Pointer(&bands[0])))
	detectors.BlockFromBands(f, bands, out)
}

// geometry is the C side's view of the shared constants, for the test that
// holds them to detectors' and to this package's.
func geometry() (cellW, cellRows, cellZ, bandCounters, band int) {
	return int(C.SQ_CELL_W), int(C.SQ_CELL_ROWS), int(C.SQ_CELL_Z), int(C.SQ_BAND_COUNTERS), int(C.SQ_BAND)
}
