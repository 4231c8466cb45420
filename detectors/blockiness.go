package detectors

import "math"

// BlockinessConfig sets the macroblocking detector.
//
// The feature counts visible steps on the 8x8 coding grid: a luma step across
// a block boundary that is larger than the gradients on both sides of it. The
// same count at mid-block positions (4 pixels off the grid) measures how often
// the picture itself has such edges, so the score, the difference of the two
// shares, is near 0 on clean content of any kind and rises with blocking,
// whether from a starved encoder or from decoder concealment of lost data.
type BlockinessConfig struct {
	Enabled bool `json:"enabled"`
	// Threshold is the score (share of grid positions with a step, minus the
	// share at mid-block positions) at or above which a frame is blocky.
	Threshold float64 `json:"threshold"`
	// MinStep is the smallest boundary step counted for the band score, in
	// 8-bit luma levels: concealment damage makes large steps in a few rows
	// of macroblocks.
	MinStep int `json:"min_step"`
	// PictureThreshold and PictureMinStep: the same measure over the whole
	// picture with moderate steps, as a starved encoder makes everywhere.
	PictureThreshold float64 `json:"picture_threshold"`
	PictureMinStep   int     `json:"picture_min_step"`
	MinDuration      float64 `json:"min_duration"`
	// ClearAfter bridges frames below the threshold inside a blocky run:
	// damage from lost data comes and goes as pictures are refreshed.
	ClearAfter float64 `json:"clear_after"`
}

// DefaultBlockinessConfig returns the documented defaults.
func DefaultBlockinessConfig() BlockinessConfig {
	return BlockinessConfig{Enabled: true, Threshold: 0.035, MinStep: 32, PictureThreshold: 0.08, PictureMinStep: 12, MinDuration: 0.5, ClearAfter: 0.25}
}

// blockBand is the height of the bands the score is taken over: one row of
// 16x16 macroblocks, the unit in which decoders conceal lost data.
const blockBand = 16

// BlockFeature is the per-frame count behind the blockiness score: visible
// steps on the grid and at mid-block positions, for the whole picture and
// for its worst band of macroblock rows.
type BlockFeature struct {
	Positions int // grid positions inspected (as many control positions)
	Steps     int // visible steps on the grid
	Control   int // visible steps at mid-block positions
	// Band is the band with the highest score (-1: none) and BandScore its
	// score in millionths (an integer, so that backends agree exactly).
	Band      int
	BandScore int
	// PictureScore is the whole picture's score with moderate steps, in millionths.
	PictureScore int
	// GridSum and ControlSum are the summed absolute luma steps (8-bit
	// levels) across the grid positions and across the mid-block positions:
	// their ratio is the detail-loss feature (detail.go).
	GridSum, ControlSum uint64
	// Flat counts the positions whose four mid-block samples (the middle of
	// a block, across the control position) are equal at 8 bits: the flat
	// block interiors a starved encoder leaves (detail.go).
	Flat int
}

// Score is the worst band's score: corruption damages regions (slices, rows
// of macroblocks), not whole pictures.
func (f BlockFeature) Score() float64 { return float64(f.BandScore) / 1e6 }

// PictureScoreShare is the whole picture's moderate-step score.
func (f BlockFeature) PictureScoreShare() float64 { return float64(f.PictureScore) / 1e6 }

// FrameScore is the share of grid steps minus the share of mid-block steps
// over the whole picture.
func (f BlockFeature) FrameScore() float64 {
	if f.Positions == 0 {
		return 0
	}
	return float64(f.Steps-f.Control) / float64(f.Positions)
}

// blockCounts accumulates one band, per edge direction: v for vertical
// edges (steps along rows), h for horizontal ones.
type blockCounts struct {
	vPositions, vSteps, vControl int
	hPositions, hSteps, hControl int
	// The same with the moderate step (picture score).
	vStepsM, vControlM, hStepsM, hControlM int
	// Summed step sizes on the grid and at mid-block positions.
	gridSum, ctrlSum int
	flat             int // positions with a flat block interior
}

// add accumulates another band.
func (c *blockCounts) add(o *blockCounts) {
	c.vPositions += o.vPositions
	c.vSteps += o.vSteps
	c.vControl += o.vControl
	c.hPositions += o.hPositions
	c.hSteps += o.hSteps
	c.hControl += o.hControl
	c.vStepsM += o.vStepsM
	c.vControlM += o.vControlM
	c.hStepsM += o.hStepsM
	c.hControlM += o.hControlM
	c.gridSum += o.gridSum
	c.ctrlSum += o.ctrlSum
	c.flat += o.flat
}

// moderateScore is score for the moderate step.
func (c *blockCounts) moderateScore() int {
	if c.vPositions == 0 || c.hPositions == 0 {
		return 0
	}
	v := (c.vStepsM - c.vControlM) * 1e6 / c.vPositions
	h := (c.hStepsM - c.hControlM) * 1e6 / c.hPositions
	return min(v, h)
}

// score is the smaller of the two directions' excess of grid steps over
// mid-block steps, in millionths: blocks have edges both ways, while a
// grid-aligned straight edge of the picture (a letterbox bar, a graphics
// box) has them one way only.
func (c *blockCounts) score() int {
	if c.vPositions == 0 || c.hPositions == 0 {
		return 0
	}
	v := (c.vSteps - c.vControl) * 1e6 / c.vPositions
	h := (c.hSteps - c.hControl) * 1e6 / c.hPositions
	return min(v, h)
}

// steps reports whether b, the difference across a position, is a visible
// step: more than twice the larger neighbouring gradient, and at least
// strong (s) or at least moderate (m).
func steps(b, n1, n2, strong, moderate int) (s, m int) {
	// Branchless: the outcome is data-dependent noise a branch predictor cannot learn.
	sharp := (2*max(n1, n2) - b) >> 63 // -1 when b > 2*max(n1, n2)
	big := (strong - 1 - b) >> 63      // -1 when b >= strong
	mid := (moderate - 1 - b) >> 63
	return int(big&sharp) & 1, int(mid&sharp) & 1
}

// MeasureBlockiness inspects vertical block edges on every rowStep-th row
// and horizontal block edges on every colStep-th column, band by band.
//
// sparse inspects horizontal edges in every other cache line of columns
// (for large pictures; see horizontal).
func MeasureBlockiness(f *VideoFrame, minStep, moderateStep, rowStep, colStep int, sparse bool, out *BlockFeature) {
	*out = BlockFeature{Band: -1}
	if f.Width < 16 || f.Height < 16 {
		return
	}
	rowStep, colStep = max(rowStep, 1), max(colStep, 1)
	shift := 0
	if f.BitDepth > 8 {
		shift = f.BitDepth - 8
	}
	fold := newBandFold()
	for band := 0; band*blockBand < f.Height; band++ {
		var c blockCounts
		y0 := band * blockBand
		for y := y0; y < y0+blockBand && y < f.Height; y += rowStep {
			c.vertical(f.Y[y*f.Stride:], f.Width, shift, minStep, moderateStep)
		}
		// Horizontal edges at the band's macroblock boundary only (also an
		// 8x8 boundary): each inspected edge reads eight rows.
		if y := y0 + blockBand; y+6 < f.Height {
			c.horizontal(f, y, shift, minStep, moderateStep, colStep, sparse)
		}
		fold.add(band, &c, out)
	}
	fold.finish(out)
}

// bandFold folds bands into a BlockFeature: the worst band's score, and the
// whole picture's counts. MeasureBlockiness and BlockFromBands share it.
type bandFold struct {
	best int
	all  blockCounts
}

func newBandFold() bandFold { return bandFold{best: math.MinInt} }

func (f *bandFold) add(band int, c *blockCounts, out *BlockFeature) {
	f.all.add(c)
	if c.vPositions == 0 || c.hPositions == 0 {
		return
	}
	if sc := c.score(); sc > f.best {
		f.best = sc
		out.Band, out.BandScore = band, sc
	}
}

func (f *bandFold) finish(out *BlockFeature) {
	all := &f.all
	out.Positions = all.vPositions + all.hPositions
	out.Steps = all.vSteps + all.hSteps
	out.Control = all.vControl + all.hControl
	out.PictureScore = all.moderateScore()
	out.GridSum, out.ControlSum = uint64(all.gridSum), uint64(all.ctrlSum)
	out.Flat = all.flat
}

// flat is 1 when the four samples are equal, 0 otherwise, without a branch.
func flat(g, h, i, j int) int {
	x := (g ^ h) | (h ^ i) | (i ^ j) // >= 0; 0 when all four are equal
	return int(uint(x-1) >> 63)
}

// luma reads sample x of a row at 8-bit scale.
func luma(row []byte, x, shift int) int {
	if shift > 0 {
		return sample16(row, x) >> uint(shift)
	}
	return int(row[x])
}

// vertical counts steps across x = 8k (grid) and x = 8k+4 (control) on one row.
func (c *blockCounts) vertical(row []byte, w, shift, minStep, moderate int) {
	for x := 8; x+6 < w; x += 8 {
		var a, b, d, e, g, h, i, j int
		if shift == 0 {
			r := row[x-2 : x+6]
			a, b, d, e, g, h, i, j = int(r[0]), int(r[1]), int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6]), int(r[7])
		} else {
			a, b, d, e = luma(row, x-2, shift), luma(row, x-1, shift), luma(row, x, shift), luma(row, x+1, shift)
			g, h, i, j = luma(row, x+2, shift), luma(row, x+3, shift), luma(row, x+4, shift), luma(row, x+5, shift)
		}
		gs, ms := absDiff(d, b), absDiff(i, h)
		s, m := steps(gs, absDiff(b, a), absDiff(e, d), minStep, moderate)
		cs, cm := steps(ms, absDiff(h, g), absDiff(j, i), minStep, moderate)
		c.gridSum += gs
		c.ctrlSum += ms
		c.flat += flat(g, h, i, j)
		c.vSteps += s
		c.vStepsM += m
		c.vControl += cs
		c.vControlM += cm
		c.vPositions++
	}
}

// horizontal counts steps across row y = 8k (grid) and y+4 (control).
// With sparse set, only the columns of every other 64-byte cache line are
// inspected: the pass reads eight full rows per edge, so on large pictures
// memory traffic, not arithmetic, is its cost.
func (c *blockCounts) horizontal(f *VideoFrame, y, shift, minStep, moderate, colStep int, sparse bool) {
	s, w := f.Stride, f.Width
	r := [8][]byte{}
	for k := range r {
		r[k] = f.Y[(y-2+k)*s:]
	}
	span, stride := w, w // columns inspected from each chunk start, and chunk distance
	if sparse {
		span = 64
		if shift > 0 {
			span = 32 // two bytes a sample
		}
		stride = 2 * span
	}
	if shift == 0 {
		r0, r1, r2, r3, r4, r5, r6, r7 := r[0][:w], r[1][:w], r[2][:w], r[3][:w], r[4][:w], r[5][:w], r[6][:w], r[7][:w]
		for x0 := 0; x0 < w; x0 += stride {
			for x := x0; x < min(x0+span, w); x += colStep {
				a, b, d, e := int(r0[x]), int(r1[x]), int(r2[x]), int(r3[x])
				g, h, i, j := int(r4[x]), int(r5[x]), int(r6[x]), int(r7[x])
				c.hcount(a, b, d, e, g, h, i, j, minStep, moderate)
			}
		}
		return
	}
	for x0 := 0; x0 < w; x0 += stride {
		for x := x0; x < min(x0+span, w); x += colStep {
			a, b, d, e := luma(r[0], x, shift), luma(r[1], x, shift), luma(r[2], x, shift), luma(r[3], x, shift)
			g, h, i, j := luma(r[4], x, shift), luma(r[5], x, shift), luma(r[6], x, shift), luma(r[7], x, shift)
			c.hcount(a, b, d, e, g, h, i, j, minStep, moderate)
		}
	}
}

// hcount counts one column across a horizontal edge: samples a..e around
// the grid row, g..j around the mid-block row.
func (c *blockCounts) hcount(a, b, d, e, g, h, i, j, minStep, moderate int) {
	gs, ms := absDiff(d, b), absDiff(i, h)
	s, m := steps(gs, absDiff(b, a), absDiff(e, d), minStep, moderate)
	cs, cm := steps(ms, absDiff(h, g), absDiff(j, i), minStep, moderate)
	c.gridSum += gs
	c.ctrlSum += ms
	c.flat += flat(g, h, i, j)
	c.hSteps += s
	c.hStepsM += m
	c.hControl += cs
	c.hControlM += cm
	c.hPositions++
}

// BlockinessDetector is the blockiness decision.
type BlockinessDetector struct {
	cfg  BlockinessConfig
	dec  Decision
	peak float64
}

// NewBlockinessDetector returns a blockiness decision emitting to emit.
func NewBlockinessDetector(cfg BlockinessConfig, emit Emit) *BlockinessDetector {
	d := &BlockinessDetector{cfg: cfg}
	d.dec = Decision{Defect: Blockiness, MinDuration: cfg.MinDuration, ClearAfter: cfg.ClearAfter, Emit: emit, Annotate: d.annotate}
	return d
}

// Video consumes one frame's feature.
func (d *BlockinessDetector) Video(t, dur float64, f *BlockFeature) {
	score := max(f.Score(), f.PictureScoreShare()*d.cfg.Threshold/d.cfg.PictureThreshold)
	bad := f.Score() >= d.cfg.Threshold || f.PictureScoreShare() >= d.cfg.PictureThreshold
	if bad {
		if on, _ := d.dec.Pending(); !on {
			d.peak = 0
		}
		d.peak = max(d.peak, score)
	}
	d.dec.Observe(t, bad)
	d.dec.Advance(t + dur)
}

// Pending reports whether a blocky run is under way (raised or not).
func (d *BlockinessDetector) Pending() bool {
	on, _ := d.dec.Pending()
	return on
}

// Raised reports whether the blockiness alarm is up.
func (d *BlockinessDetector) Raised() bool { return d.dec.Raised() }

// Flush ends the input at t.
func (d *BlockinessDetector) Flush(t float64) { d.dec.Flush(t) }

func (d *BlockinessDetector) annotate(e *Event) {
	// score is on the band scale: the picture score is scaled so that each
	// reaches the same value at its own threshold.
	e.Values = map[string]float64{"score": round3(d.peak)}
}
