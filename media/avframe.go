package media

/*
#cgo pkg-config: libavcodec libavutil
#cgo LDFLAGS: -lm
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <stdint.h>
#include <stdlib.h>

#include <libavutil/hwcontext.h>
#include <libavutil/video_enc_params.h>
#include <math.h>

typedef struct {
	uint8_t *data0;
	int linesize0;
	int width, height, format;
	int depth, step, hw, plane_ok;
	int full_range, key_frame, corrupt;
	int64_t best_effort, pts, pkt_duration;
	int nb_samples, channels, sample_rate;
	// dev_ok: a CUDA frame whose luma plane 0 (data0, a CUdeviceptr) the
	// GPU backend reads in place; depth is its software format's.
	int dev_ok;
	// chroma_ok: cb and cr (a host or, with dev_ok, a device address) start
	// at the first Cb and Cr samples, cstride bytes a row, cstep bytes a
	// sample, subsampled by 1<<csx, 1<<csy; samples as wide as the luma's.
	uint8_t *cb, *cr;
	int cstride, cstep, csx, csy, chroma_ok, cblen, crlen;
	// quant: the picture's mean quantizer from the decoder's exported
	// encoding parameters (H.264 QP units), when quant_ok.
	double quant;
	int quant_ok;
} sq_frame;

// sq_quant reads the mean quantizer of a software-decoded picture from its
// AV_FRAME_DATA_VIDEO_ENC_PARAMS (the decoder exports it with
// export_side_data=venc_params: H.264 and MPEG-1/2 in FFmpeg 5.1), on
// H.264's QP scale (a step doubles every 6): H.264's per-macroblock QP less
// its high-bit-depth offset; MPEG-2's quantiser_scale q as 7 + 6 log2(q),
// which puts broadcast MPEG-2 (q 4 to 20) at 19 to 33 and its maximum (112,
// non-linear) at 48.
static void sq_quant(const AVFrame *f, int depth, sq_frame *o) {
	o->quant_ok = 0;
	const AVFrameSideData *sd = av_frame_get_side_data(f, AV_FRAME_DATA_VIDEO_ENC_PARAMS);
	if (!sd || sd->size < sizeof(AVVideoEncParams)) return;
	const AVVideoEncParams *p = (const AVVideoEncParams *)sd->data;
	if (p->nb_blocks == 0 || p->block_size < sizeof(AVVideoBlockParams) ||
	    p->blocks_offset + (size_t)p->nb_blocks * p->block_size > sd->size)
		return;
	int64_t sum = 0, area = 0;
	for (unsigned i = 0; i < p->nb_blocks; i++) {
		const AVVideoBlockParams *b = av_video_enc_params_block((AVVideoEncParams *)p, i);
		int64_t a = (int64_t)b->w * b->h;
		sum += (int64_t)b->delta_qp * a;
		area += a;
	}
	if (area <= 0) return;
	double q = p->qp + (double)sum / (double)area;
	switch (p->type) {
	case AV_VIDEO_ENC_PARAMS_H264:
		o->quant = q - (depth > 8 ? 6 * (depth - 8) : 0);
		break;
	case AV_VIDEO_ENC_PARAMS_MPEG2:
		if (q < 1) return;
		o->quant = 7 + 6 * log2(q);
		break;
	default:
		return;
	}
	o->quant_ok = 1;
}

// sq_luma_format says whether plane 0 of fmt is luma alone, one sample per
// step, little-endian if wide, YUV or grey, and its depth. A sample kept in
// the high bits of 16 (P010, P016: NVDEC's 10-bit output) counts as 16-bit:
// thresholds are shares of the range, so P010's value << 6 is the same share.
static int sq_luma_format(int fmt, int *depth, int *step) {
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
	if (!d) return 0;
	*depth = d->comp[0].depth;
	*step = d->comp[0].step;
	int shift = d->comp[0].shift;
	if (shift > 0 && *step == 2 && shift + *depth == 16) {
		*depth = 16;
		shift = 0;
	}
	return d->comp[0].plane == 0 && d->comp[0].offset == 0 && shift == 0 &&
		!(d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM | AV_PIX_FMT_FLAG_HWACCEL)) &&
		((*depth <= 8 && *step == 1) || (*depth > 8 && *depth <= 16 && *step == 2)) &&
		(d->nb_components < 3 || (d->flags & AV_PIX_FMT_FLAG_PLANAR));
}

// sq_chroma_view fills o's chroma fields from f's planes laid out as fmt
// (f's own format, or a CUDA frame's software format), when Cb and Cr have
// the luma's depth (P010's high-bit samples count as 16-bit, as its luma).
static void sq_chroma_view(const AVFrame *f, int fmt, sq_frame *o) {
	o->chroma_ok = 0;
	const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(fmt);
	if (!d || d->nb_components < 3 || (d->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_BE | AV_PIX_FMT_FLAG_PAL | AV_PIX_FMT_FLAG_BITSTREAM)))
		return;
	const AVComponentDescriptor *cb = &d->comp[1], *cr = &d->comp[2];
	int depth = cb->depth, shift = cb->shift;
	if (shift > 0 && shift + depth == 16) {
		depth = 16;
		shift = 0;
	}
	int bytes = depth > 8 ? 2 : 1;
	if (depth != o->depth || shift != 0 || cb->step != cr->step || cb->step < bytes || cb->plane == 0 || cr->plane == 0 ||
	    f->linesize[cb->plane] != f->linesize[cr->plane] || !f->data[cb->plane] || !f->data[cr->plane] || f->linesize[cb->plane] <= 0)
		return;
	o->cb = f->data[cb->plane] + cb->offset;
	o->cr = f->data[cr->plane] + cr->offset;
	o->cstride = f->linesize[cb->plane];
	o->cstep = cb->step;
	o->csx = d->log2_chroma_w;
	o->csy = d->log2_chroma_h;
	int rows = (f->height + (1 << o->csy) - 1) >> o->csy;
	o->cblen = o->cstride * rows - cb->offset; // to the end of the plane
	o->crlen = o->cstride * rows - cr->offset;
	o->chroma_ok = 1;
}

static void sq_frame_view(const AVFrame *f, sq_frame *o) {
	o->data0 = f->data[0];
	o->linesize0 = f->linesize[0];
	o->width = f->width;
	o->height = f->height;
	o->format = f->format;
	o->full_range = f->color_range == AVCOL_RANGE_JPEG;
	o->key_frame = f->key_frame;
	o->corrupt = (f->flags & AV_FRAME_FLAG_CORRUPT) != 0 || f->decode_error_flags != 0;
	o->best_effort = f->best_effort_timestamp;
	o->pts = f->pts;
	o->pkt_duration = f->pkt_duration;
	o->nb_samples = f->nb_samples;
	o->channels = f->ch_layout.nb_channels;
	o->sample_rate = f->sample_rate;
	o->depth = o->step = o->hw = o->plane_ok = o->dev_ok = o->chroma_ok = o->quant_ok = 0;
	if (f->width > 0) {
		const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
		if (d) {
			o->hw = (d->flags & AV_PIX_FMT_FLAG_HWACCEL) != 0;
			if (!o->hw) {
				o->plane_ok = sq_luma_format(f->format, &o->depth, &o->step);
				if (o->plane_ok) sq_chroma_view(f, f->format, o);
				if (f->nb_side_data > 0) sq_quant(f, o->depth, o);
			} else if (f->format == AV_PIX_FMT_CUDA && f->hw_frames_ctx) {
				const AVHWFramesContext *fc = (const AVHWFramesContext *)f->hw_frames_ctx->data;
				o->dev_ok = sq_luma_format(fc->sw_format, &o->depth, &o->step);
				if (o->dev_ok) sq_chroma_view(f, fc->sw_format, o);
			}
		}
	}
	// A "full range" pixel format (yuvj*) implies full range even if unsignalled.
	if (f->format == AV_PIX_FMT_YUVJ420P || f->format == AV_PIX_FMT_YUVJ422P || f->format == AV_PIX_FMT_YUVJ444P)
		o->full_range = 1;
}

static uint8_t *sq_audio_plane(const AVFrame *f, int i) { return f->extended_data[i]; }

static int sq_set_opaque(AVCodecContext *c, uintptr_t h) {
	if (!c || c->av_class != avcodec_get_class()) return -1;
	c->opaque = (void *)h;
	return 0;
}
*/
import "C"

import (
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/streamqc/streamqc/detectors"
)

// frameInfo is what the pipeline reads of an AVFrame, in one cgo call. It
// lives in C memory (newFrameInfo), so passing it allocates nothing and
// holds no Go pointer.
type frameInfo = C.sq_frame

func newFrameInfo() *frameInfo {
	return (*frameInfo)(C.calloc(1, C.size_t(unsafe.Sizeof(frameInfo{}))))
}

func freeFrameInfo(o *frameInfo) { C.free(unsafe.Pointer(o)) }

func readFrame(f *astiav.Frame, o *frameInfo) {
	C.sq_frame_view((*C.AVFrame)(f.UnsafePointer()), o)
}

// lumaPlane returns plane 0 of a frame as a Go slice over FFmpeg's memory
// (no copy); it is valid while the frame holds its reference.
func lumaPlane(o *frameInfo) []byte {
	if o.data0 == nil || o.linesize0 <= 0 || o.height <= 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(o.data0)), int(o.linesize0)*int(o.height))
}

// chromaView returns a frame's Cb and Cr as the detectors' view, over
// FFmpeg's memory (no copy), or on the GPU with device; empty when the
// format's chroma is not understood.
func chromaView(o *frameInfo, device bool) detectors.Chroma {
	if o.chroma_ok == 0 || o.cb == nil || o.cr == nil || o.height <= 0 {
		return detectors.Chroma{}
	}
	c := detectors.Chroma{Stride: int(o.cstride), Step: int(o.cstep), ShiftX: int(o.csx), ShiftY: int(o.csy)}
	if device {
		c.CbDevice, c.CrDevice = uintptr(unsafe.Pointer(o.cb)), uintptr(unsafe.Pointer(o.cr))
		return c
	}
	c.Cb = unsafe.Slice((*byte)(unsafe.Pointer(o.cb)), int(o.cblen))
	c.Cr = unsafe.Slice((*byte)(unsafe.Pointer(o.cr)), int(o.crlen))
	return c
}

// audioPlane returns plane i of an audio frame (n bytes) without copying.
func audioPlane(f *astiav.Frame, i, n int) []byte {
	p := C.sq_audio_plane((*C.AVFrame)(f.UnsafePointer()), C.int(i))
	if p == nil {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(p)), n)
}

// setOpaque stores a cgo.Handle in the codec context, where FFmpeg's log
// callback finds it again (frame-thread copies of the context inherit it).
// go-astiav v0.16.0 does not expose the C pointer of a CodecContext; it is
// the struct's first field, and the C side checks the AVClass before writing.
func setOpaque(cc *astiav.CodecContext, h uintptr) bool {
	return C.sq_set_opaque((*C.AVCodecContext)(ptr(cc)), C.uintptr_t(h)) == 0
}

// lumaFormat says whether the detectors can read plane 0 of pf as luma, and
// at which bit depth.
func lumaFormat(pf astiav.PixelFormat) (depth int, ok bool) {
	var d, step C.int
	ok = C.sq_luma_format(C.int(pf), &d, &step) != 0
	return int(d), ok
}
