package media

/*
#cgo pkg-config: libavcodec libavformat libavutil
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>

static int sq_read_frame(AVFormatContext *f, AVPacket *p) { return av_read_frame(f, p); }
static int sq_send_packet(AVCodecContext *c, AVPacket *p) { return avcodec_send_packet(c, p); }
static int sq_receive_frame(AVCodecContext *c, AVFrame *f) { return avcodec_receive_frame(c, f); }
static int sq_is_codec_ctx(AVCodecContext *c) { return c && c->av_class == avcodec_get_class(); }
static int sq_is_format_ctx(AVFormatContext *f) { return f && f->av_class == avformat_get_class(); }
*/
import "C"

import (
	"errors"
	"fmt"
	"strings"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// The per-packet and per-frame calls go through these wrappers, which return
// FFmpeg's int codes: go-astiav turns every negative code (EAGAIN after each
// drained frame) into an error interface, one heap allocation per call.
// go-astiav v0.16.0 keeps each C pointer as its struct's first field and does
// not export it (but for frames); ptr reads it, and the constructors below
// check the AVClass before use.

// ptr returns the C pointer a go-astiav wrapper holds in its first field.
func ptr[T any](w *T) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(w)) }

// cCodecCtx lets the files without cgo hold a decoder's C pointer.
type cCodecCtx = C.AVCodecContext

// hot holds the C pointers of one session's hot path.
type hot struct {
	fc  *C.AVFormatContext
	pkt *C.AVPacket
}

func newHot(fc *astiav.FormatContext, pkt *astiav.Packet) (hot, error) {
	h := hot{fc: (*C.AVFormatContext)(ptr(fc)), pkt: (*C.AVPacket)(ptr(pkt))}
	if C.sq_is_format_ctx(h.fc) == 0 || h.pkt == nil {
		return hot{}, errors.New("go-astiav layout not as expected (format context or packet)")
	}
	return h, nil
}

func codecCtx(cc *astiav.CodecContext) (*C.AVCodecContext, error) {
	c := (*C.AVCodecContext)(ptr(cc))
	if C.sq_is_codec_ctx(c) == 0 {
		return nil, errors.New("go-astiav layout not as expected (codec context)")
	}
	return c, nil
}

// Return codes, as go-astiav defines them.
var (
	codeEagain = int(astiav.ErrEagain)
	codeEOF    = int(astiav.ErrEof)
)

// avError converts a negative code to go-astiav's error, for the rare paths.
func avError(code int) error {
	if code >= 0 {
		return nil
	}
	return astiav.Error(code)
}

// decodeReason words a decoder's error code for a decode_error event; FFmpeg
// has no text for some codes, and a reason is never empty.
func decodeReason(code int) string {
	msg := ""
	if err := avError(code); err != nil {
		msg = strings.TrimSpace(err.Error())
	}
	if msg == "" {
		return fmt.Sprintf("decode: FFmpeg error %d", code)
	}
	return "decode: " + msg
}

func (h hot) readFrame() int { return int(C.sq_read_frame(h.fc, h.pkt)) }

// packetData is the read packet's payload, in place, and its pts.
func (h hot) packetData() (unsafe.Pointer, int, int64) {
	return unsafe.Pointer(h.pkt.data), int(h.pkt.size), int64(h.pkt.pts)
}

// sendPacket sends the session packet, or flushes when flush is true.
func (h hot) sendPacket(c *C.AVCodecContext, flush bool) int {
	p := h.pkt
	if flush {
		p = nil
	}
	return int(C.sq_send_packet(c, p))
}

func receiveFrame(c *C.AVCodecContext, f *astiav.Frame) int {
	return int(C.sq_receive_frame(c, (*C.AVFrame)(f.UnsafePointer())))
}
