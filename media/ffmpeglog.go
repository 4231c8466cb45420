package media

/*
#cgo pkg-config: libavcodec libavutil
#include <libavcodec/avcodec.h>
#include <libavutil/log.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdint.h>

extern void goStreamqcDecoderLog(uintptr_t handle, int level, char *msg);
extern void goStreamqcLog(int level, char *msg);

// FFmpeg logs from any thread, decoder worker threads included. Errors of a
// decoder that carries a handle in opaque go to its pipeline; the rest go to
// slog at debug level, so nothing reaches stderr behind the caller's back.
static void sq_log_callback(void *ptr, int level, const char *fmt, va_list vl) {
	if (level > AV_LOG_WARNING) return;
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, vl);
	AVClass *cls = ptr ? *(AVClass **)ptr : NULL;
	if (cls == avcodec_get_class()) {
		AVCodecContext *c = ptr;
		if (c->opaque && level <= AV_LOG_ERROR) {
			goStreamqcDecoderLog((uintptr_t)c->opaque, level, msg);
			return;
		}
	}
	goStreamqcLog(level, msg);
}

static void sq_install_log(void) { av_log_set_callback(sq_log_callback); }
*/
import "C"

import (
	"context"
	"log/slog"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
)

// decoderErrors collects the errors FFmpeg logs for one decoder, from any of
// its threads; the pipeline drains it after each packet.
type decoderErrors struct {
	n    atomic.Int64
	mu   sync.Mutex
	last string
}

func (d *decoderErrors) add(msg string) {
	d.n.Add(1)
	d.mu.Lock()
	d.last = msg
	d.mu.Unlock()
}

// take returns the count since the last call and the last message.
func (d *decoderErrors) take() (int64, string) {
	n := d.n.Swap(0)
	if n == 0 {
		return 0, ""
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return n, d.last
}

// installLog routes FFmpeg's log once per process: av_log_set_callback is
// process-wide by FFmpeg's design, so this is the one global we keep.
var installLog = sync.OnceFunc(func() { C.sq_install_log() })

//export goStreamqcDecoderLog
func goStreamqcDecoderLog(h C.uintptr_t, level C.int, msg *C.char) {
	if d, ok := cgo.Handle(h).Value().(*decoderErrors); ok {
		d.add(strings.TrimSpace(C.GoString(msg)))
	}
}

//export goStreamqcLog
func goStreamqcLog(level C.int, msg *C.char) {
	if !slog.Default().Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	slog.Debug("ffmpeg", "level", int(level), "msg", strings.TrimSpace(C.GoString(msg)))
}
