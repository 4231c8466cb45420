package detectors

// SignalLossConfig sets the signal loss detector: a track the stream should
// carry is missing, or no packets or frames arrived for Timeout seconds (a
// stalled live input, or a gap in the media timeline).
type SignalLossConfig struct {
	Enabled      bool    `json:"enabled"`
	Timeout      float64 `json:"timeout"`
	RequireVideo bool    `json:"require_video"`
	RequireAudio bool    `json:"require_audio"`
}

// DefaultSignalLossConfig returns the documented defaults.
func DefaultSignalLossConfig() SignalLossConfig {
	return SignalLossConfig{Enabled: true, Timeout: 2, RequireVideo: true, RequireAudio: true}
}

// SignalLossDetector keeps one decision per cause, so that a missing track
// and a stall are reported (and cleared) independently.
type SignalLossDetector struct {
	cfg     SignalLossConfig
	emit    Emit
	video   Decision // video track missing
	audio   Decision // audio track missing
	stall   Decision // nothing arrived for Timeout
	lastEnd [2]float64
	seen    [2]bool
	covered float64 // end of the last gap reported: a gap both tracks share is one loss
}

// NewSignalLossDetector returns a signal loss detector emitting to emit.
func NewSignalLossDetector(cfg SignalLossConfig, emit Emit) *SignalLossDetector {
	d := &SignalLossDetector{cfg: cfg, emit: emit}
	d.video = Decision{Defect: SignalLoss, Emit: emit, Annotate: func(e *Event) { e.Reason = "no video track" }}
	d.audio = Decision{Defect: SignalLoss, Emit: emit, Annotate: func(e *Event) { e.Reason = "no audio track" }}
	d.stall = Decision{Defect: SignalLoss, Emit: emit, Annotate: func(e *Event) { e.Reason = "no data" }}
	return d
}

// Tracks reports at time t which tracks the input carries.
func (d *SignalLossDetector) Tracks(t float64, hasVideo, hasAudio bool) {
	if d.cfg.RequireVideo {
		d.video.Observe(t, !hasVideo)
	}
	if d.cfg.RequireAudio {
		d.audio.Observe(t, !hasAudio)
	}
}

// Frame records a decoded frame or block of one track (0 video, 1 audio)
// spanning [t, end): a jump in the media timeline longer than Timeout is a loss.
func (d *SignalLossDetector) Frame(track int, t, end float64) {
	if d.seen[track] && t-d.lastEnd[track] > d.cfg.Timeout && d.lastEnd[track] >= d.covered {
		d.stall.Observe(d.lastEnd[track], true)
		d.stall.Observe(t, false)
		d.covered = max(d.covered, t)
	}
	d.seen[track] = true
	d.lastEnd[track] = max(d.lastEnd[track], end)
}

// Stall reports that nothing has arrived since media time t for Timeout of wall time.
func (d *SignalLossDetector) Stall(t float64) { d.stall.Observe(t, true) }

// Resume reports that data flows again from media time t.
func (d *SignalLossDetector) Resume(t float64) {
	d.stall.Observe(t, false)
	d.lastEnd = [2]float64{t, t}
}

// Flush ends the input at t.
func (d *SignalLossDetector) Flush(t float64) {
	d.video.Flush(t)
	d.audio.Flush(t)
	d.stall.Flush(t)
}
