package detectors

// DecodeErrorConfig sets the decode error detector: errors the decoder
// returns or logs, frames it flags as corrupt and packets the demuxer flags
// as corrupt. One burst of errors is one alarm: it clears after ClearAfter
// seconds of clean frames.
type DecodeErrorConfig struct {
	Enabled    bool    `json:"enabled"`
	ClearAfter float64 `json:"clear_after"`
}

// DefaultDecodeErrorConfig returns the documented defaults.
func DefaultDecodeErrorConfig() DecodeErrorConfig {
	return DecodeErrorConfig{Enabled: true, ClearAfter: 1}
}

// DecodeErrorDetector is the decode error decision.
type DecodeErrorDetector struct {
	dec    Decision
	errors int // errors in the current alarm
	total  int
	last   string
}

// NewDecodeErrorDetector returns a decode error detector emitting to emit.
func NewDecodeErrorDetector(cfg DecodeErrorConfig, emit Emit) *DecodeErrorDetector {
	d := &DecodeErrorDetector{}
	d.dec = Decision{Defect: DecodeError, ClearAfter: cfg.ClearAfter, Emit: emit, Annotate: d.annotate}
	return d
}

// Error records one error at media time t; reason is kept for the event and
// must not be built per call by the caller on a hot path.
func (d *DecodeErrorDetector) Error(t float64, reason string) {
	if !d.dec.Raised() {
		d.errors = 0
	}
	d.errors++
	d.total++
	d.last = reason
	d.dec.Observe(t, true)
}

// Frame records a decoded frame at t; corrupt frames count as errors.
func (d *DecodeErrorDetector) Frame(t, dur float64, corrupt bool) {
	if corrupt {
		d.Error(t, "corrupt frame")
	} else {
		d.dec.Observe(t, false)
	}
	d.dec.Advance(t + dur)
}

// Total returns the number of errors seen.
func (d *DecodeErrorDetector) Total() int { return d.total }

// Flush ends the input at t.
func (d *DecodeErrorDetector) Flush(t float64) { d.dec.Flush(t) }

func (d *DecodeErrorDetector) annotate(e *Event) {
	e.Reason = d.last
	e.Values = map[string]float64{"errors": float64(d.errors)}
}
