/* The per-sample work of the thumbnail kernel (sq_thumb in kernels.cu),
 * shared with its host run (thumb_sim.go): thumbnail.Box and
 * thumbnail.Expand of the Go downscale, integer for integer, so that a
 * picture downscaled on the GPU gives the bytes the CPU gives.
 *
 * A plane of sw x sh samples (step bytes apart, pitch bytes a row; wide:
 * two bytes little-endian, shift: the low bits dropped) goes to dw x dh
 * (never larger): output sample (ox, oy) is the rounded mean of its box.
 */
#ifndef STREAMQC_THUMB_H
#define STREAMQC_THUMB_H

#include "sq_features.h"

/* sq_thumb_span: thumbnail.Span, the source range [a, b) of output o. */
SQ_FN void sq_thumb_span(int o, int sn, int dn, int *a, int *b) {
	*a = o * sn / dn;
	*b = (o + 1) * sn / dn;
	if (*b <= *a) {
		*b = *a + 1;
	}
}

/* sq_thumb_box: thumbnail.Box. */
SQ_FN int sq_thumb_box(const sq_u8 *p, sq_i64 pitch, int step, int wide, int shift, int sw, int sh, int dw, int dh,
                       int ox, int oy) {
	int x0, x1, y0, y1;
	sq_thumb_span(ox, sw, dw, &x0, &x1);
	sq_thumb_span(oy, sh, dh, &y0, &y1);
	sq_u64 sum = 0;
	for (int y = y0; y < y1; y++) {
		const sq_u8 *s = p + y * pitch + (sq_i64)x0 * step;
		for (int x = x0; x < x1; x++, s += step) {
			sum += wide ? ((sq_u64)s[0] | ((sq_u64)s[1] << 8)) : (sq_u64)s[0];
		}
	}
	sq_u64 n = (sq_u64)((x1 - x0) * (y1 - y0)) << shift;
	sq_u64 v = (sum + n / 2) / n;
	return v > 255 ? 255 : (int)v;
}

/* sq_thumb_expand: thumbnail.Expand, limited range to JPEG's full range. */
SQ_FN int sq_thumb_expand(int v, int full, int chroma) {
	if (full) {
		return v;
	}
	int t;
	if (chroma) {
		t = (v - 128) * 255;
		t = t >= 0 ? (t + 112) / 224 : (t - 112) / 224;
		t += 128;
	} else {
		t = ((v - 16) * 255 + 109) / 219;
	}
	return t < 0 ? 0 : t > 255 ? 255 : t;
}

/* sq_thumb_row: one thread's share (ox = tid, tid + nthreads...) of output
 * row oy, into out (dw bytes). */
SQ_FN void sq_thumb_row(const sq_u8 *p, sq_i64 pitch, int step, int wide, int shift, int sw, int sh, int dw, int dh,
                        int full, int chroma, int oy, sq_u8 *out, int tid, int nthreads) {
	for (int ox = tid; ox < dw; ox += nthreads) {
		out[ox] = (sq_u8)sq_thumb_expand(sq_thumb_box(p, pitch, step, wide, shift, sw, sh, dw, dh, ox, oy), full, chroma);
	}
}

#endif
