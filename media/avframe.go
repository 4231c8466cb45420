package media

/*
#cgo pkg-config: libavcodec libavutil
#include <libavcodec/avcodec.h>
#include <libavutil/frame.h>
#include <libavutil/pixdesc.h>
#include <stdint.h>
#include <stdlib.h>

#include <libavutil/hwcontext.h>

typedef struct {
	uint8_t *data0;
	int linesize0;
	int width, height, format;
	int depth, step, hw, plane_ok;
	int full_range, key_frame, corrupt;
	int64_t best_effort, pkt_duration;
	int nb_samples, channels, sample_rate;
	// dev_ok: a CUDA frame whose luma plane 0 (data0, a CUdeviceptr) the
	// GPU backend reads in place; depth is its software format's.
	int dev_ok;
} sq_frame;

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
	o->pkt_duration = f->pkt_duration;
	o->nb_samples = f->nb_samples;
	o->channels = f->ch_layout.nb_channels;
	o->sample_rate = f->sample_rate;
	o->depth = o->step = o->hw = o->plane_ok = o->dev_ok = 0;
	if (f->width > 0) {
		const AVPixFmtDescriptor *d = av_pix_fmt_desc_get(f->format);
		if (d) {
			o->hw = (d->flags & AV_PIX_FMT_FLAG_HWACCEL) != 0;
			if (!o->hw) {
				o->plane_ok = sq_luma_format(f->format, &o->depth, &o->step);
			} else if (f->format == AV_PIX_FMT_CUDA && f->hw_frames_ctx) {
				const AVHWFramesContext *fc = (const AVHWFramesContext *)f->hw_frames_ctx->data;
				o->dev_ok = sq_luma_format(fc->sw_format, &o->depth, &o->step);
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
