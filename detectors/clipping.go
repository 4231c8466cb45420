package detectors

// ClippingConfig sets the clipping detector: flat tops, that is runs of at
// least MinRun consecutive samples of one channel at or beyond Level (a share
// of full scale), recurring at least every MaxGap seconds for MinDuration.
type ClippingConfig struct {
	Enabled     bool    `json:"enabled"`
	Level       float64 `json:"level"`
	MinRun      int     `json:"min_run"`
	MaxGap      float64 `json:"max_gap"`
	MinDuration float64 `json:"min_duration"`
}

// DefaultClippingConfig returns the documented defaults.
func DefaultClippingConfig() ClippingConfig {
	return ClippingConfig{Enabled: true, Level: 0.999, MinRun: 3, MaxGap: 0.1, MinDuration: 0.5}
}

// ClippingDetector is the clipping feature (flat-top runs) and decision.
type ClippingDetector struct {
	cfg     ClippingConfig
	level   float32
	dec     Decision
	count   []int // current run length per channel
	active  bool  // a sequence of runs is under way
	lastEnd float64
	runs    int // runs in the current sequence
}

// NewClippingDetector returns a clipping detector emitting to emit.
func NewClippingDetector(cfg ClippingConfig, emit Emit) *ClippingDetector {
	d := &ClippingDetector{cfg: cfg, level: float32(cfg.Level), count: make([]int, 8)}
	d.cfg.MinRun = max(d.cfg.MinRun, 2)
	d.dec = Decision{Defect: Clipping, MinDuration: cfg.MinDuration, Emit: emit, Annotate: d.annotate}
	return d
}

// Audio consumes one block.
func (d *ClippingDetector) Audio(b *AudioBlock) {
	n := b.Len()
	if len(b.Samples) > len(d.count) {
		d.count = make([]int, len(b.Samples))
	}
	sr := float64(b.SampleRate)
	for i := 0; i < n; i++ {
		t := b.PTS + float64(i)/sr
		if d.active && t-d.lastEnd > d.cfg.MaxGap {
			d.active = false
			d.dec.Observe(d.lastEnd, false)
		}
		for c, ch := range b.Samples {
			v := ch[i]
			if v < d.level && v > -d.level {
				d.count[c] = 0
				continue
			}
			d.count[c]++
			switch {
			case d.count[c] == d.cfg.MinRun:
				start := t - float64(d.cfg.MinRun-1)/sr
				if !d.active {
					d.active, d.runs = true, 0
					d.dec.Observe(max(start, d.lastEnd), true)
				}
				d.runs++
				fallthrough
			case d.count[c] > d.cfg.MinRun:
				d.lastEnd = t + 1/sr
				d.dec.Advance(d.lastEnd)
			}
		}
	}
	if d.active && b.End()-d.lastEnd > d.cfg.MaxGap {
		d.active = false
		d.dec.Observe(d.lastEnd, false)
	}
}

// Flush ends the input at t.
func (d *ClippingDetector) Flush(t float64) {
	if d.active {
		d.active = false
		d.dec.Observe(d.lastEnd, false)
	}
	d.dec.Flush(t)
}

func (d *ClippingDetector) annotate(e *Event) {
	e.Values = map[string]float64{"flat_tops": float64(d.runs)}
}
