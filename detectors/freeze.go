package detectors

import (
	"encoding/binary"
	"math"
)

// FreezeConfig sets the freeze detector. The default noise floor matches
// FFmpeg's freezedetect (-60 dB of the luma range, 2 s): a static shot with
// sensor noise changes by more than that between frames, a repeated one does not.
//
// A frozen picture under live grain (film grain, sensor noise added after the
// freeze) or re-encoded with a drifting residual changes every sample a
// little but no region's mean: the cell test below sees it. Since a static
// shot with sensor noise looks exactly like that, this second test only
// counts when the picture was moving just before (a freeze is motion that
// stops; a tripod shot never moved).
type FreezeConfig struct {
	Enabled bool `json:"enabled"`
	// Noise is the mean absolute luma difference to the previous frame, as a
	// share of the nominal range, at or below which a frame repeats its predecessor.
	Noise float64 `json:"noise"`
	// KeyFrameNoise is the larger difference tolerated on a key frame inside a
	// freeze: an encoder fed a frozen picture re-codes it at every key frame.
	KeyFrameNoise float64 `json:"keyframe_noise"`
	// MaxMoved is the share of cells that may have moved (mean change beyond
	// the noise and beyond CellFloor) in a picture frozen under noise.
	MaxMoved float64 `json:"max_moved"`
	// MinMotion is the share of cells that must have moved in a picture
	// shortly (motionMemory) before such a noisy still run for it to be a freeze.
	MinMotion float64 `json:"min_motion"`
	// GrainNoise is the largest mean absolute difference (share of the
	// range) that grain or drift may cause in a frozen picture: beyond it a
	// picture changed, whatever its cells say.
	GrainNoise float64 `json:"grain_noise"`
	// CellFloor is the smallest change of a cell's mean luma, as a share of
	// the nominal range, that counts as movement (re-encoding drift stays below).
	CellFloor   float64 `json:"cell_floor"`
	MinDuration float64 `json:"min_duration"`
}

// DefaultFreezeConfig returns the documented defaults.
func DefaultFreezeConfig() FreezeConfig {
	return FreezeConfig{Enabled: true, Noise: 0.001, KeyFrameNoise: 0.02, MaxMoved: 0.04, MinMotion: 0.1, GrainNoise: 0.08, CellFloor: 0.004, MinDuration: 2}
}

// Freeze cells: freezeCellW samples wide and freezeCellRows sampled rows tall
// (so 4*rowStep picture rows), 128 samples at any row step. A GPU backend
// reads every row of the same cells: more samples, the same test.
const (
	freezeCellW    = 32
	freezeCellRows = 4
	// freezeCellZ: a cell moved when its mean change is this many standard
	// errors of the noise from zero (pure noise exceeds 4 once in 16,000 cells).
	freezeCellZ = 4
)

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
	// Cells is the number of cells compared and Moved the number whose mean
	// changed by more than the noise explains and by at least the cell floor.
	Cells int
	Moved int
}

// MAD is the mean absolute difference as a share of the nominal luma range.
func (f FreezeFeature) MAD(rangeLevels int) float64 {
	if f.Pixels == 0 || rangeLevels == 0 {
		return 0
	}
	return float64(f.SAD) / float64(f.Pixels) / float64(rangeLevels)
}

// MovedShare is the share of cells that moved.
func (f FreezeFeature) MovedShare() float64 {
	if f.Cells == 0 {
		return 0
	}
	return float64(f.Moved) / float64(f.Cells)
}

// cellMoved is the cell test on n samples with signed difference sum d and
// absolute sum sad (8-bit units): |mean| at least floor16/16 levels, and
// z = |d| / (sqrt(n) * sigma) above freezeCellZ, with the noise sigma
// estimated from the mean absolute difference (E|x| = 0.8 sigma).
func cellMoved(n int, d int64, sad uint64, floor16 int64) bool {
	if d < 0 {
		d = -d
	}
	if 16*d < floor16*int64(n) || d == 0 {
		return false
	}
	s := int64(sad)
	return 16*int64(n)*d*d > 25*freezeCellZ*freezeCellZ*s*s
}

// MeasureFreeze compares every rowStep-th row of cur with the reference prev:
// the whole sampled picture (SAD) and cell by cell (Moved). cellFloor is the
// cell floor as a share of the luma range (FreezeConfig.CellFloor).
func MeasureFreeze(cur, prev *VideoFrame, rowStep int, cellFloor float64, out *FreezeFeature) {
	*out = FreezeFeature{}
	if prev == nil || prev.Width != cur.Width || prev.Height != cur.Height || prev.BitDepth != cur.BitDepth || len(prev.Y) == 0 {
		return
	}
	if rowStep < 1 {
		rowStep = 1
	}
	out.Valid = true
	floor16 := FreezeCellFloor16(cur, cellFloor)
	cellH := freezeCellRows * rowStep
	w32 := cur.Width - cur.Width%freezeCellW
	var sad uint64
	for y0 := 0; y0 < cur.Height; y0 += cellH {
		y1 := min(y0+cellH, cur.Height)
		rows := (y1 - y0 + rowStep - 1) / rowStep
		for cx := 0; cx < w32; cx += freezeCellW {
			var d int64
			var s uint64
			f16 := floor16
			if cur.BitDepth > 8 {
				d, s = cell16(cur, prev, cx, y0, y1, rowStep)
			} else {
				d, s = cell8(cur, prev, cx, y0, y1, rowStep)
				sad += s
			}
			out.Cells++
			if cellMoved(rows*freezeCellW, d, s, f16) {
				out.Moved++
			}
		}
		// Columns right of the last whole cell count in the SAD only; high
		// bit depth sums whole rows, shifted per row as it always was.
		for y := y0; y < y1; y += rowStep {
			a, b := cur.Y[y*cur.Stride:], prev.Y[y*prev.Stride:]
			if cur.BitDepth > 8 {
				var t int
				for x := 0; x < cur.Width; x++ {
					t += absDiff(sample16(a, x), sample16(b, x))
				}
				sad += uint64(t >> uint(cur.BitDepth-8))
			} else {
				sad += sadRow(a[w32:cur.Width], b[w32:cur.Width])
			}
			out.Pixels += cur.Width
		}
	}
	out.SAD = sad
}

// cell8SWAR returns the signed and absolute difference sums of one 8-bit
// cell, eight samples per word (SWAR, as sadRow): the sum of the current
// samples less the sum of the previous ones, and their SAD.
func cell8SWAR(cur, prev *VideoFrame, cx, y0, y1, rowStep int) (int64, uint64) {
	const (
		m16 = 0x00ff00ff00ff00ff
		h16 = 0x0100010001000100
		l16 = 0x0001000100010001
	)
	var sa, sb, acc uint64 // 16-bit lanes: at most 16 rows x 4 words x 510 per lane
	var sum, sumA, sumB uint64
	k := 0
	for y := y0; y < y1; y += rowStep {
		a := cur.Y[y*cur.Stride+cx : y*cur.Stride+cx+freezeCellW]
		b := prev.Y[y*prev.Stride+cx : y*prev.Stride+cx+freezeCellW]
		for i := 0; i < freezeCellW; i += 8 {
			x, z := binary.LittleEndian.Uint64(a[i:]), binary.LittleEndian.Uint64(b[i:])
			xl, xh, zl, zh := x&m16, (x>>8)&m16, z&m16, (z>>8)&m16
			sa += xl + xh
			sb += zl + zh
			t := (xl | h16) - zl
			neg := ((t >> 8) & l16) ^ l16
			acc += ((t ^ (neg * 0xff)) & m16) + neg
			t = (xh | h16) - zh
			neg = ((t >> 8) & l16) ^ l16
			acc += ((t ^ (neg * 0xff)) & m16) + neg
		}
		if k++; k == 16 {
			sum, sumA, sumB = sum+fold16(acc), sumA+fold16(sa), sumB+fold16(sb)
			acc, sa, sb, k = 0, 0, 0, 0
		}
	}
	sum, sumA, sumB = sum+fold16(acc), sumA+fold16(sa), sumB+fold16(sb)
	return int64(sumA) - int64(sumB), sum
}

// cell16 is cell8 for high bit depth, in the samples' own units (the cell
// test does not depend on the scale but for its floor).
func cell16(cur, prev *VideoFrame, cx, y0, y1, rowStep int) (int64, uint64) {
	var d int64
	var s uint64
	for y := y0; y < y1; y += rowStep {
		a, b := cur.Y[y*cur.Stride:], prev.Y[y*prev.Stride:]
		for x := cx; x < cx+freezeCellW; x++ {
			v := sample16(a, x) - sample16(b, x)
			d += int64(v)
			s += uint64(absDiff(v, 0))
		}
	}
	return d, s
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
	cfg      FreezeConfig
	dec      Decision
	maxMAD   float64 // largest difference inside the current run
	maxMoved float64 // largest moved share inside the current run
	// lastMotion is the time of the last frame in which at least MinMotion
	// of the cells moved (valid when motion is set).
	lastMotion float64
	motion     bool
	runNoisy   bool    // the current run followed motion: noise may carry it
	drifted    bool    // the last frame was a refinement bridged inside a run
	lastDrift  float64 // when the run's last refinement was bridged (valid when driftSeen)
	driftSeen  bool
	// The last frames' times and whether each moved quietMotion of its
	// cells (a ring), and whether the current run followed such motion.
	qt       [quietFrames]float64
	qm       [quietFrames]bool
	qn, qi   int
	runQuiet bool
}

// A small subject moving in a still shot (an animal, a distant figure, a
// flag) moves a few cells of the picture every frame, fewer than
// MinMotion; frozen, the picture moves none at all, grain or re-encoding
// drift notwithstanding (the tune split's synQ clips: no cell moved in
// their freezes, 2 to 3% while the subject lived). So a still run may also
// begin where at least quietShare of the frames of the last motionMemory
// moved quietMotion of their cells, and go on while at most quietStill of
// them move: a subject that stops dead for min_duration under sensor noise
// reads as a freeze too, which it is on screen.
const (
	quietMotion = 0.01
	quietStill  = 0.0025
	quietShare  = 2.0 / 3
	quietFrames = 64 // the ring: motionMemory at up to 120 frames a second
)

// quietRecent reports whether the frames of the last motionMemory before t
// (at least four) moved quietMotion of their cells, quietShare of them.
func (d *FreezeDetector) quietRecent(t float64) bool {
	n, moving := 0, 0
	for i := range d.qn {
		j := (d.qi - 1 - i + quietFrames) % quietFrames
		if d.qt[j] < t-motionMemory-eps || d.qt[j] >= t {
			break
		}
		n++
		if d.qm[j] {
			moving++
		}
	}
	return n >= 4 && float64(moving) >= quietShare*float64(n)
}

// quietSeen records a frame for quietRecent (time going back starts over).
func (d *FreezeDetector) quietSeen(t float64, moving bool) {
	if d.qn > 0 && t < d.qt[(d.qi-1+quietFrames)%quietFrames] {
		d.qn = 0
	}
	d.qt[d.qi], d.qm[d.qi] = t, moving
	d.qi = (d.qi + 1) % quietFrames
	d.qn = min(d.qn+1, quietFrames)
}

// driftGap is how far apart bridged refinements must be: an encoder refines
// a frozen picture now and then, while a title card that creeps (a slow
// zoom, text fading in) moves a few cells every frame or two.
const driftGap = 0.5

// motionMemory is how recent the motion before a noisy still run must be: an
// encoder settling on a frozen picture moves a few cells for a frame or two.
const motionMemory = 0.5

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
		// Nothing to compare with (the first picture, a new size, a looping
		// file starting over): no evidence either way, so a freeze under way
		// goes on and the next comparable picture decides.
		d.dec.Advance(t + dur)
		return false
	}
	mad := f.MAD(rangeLevels)
	moved := f.MovedShare()
	inRun, _ := d.dec.Pending()
	// Noisy still: no region moved, and either the run is under way or the
	// picture was moving just before it.
	// A run may go on under noise only if motion came just before it began.
	recent := d.motion && t-d.lastMotion <= motionMemory+eps
	noisy := f.Cells > 0 && moved <= d.cfg.MaxMoved && mad <= d.cfg.GrainNoise && (inRun && d.runNoisy || !inRun && recent)
	// Or the still after a small subject moving (see quietMotion).
	quiet := !inRun && !recent && d.quietRecent(t)
	if !noisy && f.Cells > 0 && moved <= quietStill && mad <= d.cfg.GrainNoise && (inRun && d.runQuiet || quiet) {
		noisy = true
	}
	still := mad <= d.cfg.Noise || noisy
	recoded := !still && inRun && keyFrame && mad <= d.cfg.KeyFrameNoise
	// Drift: an encoder fed a frozen picture refines it now and then; such a
	// P-frame moves a few more cells than MaxMoved, far fewer than motion
	// (MinMotion), by no more than grain does (GrainNoise). One such frame at a time does
	// not end a run (nor restart it late); the refined picture becomes the
	// reference. Two in a row, or two within driftGap, are motion; a fade
	// moves no cell (each step is too small) and is not bridged.
	lower := d.cfg.MaxMoved // above what the run's stills may move (quietStill after a small subject)
	if d.runQuiet {
		lower = quietStill
	}
	drift := !still && !recoded && inRun && !d.drifted && moved > lower && moved < d.cfg.MinMotion &&
		mad <= d.cfg.GrainNoise && (!d.driftSeen || t-d.lastDrift >= driftGap-eps)
	d.drifted = drift
	if drift {
		d.lastDrift, d.driftSeen = t, true
	}
	bad := still || recoded || drift
	if bad && !inRun {
		d.maxMAD, d.maxMoved, d.runNoisy, d.runQuiet, d.driftSeen = 0, 0, recent, quiet && !recent, false
		d.dec.Observe(refT, true)
	}
	if bad {
		d.maxMAD, d.maxMoved = max(d.maxMAD, mad), max(d.maxMoved, moved)
	}
	if moved >= d.cfg.MinMotion {
		d.motion, d.lastMotion = true, t
	}
	d.quietSeen(t, moved >= quietMotion)
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
	d.motion, d.qn = false, 0
	d.dec.Observe(t, false)
	d.dec.Advance(t + dur)
}

// Flush ends the input at t.
func (d *FreezeDetector) Flush(t float64) { d.dec.Flush(t) }

func (d *FreezeDetector) annotate(e *Event) {
	e.Values = map[string]float64{"max_difference": math.Round(d.maxMAD*1e6) / 1e6, "moved_share": math.Round(d.maxMoved*1e4) / 1e4}
}
