package media

/*
#cgo pkg-config: libavformat libavutil
#include <stdlib.h>
#include "tap.h"
*/
import "C"

import (
	"fmt"
	"net/url"
	"path"
	"runtime/cgo"
	"strings"
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/streamqc/streamqc/transport"
)

// TransportSink is a Sink that also wants the TR 101 290 errors of MPEG-TS
// inputs; *detectors.Analyzer is one.
type TransportSink interface {
	// TransportLimits returns the timings of the checks, and false to skip them.
	TransportLimits() (transport.Limits, bool)
	transport.Reporter
}

// tap passes the bytes FFmpeg's demuxer reads to the transport analyzer as
// well: one read, two consumers, no second connection to the source.
type tap struct {
	an     *transport.Analyzer
	pb     *C.AVIOContext
	handle cgo.Handle
	on     bool // the input is MPEG-TS
}

//export sqTapBytes
func sqTapBytes(h C.uintptr_t, buf *C.uint8_t, n C.int) {
	if t, ok := cgo.Handle(h).Value().(*tap); ok && t.on && n > 0 {
		t.an.Feed(unsafe.Slice((*byte)(unsafe.Pointer(buf)), int(n)))
	}
}

// tapsURL reports whether an input is read through the tap: MPEG-TS over
// udp, srt and tcp, and files (local or http) named .ts, .trp or .m2t. RTP
// is not (FFmpeg's rtp demuxer unpacks it; the bytes are RTP, not TS), nor
// HLS (its segments are opened by the hls demuxer, not through this context).
func tapsURL(u string) bool {
	scheme, rest := "", u
	if i := strings.Index(u, "://"); i > 0 {
		scheme, rest = strings.ToLower(u[:i]), u[i+3:]
	} else if strings.HasPrefix(strings.ToLower(u), "file:") {
		scheme, rest = "file", u[5:]
	}
	switch scheme {
	case "udp", "srt", "tcp":
		return true
	case "", "file", "http", "https":
		if p, err := url.Parse("x://h/" + rest); err == nil && scheme != "" && scheme != "file" {
			rest = p.Path
		}
		switch strings.ToLower(path.Ext(rest)) {
		case ".ts", ".trp", ".m2t":
			return true
		}
	}
	return false
}

// openTap sets the format context up to read the input through the tap,
// when the sink wants transport checks and the input can carry MPEG-TS.
func (s *session) openTap() error {
	ts, ok := s.sink.(TransportSink)
	if !ok {
		return nil
	}
	lim, enabled := ts.TransportLimits()
	if !enabled || !tapsURL(s.o.URL) {
		return nil
	}
	t := &tap{an: transport.New(lim, ts, s.offset), on: true}
	t.handle = cgo.NewHandle(t)
	// The protocol's options, as avformat_open_input would have passed them on.
	d := astiav.NewDictionary()
	defer d.Free()
	s.setTimeouts(d)
	if s.o.Protocols != "" {
		if err := d.Set("protocol_whitelist", s.o.Protocols, 0); err != nil {
			t.handle.Delete()
			return fmt.Errorf("%w: protocol whitelist: %w", ErrInput, err)
		}
	}
	curl := C.CString(s.o.URL)
	defer C.free(unsafe.Pointer(curl))
	var code C.int
	// go-astiav's Dictionary holds its C pointer as its first field (see hotpath.go).
	t.pb = C.sq_tap_open((*C.AVFormatContext)(ptr(s.fc)), curl, (**C.AVDictionary)(unsafe.Pointer(d)), C.uintptr_t(t.handle), &code)
	if t.pb == nil {
		t.handle.Delete()
		return fmt.Errorf("%w: open %s: %w", ErrInput, redact(s.o.URL), avError(int(code)))
	}
	s.tap = t
	return nil
}

// tapOpened stops the analysis when the demuxer found no MPEG-TS after all.
func (s *session) tapOpened() {
	if s.tap == nil {
		return
	}
	if f := s.fc.InputFormat(); f == nil || f.Name() != "mpegts" {
		s.tap.on = false
	}
}

// closeTap ends the analysis (timers overdue at the end count) and frees the
// contexts; after the format context is closed, which leaves custom I/O alone.
func (s *session) closeTap() {
	if s.tap == nil {
		return
	}
	if s.tap.on {
		s.tap.an.Flush()
		// 192- and 204-byte packets never acquire sync: not checked, not "clean".
		s.info.Transport = s.info.Transport || s.tap.an.Packets() > 0
	}
	C.sq_tap_close(s.tap.pb)
	s.tap.handle.Delete()
	s.tap = nil
}
