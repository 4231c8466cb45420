package detectors

// The quantizer cue of the starved-encode detector (DetailLossConfig): the
// feature is the picture's mean quantizer as its bitstream coded it
// (VideoFrame.Quant, H.264's QP scale), read by the decoder, not measured
// in pixels; the decision is a jump against the stream's own recent level.
//
// An encoder starved of bits (a rate cap far below the content's need, a
// zone forced to the maximum quantizer) raises its quantizer from one
// picture to the next, by a factor of 3 to 10 in step size; the picture
// then loses its detail, at once on a key frame or over several P-frames
// that keep copying what they had. The bitstream says so on the first
// starved picture, however little the pixels have changed yet. Rate
// control on clean content moves the quantizer by a few steps from frame to
// frame (B-frames a little coarser, key frames finer, a ramp of 4 QP a
// frame at most on the captures of ../shared/media after a cut or a fade),
// so a run begins only where a picture stands QuantJump above the coarsest
// picture of the last QuantWindow seconds and at least at QuantFloor (a
// jump from a near-lossless level to an ordinary one is no loss). The last
// quantRise seconds before the picture are left out of that level: an
// encoder interpolates the B-frames just before a starved P-frame, so the
// jump may take two or three pictures; a ramp that takes longer (a CBR
// encoder out of a fade: MPEG-2's quantiser_scale from 4 to 62 over 15
// pictures) is rate control, and its pictures raise the level as it goes.

// quantRing is how many recent pictures the cue keeps (4 s at 60 fps).
const quantRing = 256

// quantRise is how long a jump may take (see above), in seconds.
const quantRise = 0.2

// quantBack is the share of QuantJump above the level at which the
// pictures just before a run's first one (inside quantRise) already count
// as starved: x264 gives the B-frames that open a zone quantizers between
// those of the P-frames on either side (28, 38, then 48 from a level of 27
// on a synthetic picture), so the jump is seen a frame or two after the
// zone's first picture; its run starts back on the first of those pictures
// two thirds of the way up and at QuantFloor.
const quantBack = 2.0 / 3

// quantSettle is how long, after a step in the picture (a cut, motion
// resuming after a still), a slice-level quantizer (HEVC) neither begins a
// run nor waits quantRise to count in the level: a rate-capped encoder
// answers a still picture coming back to life (or a cut) by raising its
// quantizer at once, up to its maximum for a frame or two (x265 with VBV on
// the quality corpus's re-encoded freezes: QP 20 in the freeze, 51 two
// pictures after it, back under 35 in half a second). That is rate control
// answering the content; the picture cues, which such streams keep, judge
// the pictures themselves. Every block's quantizer (H.264, MPEG-2) is not
// held back: there the quantizer judges alone.
const quantSettle = 0.2

// quantWarmup is the video the cue needs before it judges (a stream's
// first key frame is coded finer than what follows).
const quantWarmup = 0.5

// quantCue is the decision state of the quantizer cue.
type quantCue struct {
	t, q    [quantRing]float64 // recent pictures' times and quantizers (a ring)
	now     [quantRing]bool    // the picture counts in the level at once (see quantSettle)
	n, next int
	settle  float64 // no run begins before this time (see quantSettle)
	seen    float64 // seconds of video with a known quantizer
	on      bool
	base    float64 // the level a run began from
	low     float64 // seconds below the release level inside a run
	// began is the time of a run's first picture, set on the picture that
	// began it (see quantBack), and started says this picture did.
	began   float64
	started bool
}

// reset forgets the stream's level (a new encoder, or no quantizer).
func (c *quantCue) reset() {
	c.n, c.next, c.seen, c.on, c.low, c.settle = 0, 0, 0, false, 0, 0
}

// step notes a step in the picture at t, after that picture was judged:
// the pictures of the next quantSettle settle (see quantSettle).
func (c *quantCue) step(t float64) {
	c.settle = t + quantSettle
}

// level returns the coarsest quantizer of the pictures from t0 to before t1.
func (c *quantCue) level(t0, t1 float64) (float64, bool) {
	lv, ok := 0.0, false
	for i := range c.n {
		j := (c.next - 1 - i + quantRing) % quantRing
		if c.t[j] < t0 {
			break
		}
		if c.t[j] >= t1 && !c.now[j] {
			continue
		}
		if !ok || c.q[j] > lv {
			lv, ok = c.q[j], true
		}
	}
	return lv, ok
}

// observe judges one picture (time t, duration dur, quantizer q) and
// returns whether it is starved and its rise over the run's level.
func (c *quantCue) observe(cfg *DetailLossConfig, t, dur, q float64) (bool, float64) {
	if c.n > 0 && t < c.t[(c.next-1+quantRing)%quantRing] {
		c.reset() // time went back (a new input): a new level
	}
	c.started = false
	settling := t < c.settle-eps // after a step (the step's own picture was judged before it was noted)
	switch {
	case !c.on:
		if lv, ok := c.level(t-cfg.QuantWindow, t-quantRise); ok && !settling && c.seen >= quantWarmup && q >= cfg.QuantFloor && q-lv >= cfg.QuantJump {
			c.on, c.base, c.low = true, lv, 0
			c.started, c.began = true, c.back(t, max(lv+quantBack*cfg.QuantJump, cfg.QuantFloor))
		}
	case q >= c.base+cfg.QuantJump/2:
		c.low = 0
	default:
		c.finer(cfg, dur)
	}
	c.seen += dur
	if c.on {
		return true, q - c.base
	}
	// The level is made of pictures judged clean: a starved stretch does
	// not hide the next one.
	c.t[c.next], c.q[c.next], c.now[c.next] = t, q, settling
	c.next = (c.next + 1) % quantRing
	c.n = min(c.n+1, quantRing)
	return false, 0
}

// back returns the time of the first of the pictures just before t (inside
// quantRise, without a break) at or above q, or t.
func (c *quantCue) back(t, q float64) float64 {
	first := t
	for i := range c.n {
		j := (c.next - 1 - i + quantRing) % quantRing
		if c.t[j] <= t-quantRise || c.q[j] < q {
			break
		}
		first = c.t[j]
	}
	return first
}

// unknown passes a picture whose quantizer is unknown (a decoder's last,
// flushed picture; a hardware or HEVC decoder after a switch): inside a
// run it counts as a finer one.
func (c *quantCue) unknown(cfg *DetailLossConfig, t, dur float64) bool {
	c.started = false
	if c.on {
		c.finer(cfg, dur)
	}
	return c.on
}

// finer counts a picture under the release level inside a run: the run
// ends once they last longer than QuantHold (the detector bridges them
// meanwhile, see DetailLossDetector.observe).
func (c *quantCue) finer(cfg *DetailLossConfig, dur float64) {
	if c.low += dur; c.low > cfg.QuantHold {
		c.on, c.low = false, 0
	}
}
