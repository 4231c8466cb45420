package detectors

import "math"

// DetailLossConfig sets the starved-encode (detail loss) detector.
//
// An encoder starved of bits (at its maximum quantizer) throws away the
// detail inside its blocks and keeps their edges: even under H.264's and
// HEVC's deblocking filter the luma steps across the 8x8 grid grow relative
// to the steps at mid-block positions. The feature is that ratio (from the
// blockiness pass, BlockFeature.GridSum and ControlSum); the decision
// compares it with the stream's own recent level, so that content that is
// soft, flat or graphic by nature, or an encoder that always leaves some grid,
// does not fire: only a jump does.
//
// HEVC's large blocks leave little on the 8x8 grid; there the second cue
// sees starvation: the picture's detail (mean luma step, grid and mid-block
// positions together) falling to 1/Drop of its level of the last DropWindow
// seconds at once. A focus pull or a fade loses detail over many frames, and
// the short level follows it; a starved encoder loses it from one frame to
// the next, and its grid ratio rises (a run begins only where it stands
// collapseRise above its level: a cut to softer content loses detail at
// once too, but its block edges do not stand out more).
//
// Starved P-frames lose detail gradually (the encoder keeps copying what it
// had); the third cue sees that: detail at 1/SlowDrop of its recent level
// (Window) while the grid ratio is at least SlowFactor times its own. A
// focus pull loses as much detail, but leaves no grid.
//
// The fourth cue, collapse, is the one that generalizes across codecs and
// content: at a starved picture the block interiors go flat (BlockFeature.Flat:
// four equal samples across the middle of a block), the detail inside blocks
// (ControlSum) falls, and the grid ratio rises, all from one frame to the
// next. Their log-drops against the level of the last CollapseWindow seconds
// are summed; Collapse is the factor the sum must reach, and a run begins
// only where at least half of that fall happened from the previous frame (a
// step, not a ramp) and the grid ratio stands above its level (a cut to
// softer content loses interior detail and texture at once, but its block
// edges do not stand out more). A bright cartoon or a grainy scene, a soft or dark one,
// is judged against itself; a focus pull or a fade changes little from frame
// to frame (the level follows it, and no step starts a run); a
// cut (new content: the picture moves by far more than its detail, or its
// mean luma jumps) restarts the level. Once a run has begun the level holds
// (a fade inside a starved stretch does not hide it), so the event starts
// at the first starved frame.
//
// Where the decoder exports the quantizers it read (software H.264 and
// MPEG-2: VideoFrame.Quant), the fifth cue needs no pixels: a picture coded
// QuantJump (H.264 QP; 6 doubles the step) above the coarsest picture of the
// last QuantWindow seconds (less the last 0.2: the B-frames before a starved
// P-frame climb with it), and at QuantFloor or above, begins a run on the
// first starved picture, even where a starved P-frame still copies the good
// picture before it (see quant.go). The run holds while the quantizer stays
// above half that jump, bridging QuantHold seconds of finer pictures (a key
// frame inside the starved stretch). There the quantizer is the judge: the
// picture cues do not begin runs on pictures whose quantizer is known (soft,
// grainy, dark or cut content that they might take for starvation comes at
// the stream's usual quantizer), unless PictureWithQuant; they may extend a
// run the quantizer began (a starved picture lingers until refreshed).
type DetailLossConfig struct {
	Enabled bool `json:"enabled"`
	// Factor is how many times its recent level the grid ratio must reach.
	Factor float64 `json:"factor"`
	// MinRatio is the grid ratio below which a picture is never starved
	// (clean content of any kind stays near 1).
	MinRatio float64 `json:"min_ratio"`
	// Window is the time constant of the recent level, in seconds.
	Window float64 `json:"window"`
	// Drop is the factor by which detail must fall below its level of the
	// last DropWindow seconds (time constant).
	Drop       float64 `json:"drop"`
	DropWindow float64 `json:"drop_window"`
	// SlowDrop and SlowFactor set the gradual cue (see above).
	SlowDrop   float64 `json:"slow_drop"`
	SlowFactor float64 `json:"slow_factor"`
	// Collapse is the factor by which interior detail, textured block
	// interiors and the grid ratio together (the product of their drops)
	// must fall below their level of the last CollapseWindow seconds.
	Collapse       float64 `json:"collapse"`
	CollapseWindow float64 `json:"collapse_window"`
	// QuantJump, QuantFloor, QuantWindow and QuantHold set the quantizer
	// cue (see above): H.264 QP units, and seconds.
	QuantJump   float64 `json:"quant_jump"`
	QuantFloor  float64 `json:"quant_floor"`
	QuantWindow float64 `json:"quant_window"`
	QuantHold   float64 `json:"quant_hold"`
	// PictureWithQuant lets the picture cues begin runs where the quantizer
	// is known too: for a stream re-encoded after a starved link, whose
	// last encoder's quantizer does not move.
	PictureWithQuant bool    `json:"picture_with_quant"`
	MinDuration      float64 `json:"min_duration"`
	// ClearAfter bridges frames below the threshold inside a starved run
	// (0: none: a starved encoder stays starved from frame to frame, while
	// the ratio of dark or flat pictures spikes on single frames).
	ClearAfter float64 `json:"clear_after"`
}

// DefaultDetailLossConfig returns the documented defaults.
func DefaultDetailLossConfig() DetailLossConfig {
	return DetailLossConfig{Enabled: true, Factor: 1.3, MinRatio: 1.5, Window: 4, Drop: 1.5, DropWindow: 0.25, SlowDrop: 1.6, SlowFactor: 1.15,
		Collapse: 1.3, CollapseWindow: 0.25, QuantJump: 12, QuantFloor: 33, QuantWindow: 1, QuantHold: 0.3, MinDuration: 0.5, ClearAfter: 0}
}

// detailFloor (8-bit levels per position) keeps the ratio of nearly flat
// pictures (a black frame, a fade) near 1 instead of dividing noise by noise.
const detailFloor = 0.5

// GridRatio is the detail-loss feature of a frame: the mean step across the
// grid over the mean step at mid-block positions, each plus detailFloor.
// The CPU samples rows and columns (sampling.block_*_step); a GPU backend
// sums every position: the same ratio.
func (f BlockFeature) GridRatio() float64 {
	if f.Positions == 0 {
		return 1
	}
	n := float64(f.Positions)
	return (float64(f.GridSum)/n + detailFloor) / (float64(f.ControlSum)/n + detailFloor)
}

// detailCut is the change of mean luma from one frame to the next (share of
// the range) that marks new content (a cut, a fade): the recent level starts
// again from it, since an encoder's grid shows differently on every scene.
const detailCut = 0.008

// Detail is the mean luma step (8-bit levels) over the grid and mid-block
// positions: the picture's detail, for the drop cue.
func (f BlockFeature) Detail() float64 {
	if f.Positions == 0 {
		return 0
	}
	return float64(f.GridSum+f.ControlSum) / float64(2*f.Positions)
}

// The collapse cue's constants (see DetailLossConfig).
const (
	// collapseFloor (8-bit levels) and textureFloor (share of positions)
	// keep flat pictures from dividing noise by noise.
	collapseFloor = 0.5
	textureFloor  = 0.1
	// collapseCut: a picture that moves (mean absolute difference from the
	// previous one, 8-bit levels) by more than this many times the level of
	// interior detail is new content, not the same content starved.
	collapseCut = 8
	// collapseDark: a picture darker than this (mean luma, share of the
	// range) is not judged: its detail is too small to lose visibly.
	collapseDark = 0.06
	// collapseWarmup is the video the level needs after a cut.
	collapseWarmup = 0.2
	// collapseStep is the share of the fall that must happen from the
	// previous frame to the first frame of a run.
	collapseStep = 0.5
	// collapseRise (log) is how far above its level the grid ratio must be
	// at the first frame of a run: a starved encoder keeps its block edges
	// while the interiors go, so the ratio rises (by 4.5% and more at the
	// tune split's starved onsets); a cut to softer content loses interior
	// detail and texture at once but not its grid ratio (Big Buck Bunny's
	// cut at 5.1 s: -0.5%).
	collapseRise = 0.03
)

// Texture is the share of positions whose block interior is not flat.
func (f BlockFeature) Texture() float64 {
	if f.Positions == 0 {
		return 0
	}
	return 1 - float64(f.Flat)/float64(f.Positions)
}

// Interior is the mean luma step at mid-block positions (8-bit levels).
func (f BlockFeature) Interior() float64 {
	if f.Positions == 0 {
		return 0
	}
	return float64(f.ControlSum) / float64(f.Positions)
}

// DetailLossDetector is the detail-loss decision.
type DetailLossDetector struct {
	luma     float64 // mean luma of the previous frame
	haveLuma bool
	cfg      DetailLossConfig
	dec      Decision
	// level is the recent level of log(ratio), valid once seen; dlevel the
	// short level of log(detail + detailFloor), llevel its recent level.
	level, dlevel, llevel float64
	seen                  float64 // seconds of video that went into level
	peak                  float64 // highest ratio / level in the current run
	base                  float64 // the level when the run began
	// The collapse cue's level (log interior detail, log texture, log grid
	// ratio over CollapseWindow), and the video since it restarted.
	cInterior, cTexture, cRatio float64
	cSeen                       float64
	cHave                       bool
	// The previous frame's logs, for the step test.
	pInterior, pTexture, pRatio float64
	// The quantizer cue, and the highest rise it saw in the current run.
	quant quantCue
	qpeak float64
	// mpeak is the recent peak of motion, decaying by half every
	// stepMemory: a picture moving stepFactor times as much, and by at least
	// stepMotion levels, is a step in the picture (see quantSettle).
	mpeak float64
}

// The motion step test for the slice-level quantizer (see quantSettle): a
// frozen or static picture coming back to life moves 20 to 30 levels from
// one picture to the next after moving 1 to 3 against the still's first
// picture (grain, re-encoding drift: the quality corpus's re-encoded
// freezes, 7 to 30 times as much). The settling begins after the step's own picture,
// which is judged: a starved key frame on a static shot changes it too
// (4 to 5 levels on the tune split, more on a detailed still), and its
// quantizer jumps with it, where rate control's answer comes a picture or
// two later.
const (
	stepMotion = 8.0
	stepFactor = 4.0
	stepMemory = 0.25
)

// NewDetailLossDetector returns a detail-loss decision emitting to emit.
func NewDetailLossDetector(cfg DetailLossConfig, emit Emit) *DetailLossDetector {
	d := &DetailLossDetector{cfg: cfg}
	d.dec = Decision{Defect: DetailLoss, MinDuration: cfg.MinDuration, ClearAfter: cfg.ClearAfter, Emit: emit, Annotate: d.annotate}
	return d
}

// detailWarmup is how much video the recent level needs before it judges.
const detailWarmup = 0.5

// Video consumes one frame's feature, its mean luma (BlackFeature.MeanLuma)
// and its motion (mean absolute difference from the previous picture in
// 8-bit levels, FreezeFeature; 0 or less: unknown), and its quantizer
// (VideoFrame.Quant, when hasQuant); blocky says the blockiness alarm
// already covers the frame (one defect, one alarm).
//
// sliceQuant says the quantizer is the slice headers' base level (HEVC),
// not every block's: an encoder may leave it still and starve through its
// per-block deltas, so the picture cues keep judging such a stream.
func (d *DetailLossDetector) Video(t, dur, meanLuma, motion, quant float64, hasQuant, sliceQuant bool, f *BlockFeature, blocky bool) {
	cut := d.haveLuma && math.Abs(meanLuma-d.luma) > detailCut
	d.luma, d.haveLuma = meanLuma, true
	quantOn, rise, backdated := false, 0.0, false
	switch {
	case dur <= 0:
	case hasQuant:
		quantOn, rise = d.quant.observe(&d.cfg, t, dur, quant)
		if on, _ := d.dec.Pending(); d.quant.started && d.quant.began < t && !on && !blocky {
			// The run began on pictures already passed (see quantBack).
			d.dec.Observe(d.quant.began, true)
			backdated = true
		}
	default:
		quantOn = d.quant.unknown(&d.cfg, t, dur)
	}
	if dur > 0 {
		// After the picture's own judgement: a starved key frame changes the
		// picture as much as a cut, and its own quantizer says so.
		if sliceQuant && (cut || motion >= stepMotion && motion >= stepFactor*d.mpeak) {
			d.quant.step(t)
		}
		d.mpeak = max(motion, d.mpeak*math.Exp2(-dur/stepMemory))
	}
	if f.Positions == 0 || dur <= 0 {
		d.observe(t, dur, quantOn && !blocky, false)
		return
	}
	r := f.GridRatio()
	lr, ld := math.Log(r), math.Log(f.Detail()+detailFloor)
	if d.seen == 0 || cut {
		d.level, d.dlevel, d.llevel = lr, ld, ld
	}
	rel := math.Exp(lr - d.level)
	grid := d.seen >= detailWarmup && r >= d.cfg.MinRatio && rel >= d.cfg.Factor
	on, _ := d.dec.Pending()
	// A drop begins a run only where the grid ratio stands above its level
	// (see collapseRise): a cut to softer content loses detail at once too.
	drop := d.seen >= detailWarmup && math.Exp(d.dlevel-ld) >= d.cfg.Drop && (on || lr-d.level >= collapseRise)
	slow := d.seen >= detailWarmup && math.Exp(d.llevel-ld) >= d.cfg.SlowDrop && rel >= d.cfg.SlowFactor
	collapse, fall := d.collapse(dur, meanLuma, motion, cut, f)
	if hasQuant && !sliceQuant && !d.cfg.PictureWithQuant && !on {
		// The quantizer judges this stream (see DetailLossConfig).
		grid, drop, slow, collapse = false, false, false, false
	}
	picture := grid || drop || slow || collapse
	starved := picture || quantOn
	bad := starved && !blocky
	// The short level follows detail, and the long one once it is starved.
	dtau := d.cfg.DropWindow
	if starved || blocky {
		dtau = 10 * d.cfg.Window
	}
	d.dlevel += (ld - d.dlevel) * min(1, dur/max(dtau, dur))
	// The level follows clean pictures over Window; during a starved run it
	// moves ten times slower, so that a lasting change of encoder is
	// accepted in the end while a starved stretch does not become the norm.
	tau := d.cfg.Window
	if starved || blocky {
		tau *= 10
	}
	d.level += (lr - d.level) * min(1, dur/max(tau, dur))
	d.llevel += (ld - d.llevel) * min(1, dur/max(tau, dur))
	d.seen += dur
	if bad {
		if on, _ := d.dec.Pending(); !on || backdated {
			d.peak, d.base, d.qpeak = 0, math.Exp(d.level), 0
		}
		d.peak = max(d.peak, rel, math.Exp(d.dlevel-ld), math.Exp(d.llevel-ld), fall)
		d.qpeak = max(d.qpeak, rise)
	}
	if !starved {
		d.followCollapse(dur, f)
	}
	d.observe(t, dur, bad, picture)
}

// observe passes a frame's verdict to the decision: a frame starved only by
// the quantizer cue's hold (a finer picture inside a starved stretch) is
// bridged, so that it neither raises the alarm nor ends the run, and a run
// that does not come back ends on the first such picture.
func (d *DetailLossDetector) observe(t, dur float64, bad, picture bool) {
	if bad && !picture && d.quant.low > 0 {
		d.dec.Bridge(t)
	} else {
		d.dec.Observe(t, bad)
	}
	d.dec.Advance(t + dur)
}

// collapse judges the collapse cue and returns the factor by which the
// frame fell below the level (1: none).
func (d *DetailLossDetector) collapse(dur, meanLuma, motion float64, lumaCut bool, f *BlockFeature) (bool, float64) {
	li, lt, lr := math.Log(f.Interior()+collapseFloor), math.Log(f.Texture()+textureFloor), math.Log(f.GridRatio())
	on, _ := d.dec.Pending()
	moved := d.cHave && motion > collapseCut*math.Exp(d.cInterior)
	step := (d.pInterior - li) + (d.pTexture - lt) + max(0, lr-d.pRatio)
	d.pInterior, d.pTexture, d.pRatio = li, lt, lr
	// New content restarts the level; a luma jump inside a run does not
	// (a fade during a starved stretch).
	if !d.cHave || moved || (lumaCut && !on) {
		d.cInterior, d.cTexture, d.cRatio, d.cHave, d.cSeen = li, lt, lr, true, 0
		return false, 1
	}
	s := (d.cInterior - li) + (d.cTexture - lt) + max(0, lr-d.cRatio)
	fall := math.Exp(s)
	begins := step >= collapseStep*s && lr-d.cRatio >= collapseRise
	ok := d.seen >= detailWarmup && d.cSeen >= collapseWarmup && meanLuma >= collapseDark && (on || begins)
	return ok && fall >= d.cfg.Collapse, fall
}

// followCollapse moves the collapse level toward a frame judged clean.
func (d *DetailLossDetector) followCollapse(dur float64, f *BlockFeature) {
	a := min(1, dur/max(d.cfg.CollapseWindow, dur))
	d.cInterior += (math.Log(f.Interior()+collapseFloor) - d.cInterior) * a
	d.cTexture += (math.Log(f.Texture()+textureFloor) - d.cTexture) * a
	d.cRatio += (math.Log(f.GridRatio()) - d.cRatio) * a
	d.cSeen += dur
}

// Flush ends the input at t.
func (d *DetailLossDetector) Flush(t float64) { d.dec.Flush(t) }

func (d *DetailLossDetector) annotate(e *Event) {
	// ratio_vs_recent: the grid ratio over its recent level, or the detail
	// drop factor, whichever was larger.
	// quant_rise: the most the quantizer stood above its level (H.264 QP),
	// when the decoder exported it.
	e.Values = map[string]float64{"ratio_vs_recent": round3(d.peak), "recent_ratio": round3(d.base)}
	if d.qpeak > 0 {
		e.Values["quant_rise"] = round3(d.qpeak)
	}
}
