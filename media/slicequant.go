package media

import (
	"unsafe"

	"github.com/streamqc/streamqc/media/hevc"
)

// sliceQuant gives HEVC pictures the quantizer their slice headers carry
// (media/hevc): FFmpeg 5.1's HEVC decoder exports no quantizers, and no
// hardware decoder does, so without it a starved HEVC encode shows only in
// its pixels. Each packet is read just before it is decoded; its picture's
// value waits in a small ring, keyed by presentation timestamp, until the
// decoder outputs that picture (in display order, B-frames reordered).
type sliceQuant struct {
	p          hevc.Parser
	lengthSize int // NAL length prefix of the packets (hvcC), 0: Annex B
	ring       [32]quantAt
	next       int
}

// quantAt is one decoded-but-not-yet-output picture's quantizer (set
// until the picture takes it).
type quantAt struct {
	pts int64
	qp  int
	set bool
}

// newSliceQuant reads the stream's extradata (an hvcC record or Annex B
// parameter sets, possibly none: in-band parameter sets are read as they
// come). An error says which parameter set could not be read; the others,
// and the packets' NAL length size, are kept all the same.
func newSliceQuant(extradata []byte) (*sliceQuant, error) {
	q := &sliceQuant{}
	var err error
	if len(extradata) > 0 {
		q.lengthSize, err = q.p.Extradata(extradata)
	}
	return q, err
}

// packet reads one packet in place (data points into the AVPacket; nothing
// is kept). A packet without a timestamp or without a readable slice header
// leaves no value: its picture gets no quantizer rather than a guess.
func (q *sliceQuant) packet(data unsafe.Pointer, size int, pts int64, noPts int64) {
	if data == nil || size <= 0 || pts == noPts {
		return
	}
	qp, ok := q.p.Packet(unsafe.Slice((*byte)(data), size), q.lengthSize)
	if !ok {
		return
	}
	q.ring[q.next] = quantAt{pts: pts, qp: qp, set: true}
	q.next = (q.next + 1) % len(q.ring)
}

// take returns, once, the quantizer of the picture shown at pts.
func (q *sliceQuant) take(pts int64) (float64, bool) {
	for i := range q.ring {
		if e := &q.ring[i]; e.set && e.pts == pts {
			e.set = false
			return float64(e.qp), true
		}
	}
	return 0, false
}
