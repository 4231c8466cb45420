package supervisor

import (
	"math"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/transport"
)

// meter sits between the decoder and the analyzer of one stream session and
// keeps the counters metrics read from another goroutine: atomics only, no
// allocation per frame.
type meter struct {
	st      *stream
	an      *detectors.Analyzer
	onFirst func()
	started bool
	wall0   time.Time
	media0  float64
	// cur is the picture the analyzer is measuring, for the thumbnail of
	// an alarm it raises; nil between pictures.
	cur *detectors.VideoFrame
}

func (m *meter) first(t float64) {
	m.st.stalled.Store(false)
	if m.started {
		return
	}
	m.started = true
	m.wall0, m.media0 = time.Now(), t
	m.onFirst()
}

// lag is how far media time trails the wall clock since the session's first
// frame: meaningful for live and paced inputs only.
func (m *meter) lag(t float64) {
	if m.st.live {
		l := time.Since(m.wall0).Seconds() - (t - m.media0)
		m.st.lagBits.Store(math.Float64bits(l))
	}
}

func (m *meter) Tracks(t float64, hasVideo, hasAudio bool) { m.an.Tracks(t, hasVideo, hasAudio) }

func (m *meter) Video(cur, ref *detectors.VideoFrame) bool {
	m.first(cur.PTS)
	m.cur = cur
	keep := m.an.Video(cur, ref)
	m.cur = nil
	if m.st.cam != nil {
		m.st.cam.Picture(cur)
	}
	m.st.frames.Add(1)
	m.lag(cur.PTS)
	return keep
}

func (m *meter) Audio(b *detectors.AudioBlock) {
	m.first(b.PTS)
	m.an.Audio(b)
	m.st.blocks.Add(1)
	mo, sh := m.an.Loudness()
	m.st.momentary.Store(math.Float64bits(mo))
	m.st.short.Store(math.Float64bits(sh))
}

func (m *meter) Packet(track detectors.Track, t float64, corrupt bool) {
	m.an.Packet(track, t, corrupt)
}

func (m *meter) DecodeError(t float64, reason string) { m.an.DecodeError(t, reason) }

// TransportLimits, TransportError and TransportTime make the meter a
// media.TransportSink: MPEG-TS inputs' TR 101 290 errors, counted for metrics.
func (m *meter) TransportLimits() (transport.Limits, bool) { return m.an.TransportLimits() }

func (m *meter) TransportError(ind transport.Indicator, pid uint16, t float64, n int64) {
	m.st.ts.Store(true)
	if ind < transport.NumIndicators {
		m.st.tr[ind].Add(n)
	}
	m.an.TransportError(ind, pid, t, n)
}

func (m *meter) TransportTime(t float64) {
	m.st.ts.Store(true)
	m.an.TransportTime(t)
}
func (m *meter) Stall(t float64) {
	m.st.stalled.Store(true)
	m.an.Stall(t)
}
func (m *meter) Resume(t float64) { m.an.Resume(t) }
