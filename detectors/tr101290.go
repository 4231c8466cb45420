package detectors

import (
	"math"

	"github.com/streamqc/streamqc/transport"
)

// TR101290Config sets the MPEG-TS transport checks (ETSI TR 101 290 priority
// 1 and 2; package transport counts, this decides). Each indicator is its own
// alarm: an error makes its indicator bad for the second after it (an errored
// second); the alarm is raised once the indicator has been bad for
// MinDuration and cleared after ClearAfter without errors, the shared
// Decision of every detector. With the defaults, one lost packet an hour is
// counted and never raised; errors in every second for 2 s are.
// Timings are seconds; 0 disables that check.
type TR101290Config struct {
	Enabled          bool    `json:"enabled"`
	MinDuration      float64 `json:"min_duration"`
	ClearAfter       float64 `json:"clear_after"`
	PATInterval      float64 `json:"pat_interval"`      // 1.3: a PAT at least this often
	PMTInterval      float64 `json:"pmt_interval"`      // 1.5: each PMT at least this often
	PIDInterval      float64 `json:"pid_interval"`      // 1.6: each PID a PMT lists at least this often
	PCRRepetition    float64 `json:"pcr_repetition"`    // 2.3a: PCRs at least this often
	PCRDiscontinuity float64 `json:"pcr_discontinuity"` // 2.3b: consecutive PCRs at most this far apart unless flagged
	PCRAccuracyNs    float64 `json:"pcr_accuracy_ns"`   // 2.4: PCR off its byte position by at most this, in ns
	PTSInterval      float64 `json:"pts_interval"`      // 2.5: each audio/video PTS at least this often
	CATInterval      float64 `json:"cat_interval"`      // 2.6: one error per this period while scrambled without a CAT
}

// DefaultPCRRepetition is the default 2.3a limit: ISO/IEC 13818-1's 100 ms
// (the decoder's own requirement) rather than DVB's 40 ms, which common
// encoders and FFmpeg's muxer (about 80 ms in its variable-rate mode) exceed
// on streams that play perfectly: an alarm that stays raised on a healthy
// stream teaches operators to ignore the dashboard. A DVB network sets
// pcr_repetition to 0.04.
const DefaultPCRRepetition = 0.1

// DefaultTR101290Config returns TR 101 290's timings (2.3a: ISO 13818-1's,
// DefaultPCRRepetition) and the documented decision.
func DefaultTR101290Config() TR101290Config {
	l := transport.DefaultLimits()
	return TR101290Config{Enabled: true, MinDuration: 2, ClearAfter: 2,
		PATInterval: l.PAT, PMTInterval: l.PMT, PIDInterval: l.PID, PCRRepetition: DefaultPCRRepetition,
		PCRDiscontinuity: l.PCRDiscontinuity, PCRAccuracyNs: math.Round(l.PCRAccuracy * 1e9), PTSInterval: l.PTS, CATInterval: l.CAT}
}

// Limits returns the timings as the transport analyzer takes them.
func (c TR101290Config) Limits() transport.Limits {
	return transport.Limits{PAT: c.PATInterval, PMT: c.PMTInterval, PID: c.PIDInterval,
		PCRRepetition: c.PCRRepetition, PCRDiscontinuity: c.PCRDiscontinuity, PCRAccuracy: c.PCRAccuracyNs / 1e9,
		PTS: c.PTSInterval, CAT: c.CATInterval}
}

func (c TR101290Config) validate(check func(bool, string, string)) {
	check(c.MinDuration >= 0 && c.MinDuration <= 86400, "tr101290.min_duration", "must be in [0, 86400] seconds")
	check(c.ClearAfter >= 0 && c.ClearAfter <= 86400, "tr101290.clear_after", "must be in [0, 86400] seconds")
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"pat_interval", c.PATInterval}, {"pmt_interval", c.PMTInterval}, {"pid_interval", c.PIDInterval},
		{"pcr_repetition", c.PCRRepetition}, {"pcr_discontinuity", c.PCRDiscontinuity},
		{"pts_interval", c.PTSInterval}, {"cat_interval", c.CATInterval},
	} {
		check(f.v >= 0 && f.v <= 3600, "tr101290."+f.name, "must be in [0, 3600] seconds (0: off)")
	}
	check(c.PCRAccuracyNs >= 0 && c.PCRAccuracyNs <= 1e9, "tr101290.pcr_accuracy_ns", "must be in [0, 1e9] ns (0: off)")
}

// erroredSecond is how long one error keeps its indicator bad.
const erroredSecond = 1.0

// indicatorState is the decision of one indicator.
type indicatorState struct {
	dec     Decision
	bad     bool
	lastErr float64
	errors  int64 // in the current run
	pid     uint16
	now     float64
}

// expire ends the errored second of the last error once t is past it.
func (s *indicatorState) expire(t float64) {
	if s.bad && t >= s.lastErr+erroredSecond-eps {
		s.dec.Observe(s.lastErr+erroredSecond, false)
		s.bad = false
	}
}

// TR101290Detector turns the transport analyzer's errors into tr101290 alarms.
type TR101290Detector struct {
	ind    [transport.NumIndicators]indicatorState
	counts transport.Counts
	now    float64
}

// NewTR101290Detector returns a detector emitting to emit.
func NewTR101290Detector(cfg TR101290Config, emit Emit) *TR101290Detector {
	d := &TR101290Detector{}
	for i := range d.ind {
		s := &d.ind[i]
		reason := transport.Indicator(i).String()
		s.dec = Decision{Defect: TR101290, MinDuration: cfg.MinDuration, ClearAfter: cfg.ClearAfter, Emit: emit,
			Annotate: func(e *Event) {
				e.Reason = reason
				end := s.now
				if e.State == Cleared {
					end = e.End
				}
				e.Values = map[string]float64{"pid": float64(s.pid), "errors": float64(s.errors),
					"errors_per_second": float64(s.errors) / max(end-e.Start, erroredSecond)}
			}}
	}
	return d
}

// Error records n errors of an indicator, the last at t, on a PID.
func (d *TR101290Detector) Error(ind transport.Indicator, pid uint16, t float64, n int64) {
	if ind >= transport.NumIndicators || n <= 0 {
		return
	}
	d.counts[ind] += n
	d.now = max(d.now, t)
	s := &d.ind[ind]
	s.now = max(s.now, t)
	s.expire(t)
	if pending, _ := s.dec.Pending(); !pending {
		s.errors = 0
	}
	s.errors += n
	s.pid = pid
	if !s.bad {
		s.dec.Observe(t, true)
		s.bad = true
	}
	s.lastErr = t
	s.dec.Advance(t)
}

// Time tells the detector the transport's clock reached t.
func (d *TR101290Detector) Time(t float64) {
	d.now = max(d.now, t)
	for i := range d.ind {
		s := &d.ind[i]
		s.now = max(s.now, t)
		s.expire(t)
		s.dec.Advance(t)
	}
}

// Flush ends the input at t (or the transport's last time, if later).
func (d *TR101290Detector) Flush(t float64) {
	t = max(t, d.now)
	for i := range d.ind {
		s := &d.ind[i]
		s.now = max(s.now, t)
		s.expire(t)
		s.dec.Flush(t)
	}
}

// Counts returns the errors of each indicator so far.
func (d *TR101290Detector) Counts() transport.Counts { return d.counts }
