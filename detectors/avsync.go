package detectors

import "math"

// AVSyncConfig sets the A/V sync detector. Two measurements feed it:
//   - a flash+beep sync pattern (a white frame and a tone burst meant to be
//     simultaneous): offset_ms = flash time - beep time, so positive means
//     audio early; outside [-MaxLateMs, +MaxEarlyMs] (ITU-R BT.1359: +45/-125)
//     is a defect;
//   - the skew between the audio and video timestamps as packets arrive:
//     beyond MaxSkew seconds the tracks cannot be played in sync.
type AVSyncConfig struct {
	Enabled     bool    `json:"enabled"`
	MaxEarlyMs  float64 `json:"max_early_ms"`
	MaxLateMs   float64 `json:"max_late_ms"`
	MaxSkew     float64 `json:"max_skew"`
	MinDuration float64 `json:"min_duration"`
	// FlashLevel is the mean luma (share of range) a flash frame reaches,
	// rising by at least 0.3 from the frame before; BeepLevel the sample peak
	// that starts a beep after at least 200 ms below a tenth of it.
	FlashLevel float64 `json:"flash_level"`
	BeepLevel  float64 `json:"beep_level"`
}

// DefaultAVSyncConfig returns the documented defaults.
func DefaultAVSyncConfig() AVSyncConfig {
	return AVSyncConfig{Enabled: true, MaxEarlyMs: 45, MaxLateMs: 125, MaxSkew: 1.5, MinDuration: 0, FlashLevel: 0.8, BeepLevel: 0.05}
}

// flashRise is the rise of mean luma, from one frame to the next, of a flash.
const flashRise = 0.3

// pairWindow is how far apart a flash and a beep may be and still be paired.
const pairWindow = 0.5

// AVSyncDetector measures and decides A/V sync.
type AVSyncDetector struct {
	cfg        AVSyncConfig
	pattern    Decision
	skew       Decision
	prevLuma   float64
	flashes    ring
	beeps      ring
	quietSince float64
	inBeep     bool
	audioT     float64 // media time reached by each track
	videoT     float64
	offset     float64 // last measured offset, ms
	worst      float64
	lastAudio  float64 // last packet timestamps, for the skew
	lastVideo  float64
	videoAtA   float64 // lastVideo when the last audio packet came
	seen       uint8
	skewNow    float64
	skewWorst  float64
}

// ring is a tiny fixed queue of pending event times.
type ring struct {
	t    [8]float64
	n, i int
}

func (r *ring) push(t float64) {
	if r.n == len(r.t) {
		r.i = (r.i + 1) % len(r.t)
		r.n--
	}
	r.t[(r.i+r.n)%len(r.t)] = t
	r.n++
}
func (r *ring) front() float64 { return r.t[r.i] }
func (r *ring) pop()           { r.i = (r.i + 1) % len(r.t); r.n-- }

// NewAVSyncDetector returns an A/V sync detector emitting to emit.
func NewAVSyncDetector(cfg AVSyncConfig, emit Emit) *AVSyncDetector {
	d := &AVSyncDetector{cfg: cfg, prevLuma: 1, quietSince: math.Inf(-1)}
	d.pattern = Decision{Defect: AVSync, MinDuration: cfg.MinDuration, Emit: emit, Annotate: d.annotatePattern}
	d.skew = Decision{Defect: AVSync, MinDuration: 2, Emit: emit, Annotate: d.annotateSkew}
	return d
}

// Video consumes a frame's mean luma (from the black feature).
func (d *AVSyncDetector) Video(t, dur, meanLuma float64) {
	if meanLuma >= d.cfg.FlashLevel && meanLuma-d.prevLuma >= flashRise {
		d.flashes.push(t)
	}
	d.prevLuma = meanLuma
	d.videoT = t + dur
	d.pair()
}

// Audio consumes one block, looking for beep onsets to the sample.
func (d *AVSyncDetector) Audio(b *AudioBlock) {
	n := b.Len()
	sr := float64(b.SampleRate)
	hi, lo := float32(d.cfg.BeepLevel), float32(d.cfg.BeepLevel/10)
	for i := 0; i < n; i++ {
		var peak float32
		for _, ch := range b.Samples {
			peak = max(peak, ch[i], -ch[i])
		}
		t := b.PTS + float64(i)/sr
		switch {
		case peak >= hi:
			if !d.inBeep && t-d.quietSince >= 0.2 {
				d.beeps.push(t)
			}
			d.inBeep = true
			d.quietSince = math.Inf(1)
		case peak < lo:
			if d.inBeep || math.IsInf(d.quietSince, 1) {
				d.inBeep, d.quietSince = false, t
			}
		}
	}
	d.audioT = b.End()
	d.pair()
}

// pair matches flashes with beeps in time order; unmatched ones expire once
// both tracks have moved past the pairing window.
func (d *AVSyncDetector) pair() {
	for d.flashes.n > 0 {
		f := d.flashes.front()
		for d.beeps.n > 0 && d.beeps.front() < f-pairWindow {
			d.beeps.pop()
		}
		if d.beeps.n > 0 && d.beeps.front() <= f+pairWindow {
			b := d.beeps.front()
			d.flashes.pop()
			d.beeps.pop()
			d.offset = (f - b) * 1000
			bad := d.offset > d.cfg.MaxEarlyMs || d.offset < -d.cfg.MaxLateMs
			if bad {
				if on, _ := d.pattern.Pending(); !on {
					d.worst = 0
				}
				if math.Abs(d.offset) > math.Abs(d.worst) {
					d.worst = d.offset
				}
			}
			d.pattern.Observe(f, bad)
			continue
		}
		if d.audioT > f+pairWindow {
			d.flashes.pop() // a flash with no beep: not a sync pattern
			continue
		}
		break
	}
	for d.beeps.n > 0 && d.videoT > d.beeps.front()+pairWindow && (d.flashes.n == 0 || d.flashes.front() > d.beeps.front()+pairWindow) {
		d.beeps.pop()
	}
}

// Packet consumes a demuxed packet's timestamp (seconds) for the skew check.
func (d *AVSyncDetector) Packet(video bool, t float64) {
	if video {
		d.lastVideo, d.seen = t, d.seen|1
	} else {
		d.lastAudio, d.videoAtA, d.seen = t, d.lastVideo, d.seen|2
	}
	if d.seen != 3 || !video {
		return
	}
	d.skewNow = d.lastAudio - d.lastVideo
	// Only while audio still flows: a track that ended is not out of sync.
	flowing := d.lastVideo-d.videoAtA <= d.cfg.MaxSkew
	bad := flowing && math.Abs(d.skewNow) > d.cfg.MaxSkew
	if bad {
		if on, _ := d.skew.Pending(); !on {
			d.skewWorst = 0
		}
		if math.Abs(d.skewNow) > math.Abs(d.skewWorst) {
			d.skewWorst = d.skewNow
		}
	}
	d.skew.Observe(t, bad)
}

// Flush ends the input at t.
func (d *AVSyncDetector) Flush(t float64) {
	d.pattern.Flush(t)
	d.skew.Flush(t)
}

func (d *AVSyncDetector) annotatePattern(e *Event) {
	e.Reason = "sync pattern"
	e.Values = map[string]float64{"offset_ms": math.Round(d.worst)}
}

func (d *AVSyncDetector) annotateSkew(e *Event) {
	e.Reason = "timestamp skew"
	e.Values = map[string]float64{"skew_ms": math.Round(d.skewWorst * 1000)}
}
