package detectors

import "math"

// SilenceConfig sets the silence detector: every channel below Threshold dBFS
// (sample peak, as FFmpeg's silencedetect compares each sample) for MinDuration.
type SilenceConfig struct {
	Enabled     bool    `json:"enabled"`
	Threshold   float64 `json:"threshold_db"`
	MinDuration float64 `json:"min_duration"`
}

// DefaultSilenceConfig returns the documented defaults.
func DefaultSilenceConfig() SilenceConfig {
	return SilenceConfig{Enabled: true, Threshold: -60, MinDuration: 2}
}

// SilenceDetector finds runs of samples below the threshold on every channel,
// to the sample: its feature is the time of each quiet/loud transition.
type SilenceDetector struct {
	amp   float32
	dec   Decision
	quiet bool
	first bool
}

// NewSilenceDetector returns a silence detector emitting to emit.
func NewSilenceDetector(cfg SilenceConfig, emit Emit) *SilenceDetector {
	return &SilenceDetector{
		amp:   float32(math.Pow(10, cfg.Threshold/20)),
		dec:   Decision{Defect: Silence, MinDuration: cfg.MinDuration, Emit: emit},
		first: true,
	}
}

// Audio consumes one block.
func (d *SilenceDetector) Audio(b *AudioBlock) {
	n := b.Len()
	if n == 0 {
		return
	}
	sr := float64(b.SampleRate)
	for i := 0; i < n; i++ {
		loud := false
		for _, ch := range b.Samples {
			if v := ch[i]; v > d.amp || v < -d.amp {
				loud = true
				break
			}
		}
		if d.first || loud == d.quiet {
			d.first, d.quiet = false, !loud
			d.dec.Observe(b.PTS+float64(i)/sr, d.quiet)
		}
	}
	d.dec.Advance(b.End())
}

// Flush ends the input at t.
func (d *SilenceDetector) Flush(t float64) { d.dec.Flush(t) }
