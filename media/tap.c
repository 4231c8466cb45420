// The transport tap: an AVIOContext of our own between FFmpeg's protocol
// (file, udp, srt...) and its demuxer, handing every byte read to Go too.
#include "tap.h"

struct sq_tap {
	AVIOContext *inner; // the protocol, opened by avio_open2
	uintptr_t handle;   // cgo.Handle of the Go side
};

static int sq_tap_read(void *opaque, uint8_t *buf, int size) {
	struct sq_tap *t = opaque;
	int n = avio_read_partial(t->inner, buf, size);
	if (n > 0)
		sqTapBytes(t->handle, buf, n);
	return n;
}

AVIOContext *sq_tap_open(AVFormatContext *fc, const char *url, AVDictionary **opts, uintptr_t handle, int *err) {
	struct sq_tap *t = av_mallocz(sizeof *t);
	if (!t) {
		*err = AVERROR(ENOMEM);
		return NULL;
	}
	t->handle = handle;
	// The format context's interrupt callback: the open timeout, the stall
	// watchdog and cancellation reach the protocol as they did before.
	int r = avio_open2(&t->inner, url, AVIO_FLAG_READ, &fc->interrupt_callback, opts);
	if (r < 0) {
		av_free(t);
		*err = r;
		return NULL;
	}
	const int size = 32768;
	unsigned char *buf = av_malloc(size);
	AVIOContext *pb = buf ? avio_alloc_context(buf, size, 0, t, sq_tap_read, NULL, NULL) : NULL;
	if (!pb) {
		av_free(buf);
		avio_closep(&t->inner);
		av_free(t);
		*err = AVERROR(ENOMEM);
		return NULL;
	}
	// Not seekable: every byte goes through once, in order (FFmpeg would
	// otherwise read the end of a file to estimate its duration).
	pb->seekable = 0;
	pb->max_packet_size = t->inner->max_packet_size;
	fc->pb = pb;
	fc->flags |= AVFMT_FLAG_CUSTOM_IO;
	*err = 0;
	return pb;
}

void sq_tap_close(AVIOContext *pb) {
	if (!pb)
		return;
	struct sq_tap *t = pb->opaque;
	if (t) {
		avio_closep(&t->inner);
		av_free(t);
	}
	av_freep(&pb->buffer);
	avio_context_free(&pb);
}
