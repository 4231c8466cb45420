/* The per-thread work of the video feature kernels, shared by the device
 * (kernels.cu, compiled to PTX) and the host (gpu/kernelsim, which runs it
 * for every thread index so that tests here check it against detectors/, the
 * CPU reference, without a GPU).
 *
 * The CPU reference samples rows and columns; these inspect every sample.
 * Each function is one thread's share of one row (tid of nthreads, columns
 * strided so that a warp reads adjacent samples); the kernels sum the shares
 * of a row, and the row totals, in integers: any order gives the same result.
 *
 * Samples are 8-bit (bytes) or 9..16-bit little-endian uint16 (P010 and
 * friends, the value in the high bits: the frame's bit depth tells the
 * shift, as for detectors.VideoFrame).
 */
#ifndef STREAMQC_FEATURES_H
#define STREAMQC_FEATURES_H

#ifdef __CUDA_ARCH__
#define SQ_FN static __attribute__((device)) __attribute__((always_inline)) inline
#else
#define SQ_FN static inline
#endif

typedef unsigned char sq_u8;
typedef unsigned short sq_u16;
typedef long long sq_i64;
typedef unsigned long long sq_u64;

/* sq_sample reads sample x of a row; sixteen: two bytes a sample. */
SQ_FN int sq_sample(const sq_u8 *row, int x, int sixteen) {
	if (sixteen) {
		return (int)row[2 * x] | ((int)row[2 * x + 1] << 8);
	}
	return row[x];
}

SQ_FN int sq_abs(int v) { return v < 0 ? -v : v; }
SQ_FN int sq_max(int a, int b) { return a > b ? a : b; }

/* ---- black: detectors.MeasureBlack ------------------------------------- */

/* Counters of one row's share, summed by the kernel. */
struct sq_black {
	sq_i64 black;  /* samples at or below th */
	sq_i64 sum;    /* sum of samples */
	sq_i64 bright; /* samples of the central area at or above mid */
};

/* sq_black_row: th is the black level, [cx0, cx1) the central columns (only
 * when centre is set: the row is in the central band), mid half the range. */
SQ_FN void sq_black_row(const sq_u8 *row, int w, int sixteen, int th, int centre, int cx0, int cx1, int mid,
                        int tid, int nthreads, struct sq_black *out) {
	sq_i64 black = 0, sum = 0, bright = 0;
	for (int x = tid; x < w; x += nthreads) {
		int v = sq_sample(row, x, sixteen);
		black += v <= th;
		sum += v;
		bright += centre && x >= cx0 && x < cx1 && v >= mid;
	}
	out->black += black;
	out->sum += sum;
	out->bright += bright;
}

/* ---- freeze: detectors.MeasureFreeze ------------------------------------- */

/* sq_freeze_row is one thread's share of a row's sum of absolute
 * differences, in the samples' own scale (the kernel shifts the row's total
 * to 8-bit units, as the reference does per row). */
SQ_FN sq_i64 sq_freeze_row(const sq_u8 *a, const sq_u8 *b, int w, int sixteen, int tid, int nthreads) {
	sq_i64 s = 0;
	for (int x = tid; x < w; x += nthreads) {
		s += sq_abs(sq_sample(a, x, sixteen) - sq_sample(b, x, sixteen));
	}
	return s;
}

/* ---- blockiness: detectors.MeasureBlockiness ------------------------------- */

/* One band's counters, in the order of detectors.BandCounts. */
enum {
	SQ_V_POSITIONS, SQ_V_STEPS, SQ_V_CONTROL, SQ_H_POSITIONS, SQ_H_STEPS, SQ_H_CONTROL,
	SQ_V_STEPS_M, SQ_V_CONTROL_M, SQ_H_STEPS_M, SQ_H_CONTROL_M, SQ_GRID_SUM, SQ_CONTROL_SUM, SQ_FLAT, SQ_BAND_COUNTERS
};

/* The band height: a macroblock row (detectors' blockBand). */
#define SQ_BAND 16

/* sq_step: is b, the difference across a position, a visible step (more
 * than twice the larger neighbouring gradient) that is strong (*s) or
 * moderate (*m)? */
SQ_FN void sq_step(int b, int n1, int n2, int strong, int moderate, int *s, int *m) {
	int sharp = b > 2 * sq_max(n1, n2);
	*s = sharp && b >= strong;
	*m = sharp && b >= moderate;
}

/* sq_edge8 counts one position from eight samples across it: a..e around the
 * grid edge (between b and d), g..j around the mid-block edge (between h and
 * i); c[0..7] take positions, grid steps, control steps, the same with the
 * moderate step, the absolute steps on the grid and mid-block, and whether
 * the block interior g..j is flat (four equal samples). */
SQ_FN void sq_edge8(int a, int b, int d, int e, int g, int h, int i, int j, int strong, int moderate, sq_i64 *c) {
	int s, m, cs, cm;
	int gs = sq_abs(d - b), ms = sq_abs(i - h);
	sq_step(gs, sq_abs(b - a), sq_abs(e - d), strong, moderate, &s, &m);
	sq_step(ms, sq_abs(h - g), sq_abs(j - i), strong, moderate, &cs, &cm);
	c[0] += 1;
	c[1] += s;
	c[2] += cs;
	c[3] += m;
	c[4] += cm;
	c[5] += gs;
	c[6] += ms;
	c[7] += g == h && h == i && i == j;
}

/* ---- freeze cells: detectors.MeasureFreeze's cell test ------------------- */

/* SQ_CELL_W x SQ_CELL_ROWS samples (detectors.FreezeCellWidth, FreezeCellRows;
 * every row on the device), and the z of the test (FreezeCellZ). */
#define SQ_CELL_W 32
#define SQ_CELL_ROWS 4
#define SQ_CELL_Z 4

/* sq_cell_moved: a cell of n samples whose differences sum to d (signed) and
 * s (absolute) moved: |mean| at least floor16/16 levels, and |d| above
 * SQ_CELL_Z noise deviations (sigma from the mean absolute difference). */
SQ_FN int sq_cell_moved(sq_i64 n, sq_i64 d, sq_i64 s, sq_i64 floor16) {
	if (d < 0) {
		d = -d;
	}
	if (16 * d < floor16 * n || d == 0) {
		return 0;
	}
	return 16 * n * d * d > 25 * SQ_CELL_Z * SQ_CELL_Z * s * s;
}

/* sq_freeze_cells: one thread's share of the cells of the row group starting
 * at y0 (cells over whole SQ_CELL_W columns only): *cells compared, *moved. */
SQ_FN void sq_freeze_cells(const sq_u8 *cur, long long cp, const sq_u8 *ref, long long rp, int w, int h, int y0,
                           int sixteen, sq_i64 floor16, int tid, int nthreads, sq_i64 *cells, sq_i64 *moved) {
	int y1 = y0 + SQ_CELL_ROWS < h ? y0 + SQ_CELL_ROWS : h;
	int ncells = w / SQ_CELL_W;
	for (int k = tid; k < ncells; k += nthreads) {
		sq_i64 d = 0, s = 0;
		for (int y = y0; y < y1; y++) {
			const sq_u8 *a = cur + y * cp, *b = ref + y * rp;
			for (int x = k * SQ_CELL_W; x < (k + 1) * SQ_CELL_W; x++) {
				int v = sq_sample(a, x, sixteen) - sq_sample(b, x, sixteen);
				d += v;
				s += sq_abs(v);
			}
		}
		*cells += 1;
		*moved += sq_cell_moved((sq_i64)(y1 - y0) * SQ_CELL_W, d, s, floor16);
	}
}

/* sq_block_vertical_row: one thread's share of the vertical edges of a row
 * (x = 8k, control at 8k+4, while x+6 < w); shift brings samples to 8 bits. */
SQ_FN void sq_block_vertical_row(const sq_u8 *row, int w, int sixteen, int shift, int strong, int moderate,
                                 int tid, int nthreads, sq_i64 *c) {
	for (int k = 1 + tid;; k += nthreads) {
		int x = 8 * k;
		if (x + 6 >= w) {
			break;
		}
		int a = sq_sample(row, x - 2, sixteen) >> shift, b = sq_sample(row, x - 1, sixteen) >> shift;
		int d = sq_sample(row, x, sixteen) >> shift, e = sq_sample(row, x + 1, sixteen) >> shift;
		int g = sq_sample(row, x + 2, sixteen) >> shift, h = sq_sample(row, x + 3, sixteen) >> shift;
		int i = sq_sample(row, x + 4, sixteen) >> shift, j = sq_sample(row, x + 5, sixteen) >> shift;
		sq_edge8(a, b, d, e, g, h, i, j, strong, moderate, c);
	}
}

/* sq_block_horizontal: one thread's share of the horizontal edge at row y
 * (every column; the eight rows y-2..y+5 start at rows[0..7]). */
SQ_FN void sq_block_horizontal(const sq_u8 *plane, long long stride, int y, int w, int sixteen, int shift,
                               int strong, int moderate, int tid, int nthreads, sq_i64 *c) {
	const sq_u8 *r0 = plane + (y - 2) * stride;
	for (int x = tid; x < w; x += nthreads) {
		int v[8];
		for (int k = 0; k < 8; k++) {
			v[k] = sq_sample(r0 + k * stride, x, sixteen) >> shift;
		}
		sq_edge8(v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], strong, moderate, c);
	}
}

#endif
