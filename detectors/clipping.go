package detectors

// ClippingConfig sets the clipping detector: flat tops, that is runs of at
// least MinRun consecutive samples of one channel at or beyond Level (a share
// of full scale), recurring at least every MaxGap seconds for MinDuration.
//
// Clipping that went through a lossy codec (AAC, MP2) has no flat tops left:
// the decoder rebuilds them as ripple around full scale that overshoots it.
// A 10 ms window in which at least NearShare of the samples lie at NearLevel
// of full scale or beyond, and that either reaches Level (a float decoder
// overshoots full scale, an integer one saturates at it) or ripples there
// (at least MinRipple local extrema beyond the first of their excursion
// past NearLevel: what a codec makes of a flat top, often below full scale),
// counts like a flat top: programme
// that merely peaks near full scale (normalised, or brick-wall limited)
// passes it in one smooth hump, a clipped one piles up and ripples there.
type ClippingConfig struct {
	Enabled   bool    `json:"enabled"`
	Level     float64 `json:"level"`
	MinRun    int     `json:"min_run"`
	NearLevel float64 `json:"near_level"`
	NearShare float64 `json:"near_share"`
	MinRipple int     `json:"min_ripple"`
	MaxGap    float64 `json:"max_gap"`
	// NearGap is MaxGap after a lossy-clipping window: clipped speech
	// through a codec comes in syllables, with longer gaps than flat tops.
	NearGap     float64 `json:"near_gap"`
	MinDuration float64 `json:"min_duration"`
	// Lookback: clipped programme comes in bursts (syllables, drum hits).
	// A sequence that lasts MinDuration starts at the first clipped sample
	// of a sequence too short to count alone that ended at most Lookback
	// seconds before it: the clipping began there. It never raises alone.
	Lookback float64 `json:"lookback"`
}

// DefaultClippingConfig returns the documented defaults.
func DefaultClippingConfig() ClippingConfig {
	return ClippingConfig{Enabled: true, Level: 0.999, MinRun: 3, NearLevel: 0.9, NearShare: 0.05, MinRipple: 8, MaxGap: 0.1, NearGap: 0.5, MinDuration: 0.5, Lookback: 1}
}

// clipWindowRate: lossy-clipping windows per second (10 ms each).
const clipWindowRate = 100

// ClipWindow is the lossy-clipping feature of one 10 ms window, over all
// channels: samples at NearLevel of full scale or beyond, at Level or
// beyond, and local extrema at NearLevel or beyond.
type ClipWindow struct {
	Samples, Near, Full, Ripple int
	// First is the time of the first near-full-scale sample (valid when Near > 0).
	First float64
}

// Clipped reports whether the window piles up near full scale and reaches
// it or ripples there.
func (w ClipWindow) Clipped(nearShare float64, minRipple int) bool {
	return (w.Full > 0 || w.Ripple >= minRipple) && w.Samples > 0 && float64(w.Near) >= nearShare*float64(w.Samples)
}

// ClippingDetector is the clipping feature (flat-top runs) and decision.
type ClippingDetector struct {
	cfg     ClippingConfig
	level   float32
	dec     Decision
	count   []int     // current run length per channel
	prev    []float32 // per channel: the last sample and the slope into it
	slope   []float32
	ext     []int // per channel: extrema in the current excursion beyond NearLevel
	active  bool  // a sequence of runs is under way
	lastEnd float64
	runs    int // runs in the current sequence
	near    float32
	lossy   bool // the current sequence has lossy-clipping windows: NearGap applies
	win     ClipWindow
	winLen  int // samples per channel in the window so far
	// The current sequence began at seqStart; it is reported from
	// reportStart (an earlier short sequence, Lookback) once it has lasted
	// MinDuration (observed). prevStart and prevEnd are the last short sequence.
	seqStart, reportStart float64
	observed              bool
	prevStart, prevEnd    float64
	havePrev              bool
}

// NewClippingDetector returns a clipping detector emitting to emit.
func NewClippingDetector(cfg ClippingConfig, emit Emit) *ClippingDetector {
	d := &ClippingDetector{cfg: cfg, level: float32(cfg.Level), near: float32(cfg.NearLevel),
		count: make([]int, 8), prev: make([]float32, 8), slope: make([]float32, 8), ext: make([]int, 8)}
	d.cfg.MinRun = max(d.cfg.MinRun, 2)
	d.dec = Decision{Defect: Clipping, MinDuration: cfg.MinDuration, Emit: emit, Annotate: d.annotate}
	return d
}

// Audio consumes one block.
func (d *ClippingDetector) Audio(b *AudioBlock) {
	n := b.Len()
	if len(b.Samples) > len(d.count) {
		d.count = make([]int, len(b.Samples))
		d.prev, d.slope = make([]float32, len(b.Samples)), make([]float32, len(b.Samples))
		d.ext = make([]int, len(b.Samples))
	}
	sr := float64(b.SampleRate)
	winSamples := max(1, b.SampleRate/clipWindowRate)
	for i := 0; i < n; i++ {
		t := b.PTS + float64(i)/sr
		if d.active && t-d.lastEnd > d.gap() {
			d.endSequence()
		}
		for c, ch := range b.Samples {
			v := ch[i]
			// The previous sample is a local extremum where the slope turns;
			// every extremum of an excursion beyond NearLevel after its first
			// is ripple (a loud smooth wave has one per excursion).
			if p := d.prev[c]; (p >= d.near || p <= -d.near) && (v-p)*d.slope[c] <= 0 {
				if d.ext[c] > 0 {
					d.win.Ripple++
				}
				d.ext[c]++
			}
			if v < d.near && v > -d.near {
				d.ext[c] = 0
			}
			d.slope[c], d.prev[c] = v-d.prev[c], v
			if v >= d.near || v <= -d.near {
				if d.win.Near == 0 {
					d.win.First = t
				}
				d.win.Near++
				if v >= d.level || v <= -d.level {
					d.win.Full++
				}
			}
			if v < d.level && v > -d.level {
				d.count[c] = 0
				continue
			}
			d.count[c]++
			switch {
			case d.count[c] == d.cfg.MinRun:
				start := t - float64(d.cfg.MinRun-1)/sr
				if !d.active {
					d.runs, d.lossy = 0, false
					d.beginSequence(max(start, d.lastEnd))
				}
				d.runs++
				fallthrough
			case d.count[c] > d.cfg.MinRun:
				d.lastEnd = t + 1/sr
				d.advance()
			}
		}
		d.win.Samples += len(b.Samples)
		if d.winLen++; d.winLen == winSamples {
			d.window(t + 1/sr)
		}
	}
	if d.active && b.End()-d.lastEnd > d.gap() {
		d.endSequence()
	}
}

// gap is how long the current sequence may pause.
func (d *ClippingDetector) gap() float64 {
	if d.lossy {
		return max(d.cfg.MaxGap, d.cfg.NearGap)
	}
	return d.cfg.MaxGap
}

// window decides one lossy-clipping window ending at end: a clipped window
// counts as a flat top from its first near-full-scale sample to its end.
func (d *ClippingDetector) window(end float64) {
	if d.win.Clipped(d.cfg.NearShare, d.cfg.MinRipple) {
		if !d.active {
			d.runs = 0
			d.beginSequence(max(d.win.First, d.lastEnd))
		}
		d.runs++
		d.lossy = true
		d.lastEnd = max(d.lastEnd, end)
		d.advance()
	}
	d.win, d.winLen = ClipWindow{}, 0
}

// beginSequence starts a sequence of flat tops or clipped windows at start.
func (d *ClippingDetector) beginSequence(start float64) {
	d.active, d.observed = true, false
	d.seqStart, d.reportStart = start, start
	if d.havePrev && start-d.prevEnd <= d.cfg.Lookback+eps {
		// A chain of short bursts reaches back at most 2 x Lookback.
		d.reportStart = max(d.prevStart, start-2*d.cfg.Lookback)
	}
}

// advance tells the decision that the sequence reaches lastEnd: once it
// has lasted MinDuration it is observed from its report start.
func (d *ClippingDetector) advance() {
	if !d.observed && d.lastEnd-d.seqStart >= d.cfg.MinDuration-eps {
		d.observed = true
		d.dec.Observe(d.reportStart, true)
	}
	if d.observed {
		d.dec.Advance(d.lastEnd)
	}
}

// endSequence closes the current sequence at lastEnd.
func (d *ClippingDetector) endSequence() {
	d.active = false
	if d.observed {
		d.dec.Observe(d.lastEnd, false)
		d.havePrev = false
		return
	}
	// Too short to count: remembered for Lookback (from its own report
	// start, so that a chain of short bursts reaches back to the first).
	d.prevStart, d.prevEnd, d.havePrev = d.reportStart, d.lastEnd, true
}

// Flush ends the input at t.
func (d *ClippingDetector) Flush(t float64) {
	if d.active {
		d.endSequence()
	}
	d.dec.Flush(t)
}

func (d *ClippingDetector) annotate(e *Event) {
	e.Values = map[string]float64{"flat_tops": float64(d.runs)}
}
