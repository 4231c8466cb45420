// The video feature kernels: CUDA C, compiled to PTX by clang without the
// CUDA toolkit (make ptx), embedded in the cuda build. One block per row (or
// per band edge), SQ_THREADS threads striding along it; the per-thread work is
// in sq_features.h, shared with the host simulation that tests it against the
// CPU reference. Every total is an integer added with 64-bit atomics, so the
// result does not depend on the order blocks run in.
//
// Planes are device pointers with a pitch in bytes (NVDEC's NV12 / P010 luma
// plane read in place); results are 64-bit counters in one device buffer the
// backend copies back per frame.

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __shared__ __attribute__((shared))

#include "sq_features.h"

#define SQ_THREADS 256

__device__ static inline int sq_tid(void) { return __nvvm_read_ptx_sreg_tid_x(); }
__device__ static inline int sq_ntid(void) { return __nvvm_read_ptx_sreg_ntid_x(); }
__device__ static inline int sq_block(void) { return __nvvm_read_ptx_sreg_ctaid_x(); }

// sq_reduce sums v over the block (blockDim.x == SQ_THREADS); thread 0 gets
// the total. Shuffles within warps, then shared memory across them.
__device__ static sq_i64 sq_reduce(sq_i64 v, sq_i64 *shared) {
	for (int o = 16; o > 0; o >>= 1) {
		int lo = __nvvm_shfl_sync_down_i32(0xffffffff, (int)(v & 0xffffffff), o, 0x1f);
		int hi = __nvvm_shfl_sync_down_i32(0xffffffff, (int)(v >> 32), o, 0x1f);
		v += (sq_i64)(((sq_u64)(unsigned)hi << 32) | (unsigned)lo);
	}
	int lane = sq_tid() & 31, warp = sq_tid() >> 5;
	if (lane == 0) {
		shared[warp] = v;
	}
	__syncthreads();
	sq_i64 t = 0;
	if (warp == 0) {
		t = lane < SQ_THREADS / 32 ? shared[lane] : 0;
		for (int o = 16; o > 0; o >>= 1) {
			int lo = __nvvm_shfl_sync_down_i32(0xffffffff, (int)(t & 0xffffffff), o, 0x1f);
			int hi = __nvvm_shfl_sync_down_i32(0xffffffff, (int)(t >> 32), o, 0x1f);
			t += (sq_i64)(((sq_u64)(unsigned)hi << 32) | (unsigned)lo);
		}
	}
	__syncthreads(); // shared is reused by the next reduction
	return t;
}

__device__ static inline void sq_add(sq_i64 *p, sq_i64 v) {
	if (v != 0) {
		__nvvm_atom_add_gen_ll(p, v);
	}
}

// sq_black: out[0] black samples, out[1] sum, out[2] bright central samples.
extern "C" __global__ void sq_black(const sq_u8 *plane, long long pitch, int w, int sixteen, int th,
                                    int cy0, int cy1, int cx0, int cx1, int mid, sq_i64 *out) {
	__shared__ sq_i64 shared[SQ_THREADS / 32];
	int y = sq_block();
	struct sq_black c = {0, 0, 0};
	sq_black_row(plane + y * pitch, w, sixteen, th, y >= cy0 && y < cy1, cx0, cx1, mid, sq_tid(), sq_ntid(), &c);
	sq_i64 black = sq_reduce(c.black, shared);
	sq_i64 sum = sq_reduce(c.sum, shared);
	sq_i64 bright = sq_reduce(c.bright, shared);
	if (sq_tid() == 0) {
		sq_add(&out[0], black);
		sq_add(&out[1], sum);
		sq_add(&out[2], bright);
	}
}

// sq_freeze: out[0] += each row's sum of absolute differences >> shift.
extern "C" __global__ void sq_freeze(const sq_u8 *cur, long long cur_pitch, const sq_u8 *ref, long long ref_pitch,
                                     int w, int sixteen, int shift, sq_i64 *out) {
	__shared__ sq_i64 shared[SQ_THREADS / 32];
	int y = sq_block();
	sq_i64 s = sq_reduce(sq_freeze_row(cur + y * cur_pitch, ref + y * ref_pitch, w, sixteen, sq_tid(), sq_ntid()), shared);
	if (sq_tid() == 0) {
		sq_add(&out[0], s >> shift);
	}
}

// sq_freeze_cells: the cells of row group blockIdx.x (rows 4k..4k+3):
// out[0] += cells compared, out[1] += cells that moved.
extern "C" __global__ void sq_freeze_cells_kernel(const sq_u8 *cur, long long cur_pitch, const sq_u8 *ref, long long ref_pitch,
                                                  int w, int h, int sixteen, long long floor16, sq_i64 *out) {
	__shared__ sq_i64 shared[SQ_THREADS / 32];
	sq_i64 cells = 0, moved = 0;
	sq_freeze_cells(cur, cur_pitch, ref, ref_pitch, w, h, SQ_CELL_ROWS * sq_block(), sixteen, floor16, sq_tid(), sq_ntid(),
	                &cells, &moved);
	cells = sq_reduce(cells, shared);
	moved = sq_reduce(moved, shared);
	if (sq_tid() == 0) {
		sq_add(&out[0], cells);
		sq_add(&out[1], moved);
	}
}

// sq_block_vertical: the vertical edges of row blockIdx.x into its band's
// counters (bands + SQ_BAND_COUNTERS * band).
extern "C" __global__ void sq_block_vertical(const sq_u8 *plane, long long pitch, int w, int sixteen, int shift,
                                             int strong, int moderate, sq_i64 *bands) {
	__shared__ sq_i64 shared[SQ_THREADS / 32];
	int y = sq_block();
	sq_i64 c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	sq_block_vertical_row(plane + y * pitch, w, sixteen, shift, strong, moderate, sq_tid(), sq_ntid(), c);
	sq_i64 t[8];
	for (int k = 0; k < 8; k++) {
		t[k] = sq_reduce(c[k], shared);
	}
	if (sq_tid() == 0) {
		sq_i64 *b = bands + SQ_BAND_COUNTERS * (y / SQ_BAND);
		sq_add(&b[SQ_V_POSITIONS], t[0]);
		sq_add(&b[SQ_V_STEPS], t[1]);
		sq_add(&b[SQ_V_CONTROL], t[2]);
		sq_add(&b[SQ_V_STEPS_M], t[3]);
		sq_add(&b[SQ_V_CONTROL_M], t[4]);
		sq_add(&b[SQ_GRID_SUM], t[5]);
		sq_add(&b[SQ_CONTROL_SUM], t[6]);
		sq_add(&b[SQ_FLAT], t[7]);
	}
}

// sq_block_horizontal: the horizontal edge closing band blockIdx.x (row
// 16*(band+1)); the host launches it for the bands whose edge has the rows
// it reads (edge + 6 < height).
extern "C" __global__ void sq_block_horizontal_edges(const sq_u8 *plane, long long pitch, int w, int sixteen, int shift,
                                                     int strong, int moderate, sq_i64 *bands) {
	__shared__ sq_i64 shared[SQ_THREADS / 32];
	int band = sq_block();
	sq_i64 c[8] = {0, 0, 0, 0, 0, 0, 0, 0};
	sq_block_horizontal(plane, pitch, SQ_BAND * (band + 1), w, sixteen, shift, strong, moderate, sq_tid(), sq_ntid(), c);
	sq_i64 t[8];
	for (int k = 0; k < 8; k++) {
		t[k] = sq_reduce(c[k], shared);
	}
	if (sq_tid() == 0) {
		sq_i64 *b = bands + SQ_BAND_COUNTERS * band;
		sq_add(&b[SQ_H_POSITIONS], t[0]);
		sq_add(&b[SQ_H_STEPS], t[1]);
		sq_add(&b[SQ_H_CONTROL], t[2]);
		sq_add(&b[SQ_H_STEPS_M], t[3]);
		sq_add(&b[SQ_H_CONTROL_M], t[4]);
		sq_add(&b[SQ_GRID_SUM], t[5]);
		sq_add(&b[SQ_CONTROL_SUM], t[6]);
		sq_add(&b[SQ_FLAT], t[7]);
	}
}

#include "sq_thumb.h"

// sq_thumb: output row blockIdx.x of one plane of a thumbnail (luma, Cb or
// Cr: the host launches one per plane), out_pitch bytes a row; see
// sq_thumb.h. Only the thumbnail, a few tens of KB, goes back to the host.
extern "C" __global__ void sq_thumb(const sq_u8 *plane, long long pitch, int step, int wide, int shift, int sw, int sh,
                                    int dw, int dh, int full, int chroma, sq_u8 *out, long long out_pitch) {
	int oy = sq_block();
	sq_thumb_row(plane, pitch, step, wide, shift, sw, sh, dw, dh, full, chroma, oy, out + oy * out_pitch, sq_tid(), sq_ntid());
}
