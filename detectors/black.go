package detectors

import (
	"encoding/binary"
	"math/bits"
)

// BlackConfig sets the black detector. Defaults follow FFmpeg's blackdetect
// (pix_th 0.10, pic_th 0.98, d 2 s) with one addition: a frame whose centre
// shows bright content (title text, a lit object) is not black.
type BlackConfig struct {
	Enabled bool `json:"enabled"`
	// PixelThreshold is the luma level, as a share of the nominal range above
	// black, at or below which a pixel counts as black.
	PixelThreshold float64 `json:"pixel_threshold"`
	// PictureThreshold is the share of black pixels that makes a frame black.
	PictureThreshold float64 `json:"picture_threshold"`
	// MaxCentreBright is the share of the frame's central area (the middle 70%
	// of width and height, away from corner logos) that may be bright (luma at
	// least half the range) in a black frame.
	MaxCentreBright float64 `json:"max_centre_bright"`
	MinDuration     float64 `json:"min_duration"`
}

// DefaultBlackConfig returns the documented defaults.
func DefaultBlackConfig() BlackConfig {
	return BlackConfig{Enabled: true, PixelThreshold: 0.10, PictureThreshold: 0.98, MaxCentreBright: 0.001, MinDuration: 2}
}

// BlackFeature is the per-frame measurement behind the black decision; its
// mean luma also serves the A/V sync flash detector.
type BlackFeature struct {
	Pixels       int // luma samples inspected
	Black        int // of those, at or below the black threshold
	Centre       int // samples inspected in the central area
	CentreBright int // of those, at least half the range
	// MeanLuma is the mean luma as a share of the nominal range (0 black, 1 white).
	MeanLuma float64
}

// BlackShare is the share of black pixels.
func (f BlackFeature) BlackShare() float64 {
	if f.Pixels == 0 {
		return 0
	}
	return float64(f.Black) / float64(f.Pixels)
}

// CentreBrightShare is the share of bright pixels in the central area.
func (f BlackFeature) CentreBrightShare() float64 {
	if f.Centre == 0 {
		return 0
	}
	return float64(f.CentreBright) / float64(f.Centre)
}

// BlackThreshold returns the luma level at or below which a pixel of f is black.
func BlackThreshold(f *VideoFrame, pixelThreshold float64) int {
	lo, hi := f.LumaRange()
	return lo + int(pixelThreshold*float64(hi-lo))
}

// MeasureBlack computes the black feature on every rowStep-th row.
func MeasureBlack(f *VideoFrame, pixelThreshold float64, rowStep int, out *BlackFeature) {
	*out = BlackFeature{}
	if f.Width <= 0 || f.Height <= 0 {
		return
	}
	if rowStep < 1 {
		rowStep = 1
	}
	th := BlackThreshold(f, pixelThreshold)
	lo, hi := f.LumaRange()
	cy0, cy1 := f.Height*15/100, f.Height*85/100
	cx0, cx1 := (f.Width*15/100)&^7, (f.Width*85/100)&^7
	var sum uint64
	if f.BitDepth <= 8 && th < 128 {
		n := uint64(th + 1)
		w8 := f.Width &^ 7
		for y := 0; y < f.Height; y += rowStep {
			row := f.Y[y*f.Stride : y*f.Stride+f.Width]
			if y >= cy0 && y < cy1 {
				b, s := blackSpan(row[:cx0], n)
				b2, s2, c := blackSpanCentre(row[cx0:cx1], n)
				b3, s3 := blackSpan(row[cx1:w8], n)
				out.Black += b + b2 + b3
				sum += s + s2 + s3
				out.CentreBright += c
				out.Centre += cx1 - cx0
			} else {
				b, s := blackSpan(row[:w8], n)
				out.Black += b
				sum += s
			}
			for x := w8; x < f.Width; x++ {
				v := int(row[x])
				if v <= th {
					out.Black++
				}
				sum += uint64(v)
			}
			out.Pixels += f.Width
		}
	} else {
		mid := 1 << (max(f.BitDepth, 8) - 1) // the 8-bit path's ">= 128", at any depth
		for y := 0; y < f.Height; y += rowStep {
			row := f.Y[y*f.Stride:]
			centre := y >= cy0 && y < cy1
			for x := 0; x < f.Width; x++ {
				var v int
				if f.BitDepth > 8 {
					v = sample16(row, x)
				} else {
					v = int(row[x])
				}
				if v <= th {
					out.Black++
				}
				if centre && x >= cx0 && x < cx1 && v >= mid {
					out.CentreBright++
				}
				sum += uint64(v)
			}
			out.Pixels += f.Width
			if centre {
				out.Centre += cx1 - cx0
			}
		}
	}
	if out.Pixels > 0 {
		out.MeanLuma = (float64(sum)/float64(out.Pixels) - float64(lo)) / float64(hi-lo)
	}
}

// BlackDetector is the black decision.
type BlackDetector struct {
	cfg  BlackConfig
	dec  Decision
	peak float64 // highest black share during the current run
}

// NewBlackDetector returns a black decision emitting to emit.
func NewBlackDetector(cfg BlackConfig, emit Emit) *BlackDetector {
	d := &BlackDetector{cfg: cfg}
	d.dec = Decision{Defect: Black, MinDuration: cfg.MinDuration, Emit: emit, Annotate: d.annotate}
	return d
}

// Video consumes one frame's feature and reports whether the frame is black.
func (d *BlackDetector) Video(t, dur float64, f *BlackFeature) bool {
	share := f.BlackShare()
	bad := share >= d.cfg.PictureThreshold && f.CentreBrightShare() <= d.cfg.MaxCentreBright
	if bad {
		if on, _ := d.dec.Pending(); !on {
			d.peak = 0
		}
		d.peak = max(d.peak, share)
	}
	d.dec.Observe(t, bad)
	d.dec.Advance(t + dur)
	return bad
}

// Flush ends the input at t.
func (d *BlackDetector) Flush(t float64) { d.dec.Flush(t) }

func (d *BlackDetector) annotate(e *Event) {
	e.Values = map[string]float64{"black_share": round3(d.peak)}
}

// blackWords counts bytes below n (n <= 128) and sums all bytes of row (len
// a multiple of 8). The count is Sean Anderson's SWAR "bytes less than n",
// exact in that range: (lanes01*(127+n) - (w & 0x7f..)) &^ w & 0x80.. has the
// top bit of every byte below n set.
func blackWords(row []byte, n uint64) (black int, sum uint64) {
	var acc uint64 // four 16-bit lanes, flushed before they can overflow
	k, lim := 0, lanes01*(127+n)
	for ; len(row) >= 8; row = row[8:] {
		w := binary.LittleEndian.Uint64(row)
		black += bits.OnesCount64((lim - (w & lanes7f)) &^ w & lanes80)
		acc += (w & 0x00ff00ff00ff00ff) + ((w >> 8) & 0x00ff00ff00ff00ff)
		if k++; k == 128 {
			sum += fold16(acc)
			acc, k = 0, 0
		}
	}
	return black, sum + fold16(acc)
}

// blackWordsCentre is blackWords that also counts bytes >= 128.
func blackWordsCentre(row []byte, n uint64) (black int, sum uint64, bright int) {
	var acc uint64
	k, lim := 0, lanes01*(127+n)
	for ; len(row) >= 8; row = row[8:] {
		w := binary.LittleEndian.Uint64(row)
		black += bits.OnesCount64((lim - (w & lanes7f)) &^ w & lanes80)
		bright += countHigh(w)
		acc += (w & 0x00ff00ff00ff00ff) + ((w >> 8) & 0x00ff00ff00ff00ff)
		if k++; k == 128 {
			sum += fold16(acc)
			acc, k = 0, 0
		}
	}
	return black, sum + fold16(acc), bright
}
