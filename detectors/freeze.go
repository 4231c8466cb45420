package detectors

import (
	"encoding/binary"
	"math"
)

// FreezeConfig sets the freeze detector. The default noise floor matches
// FFmpeg's freezedetect (-60 dB of the luma range, 2 s): a static shot with
// sensor noise changes by more than that between frames, a repeated one does not.
type FreezeConfig struct {
	Enabled bool `json:"enabled"`
	// Noise is the mean absolute luma difference to the previous frame, as a
	// share of the nominal range, at or below which a frame repeats its predecessor.
	Noise float64 `json:"noise"`
	// KeyFrameNoise is the larger difference tolerated on a key frame inside a
	// freeze: an encoder fed a frozen picture re-codes it at every key frame.
	KeyFrameNoise float64 `json:"keyframe_noise"`
	MinDuration   float64 `json:"min_duration"`
}

// DefaultFreezeConfig returns the documented defaults.
func DefaultFreezeConfig() FreezeConfig {
	return FreezeConfig{Enabled: true, Noise: 0.001, KeyFrameNoise: 0.02, MinDuration: 2}
}

// FreezeFeature is the per-frame difference to the freeze reference: the
// first picture of the current still run.
type FreezeFeature struct {
	// Valid is false for the first frame (nothing to compare with) and after a
	// change of picture size.
	Valid bool
	// Pixels is the number of luma samples compared and SAD their summed
	// absolute difference, in 8-bit units.
	Pixels int
	SAD    uint64
}

// MAD is the mean absolute difference as a share of the nominal luma range.
func (f FreezeFeature) MAD(rangeLevels int) float64 {
	if f.Pixels == 0 || rangeLevels == 0 {
		return 0
	}
	return float64(f.SAD) / float64(f.Pixels) / float64(rangeLevels)
}

// MeasureFreeze compares every rowStep-th row of cur with the reference prev.
func MeasureFreeze(cur, prev *VideoFrame, rowStep int, out *FreezeFeature) {
	*out = FreezeFeature{}
	if prev == nil || prev.Width != cur.Width || prev.Height != cur.Height || prev.BitDepth != cur.BitDepth || len(prev.Y) == 0 {
		return
	}
	if rowStep < 1 {
		rowStep = 1
	}
	out.Valid = true
	var sad uint64
	for y := 0; y < cur.Height; y += rowStep {
		a := cur.Y[y*cur.Stride:]
		b := prev.Y[y*prev.Stride:]
		if cur.BitDepth > 8 {
			var s int
			for x := 0; x < cur.Width; x++ {
				s += absDiff(sample16(a, x), sample16(b, x))
			}
			sad += uint64(s >> uint(cur.BitDepth-8))
		} else {
			sad += sadRow(a[:cur.Width], b[:cur.Width])
		}
		out.Pixels += cur.Width
	}
	out.SAD = sad
}

// sadRow sums |a[i]-b[i]|, four samples per 16-bit-lane word operation
// (SWAR): each lane holds 256+a-b, so no borrow crosses lanes, and the sign
// sits in bit 8.
func sadRow(a, b []byte) uint64 {
	const (
		m16 = 0x00ff00ff00ff00ff
		h16 = 0x0100010001000100
		l16 = 0x0001000100010001
	)
	b = b[:len(a)]
	var sum, acc uint64
	k := 0
	for len(a) >= 8 {
		x, y := binary.LittleEndian.Uint64(a), binary.LittleEndian.Uint64(b)
		a, b = a[8:], b[8:]
		t := ((x & m16) | h16) - (y & m16)
		neg := ((t >> 8) & l16) ^ l16
		acc += ((t ^ (neg * 0xff)) & m16) + neg
		t = (((x >> 8) & m16) | h16) - ((y >> 8) & m16)
		neg = ((t >> 8) & l16) ^ l16
		acc += ((t ^ (neg * 0xff)) & m16) + neg
		if k++; k == 128 { // lanes grow by at most 510 a word
			sum += fold16(acc)
			acc, k = 0, 0
		}
	}
	sum += fold16(acc)
	for i := range a {
		sum += uint64(absDiff(int(a[i]), int(b[i])))
	}
	return sum
}

// FreezeDetector is the freeze decision.
type FreezeDetector struct {
	cfg    FreezeConfig
	dec    Decision
	maxMAD float64 // largest difference inside the current run
}

// NewFreezeDetector returns a freeze decision emitting to emit.
func NewFreezeDetector(cfg FreezeConfig, emit Emit) *FreezeDetector {
	d := &FreezeDetector{cfg: cfg}
	d.dec = Decision{Defect: Freeze, MinDuration: cfg.MinDuration, Emit: emit, Annotate: d.annotate}
	return d
}

// Video consumes one frame's feature; refT is the time of the reference
// picture it was compared with, and rangeLevels the nominal luma range in
// 8-bit levels (219 or 255). A freeze starts at the reference picture: the
// picture stands still from its own display time (FFmpeg's freezedetect
// counts the same way). It returns whether the reference picture
// stays the reference: yes while the picture stands still, no when it moved
// or when a key frame re-coded the still picture (the re-coded one becomes
// the reference, so the frames after it compare with what they repeat).
func (d *FreezeDetector) Video(t, dur, refT float64, keyFrame bool, rangeLevels int, f *FreezeFeature) (keepRef bool) {
	if !f.Valid {
		d.dec.Observe(t, false)
		d.dec.Advance(t + dur)
		return false
	}
	mad := f.MAD(rangeLevels)
	inRun, _ := d.dec.Pending()
	still := mad <= d.cfg.Noise
	recoded := !still && inRun && keyFrame && mad <= d.cfg.KeyFrameNoise
	bad := still || recoded
	if bad && !inRun {
		d.maxMAD = 0
		d.dec.Observe(refT, true)
	}
	if bad {
		d.maxMAD = max(d.maxMAD, mad)
	}
	d.dec.Observe(t, bad)
	d.dec.Advance(t + dur)
	return still
}

// Suppress counts a frame as moving without measuring it (a black frame:
// black is reported instead of freeze). Safe on a nil detector.
func (d *FreezeDetector) Suppress(t, dur float64) {
	if d == nil {
		return
	}
	d.dec.Observe(t, false)
	d.dec.Advance(t + dur)
}

// Flush ends the input at t.
func (d *FreezeDetector) Flush(t float64) { d.dec.Flush(t) }

func (d *FreezeDetector) annotate(e *Event) {
	e.Values = map[string]float64{"max_difference": math.Round(d.maxMAD*1e6) / 1e6}
}
