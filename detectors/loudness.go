package detectors

import "math"

// Loudness measurement per ITU-R BS.1770-4 and EBU R128 (Tech 3341/3342),
// computed the way FFmpeg's ebur128 filter and libebur128 do it.

const (
	// lufsOffset is BS.1770's -0.691 dB, which makes a 1 kHz sine read its dBFS level.
	lufsOffset = -0.691
	// absoluteGate is both the BS.1770 absolute gate and the floor below which
	// audio counts as silence rather than as quiet programme.
	absoluteGate = -70.0
	// integratedRelGate and rangeRelGate are the relative gates of BS.1770-4
	// (integrated) and EBU Tech 3342 (loudness range), in LU.
	integratedRelGate   = -10.0
	rangeRelGate        = -20.0
	rangeLowPercentile  = 0.10
	rangeHighPercentile = 0.95

	// stepsPerSecond: every value is updated on 100 ms steps, the gating block hop.
	stepsPerSecond = 10
	momentarySteps = 4  // 400 ms
	shortTermSteps = 30 // 3 s

	surroundWeight = 1.41

	// The histograms cover -70..+10 LUFS in 0.1 LU bins, like libebur128's
	// histogram mode, so that months of live audio take constant memory.
	histMin       = absoluteGate
	histBinsPerLU = 10
	histBins      = 80 * histBinsPerLU

	// minLoudnessRate keeps 100 ms steps at least 100 samples long; lower rates
	// are not audio a broadcast carries.
	minLoudnessRate = 1000

	// presetChannels is the channel count the constructor allocates for, so that
	// stereo and 5.1/7.1 streams never allocate on their first block.
	presetChannels = 8

	// denormalFloor: filter states below it are flushed to zero, because float64
	// denormals on long digital silence would make the filters many times slower.
	denormalFloor = 1e-30
)

// biquad holds normalised (a0 = 1) second-order section coefficients.
type biquad struct{ b0, b1, b2, a1, a2 float64 }

// kWeighting returns the BS.1770 pre-filter (high shelf) and RLB high-pass for
// any sample rate, with the analogue prototype parameters libebur128 derives
// from the standard's 48 kHz table.
func kWeighting(sampleRate float64) (pre, rlb biquad) {
	f0 := 1681.974450955533
	g := 3.999843853973347
	q := 0.7071752369554196
	k := math.Tan(math.Pi * f0 / sampleRate)
	vh := math.Pow(10, g/20)
	vb := math.Pow(vh, 0.4996667741545416)
	a0 := 1 + k/q + k*k
	pre = biquad{
		b0: (vh + vb*k/q + k*k) / a0,
		b1: 2 * (k*k - vh) / a0,
		b2: (vh - vb*k/q + k*k) / a0,
		a1: 2 * (k*k - 1) / a0,
		a2: (1 - k/q + k*k) / a0,
	}

	f0 = 38.13547087602444
	q = 0.5003270373238773
	k = math.Tan(math.Pi * f0 / sampleRate)
	a0 = 1 + k/q + k*k
	// The RLB numerator is left unnormalised (1, -2, 1), as in the standard's table.
	rlb = biquad{b0: 1, b1: -2, b2: 1, a1: 2 * (k*k - 1) / a0, a2: (1 - k/q + k*k) / a0}
	return pre, rlb
}

// loudnessChannel is one channel's K-weighting filter state (transposed direct
// form II, float64) and sample peak.
type loudnessChannel struct {
	weight         float64
	s1, s2, r1, r2 float64
	peak           float32
}

// filter runs x through the K-weighting cascade and returns the sum of the
// squared weighted samples.
func (c *loudnessChannel) filter(pre, rlb *biquad, x []float32) float64 {
	pb0, pb1, pb2, pa1, pa2 := pre.b0, pre.b1, pre.b2, pre.a1, pre.a2
	rb0, rb1, rb2, ra1, ra2 := rlb.b0, rlb.b1, rlb.b2, rlb.a1, rlb.a2
	s1, s2, r1, r2 := c.s1, c.s2, c.r1, c.r2
	peak := c.peak
	var sum float64
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > peak {
			peak = a
		}
		in := float64(v)
		y := pb0*in + s1
		s1 = pb1*in - pa1*y + s2
		s2 = pb2*in - pa2*y
		z := rb0*y + r1
		r1 = rb1*y - ra1*z + r2
		r2 = rb2*y - ra2*z
		sum += z * z
	}
	// A NaN or infinite sample would poison the filter for the rest of the
	// stream: drop the segment and restart the filter instead.
	if math.IsNaN(sum) || math.IsInf(sum, 0) {
		s1, s2, r1, r2, sum = 0, 0, 0, 0, 0
	}
	c.s1, c.s2, c.r1, c.r2 = flushDenormal(s1), flushDenormal(s2), flushDenormal(r1), flushDenormal(r2)
	c.peak = peak
	return sum
}

// trackPeak updates the sample peak of a channel that does not count for
// loudness (LFE).
func (c *loudnessChannel) trackPeak(x []float32) {
	peak := c.peak
	for _, v := range x {
		if a := float32(math.Abs(float64(v))); a > peak {
			peak = a
		}
	}
	c.peak = peak
}

func flushDenormal(v float64) float64 {
	if math.Abs(v) < denormalFloor {
		return 0
	}
	return v
}

// loudnessHistogram counts gating blocks by loudness in fixed bins. Each bin
// also keeps the exact sums of its blocks' energies and loudness values, so the
// only approximation left is at the bin that straddles a relative gate.
type loudnessHistogram struct {
	count    [histBins]uint64
	energy   [histBins]float64
	loudness [histBins]float64
	total    uint64
	totalE   float64
}

func (h *loudnessHistogram) add(loudness, energy float64) {
	i := int(math.Floor((loudness - histMin) * histBinsPerLU))
	i = min(max(i, 0), histBins-1)
	h.count[i]++
	h.energy[i] += energy
	h.loudness[i] += loudness
	h.total++
	h.totalE += energy
}

// share returns the part of bin i that lies above the gate, assuming the bin's
// blocks are spread evenly over its 0.1 LU.
func (h *loudnessHistogram) share(i int, gate float64) float64 {
	lo := histMin + float64(i)/histBinsPerLU
	hi := lo + 1.0/histBinsPerLU
	switch {
	case lo >= gate:
		return 1
	case hi <= gate:
		return 0
	default:
		return (hi - gate) * histBinsPerLU
	}
}

// relativeGate returns the gate offset LU below the mean energy of all blocks.
func (h *loudnessHistogram) relativeGate(offset float64) float64 {
	return energyToLUFS(h.totalE/float64(h.total)) + offset
}

// percentile returns the mean loudness of the bin holding the value of rank
// round(p*n) (from 1) among the n gated values, FFmpeg's choice; libebur128 and
// the Tech 3342 example take rank round(p*(n-1)) from 0, one value higher,
// which only matters while there are few values.
func (h *loudnessHistogram) percentile(gate, n, p float64) float64 {
	rank := max(math.Round(p*n), 1)
	var cum float64
	last := math.NaN()
	for i := range histBins {
		if h.count[i] == 0 {
			continue
		}
		c := h.share(i, gate) * float64(h.count[i])
		if c <= 0 {
			continue
		}
		last = h.loudness[i] / float64(h.count[i])
		cum += c
		if cum >= rank {
			return last
		}
	}
	return last
}

func (h *loudnessHistogram) reset() { *h = loudnessHistogram{} }

// energyToLUFS converts a weighted mean square to loudness; zero is -Inf.
func energyToLUFS(e float64) float64 {
	return lufsOffset + 10*math.Log10(e)
}

// LoudnessMeter measures momentary, short-term and integrated loudness and the
// loudness range of a stream of audio blocks. Values are updated at the end of
// every 100 ms step, counted in samples from the first sample fed, whatever the
// block sizes. Memory is constant: integrated loudness and range come from
// histograms, not from lists of blocks. A change of channel count or sample
// rate restarts the measurement.
//
// Before a window is full (400 ms for momentary, 3 s for short-term) its value
// is -Inf rather than computed over the part seen or a zero-padded window:
// FFmpeg's ebur128 prints its floor (-120.7 LUFS, from a 1e-12 bias) there, so
// both mean "no measurement yet", and a partial window would make the loudness
// detector judge a 3 s criterion on less than 3 s of audio.
type LoudnessMeter struct {
	sampleRate int
	channels   []loudnessChannel
	pre, rlb   biquad

	// Step lengths alternate between sampleRate/10 and one more sample when the
	// rate is not a multiple of 10, so that step k always ends at sample
	// round(k*sampleRate/10) without drift.
	stepBase, stepRem, stepFrac int
	stepLen, stepPos            int
	stepEnergy                  float64

	// ring holds the weighted energy and sample count of the last 30 steps.
	ringE   [shortTermSteps]float64
	ringN   [shortTermSteps]int
	ringPos int
	steps   uint64

	momentary, shortTerm float64
	blocks, shortTerms   loudnessHistogram
}

// NewLoudnessMeter returns a meter; it takes its format from the first block.
func NewLoudnessMeter() *LoudnessMeter {
	m := &LoudnessMeter{channels: make([]loudnessChannel, 0, presetChannels)}
	m.Reset()
	return m
}

// Reset restarts every measurement, keeping the current format.
func (m *LoudnessMeter) Reset() {
	for i := range m.channels {
		m.channels[i] = loudnessChannel{}
	}
	m.stepFrac, m.stepPos, m.stepEnergy = 0, 0, 0
	m.stepLen = m.nextStepLen()
	m.ringE, m.ringN, m.ringPos, m.steps = [shortTermSteps]float64{}, [shortTermSteps]int{}, 0, 0
	m.momentary, m.shortTerm = math.Inf(-1), math.Inf(-1)
	m.blocks.reset()
	m.shortTerms.reset()
}

// setFormat switches to a new channel count and sample rate; this is the only
// place that may allocate.
func (m *LoudnessMeter) setFormat(sampleRate, channels int) {
	m.sampleRate = sampleRate
	if cap(m.channels) < channels {
		m.channels = make([]loudnessChannel, channels)
	}
	m.channels = m.channels[:channels]
	m.pre, m.rlb = kWeighting(float64(sampleRate))
	m.stepBase, m.stepRem = sampleRate/stepsPerSecond, sampleRate%stepsPerSecond
	m.Reset()
}

// nextStepLen spreads the remainder of sampleRate/10 over the steps, Bresenham-style.
func (m *LoudnessMeter) nextStepLen() int {
	m.stepFrac += m.stepRem
	if m.stepFrac*2 >= stepsPerSecond {
		m.stepFrac -= stepsPerSecond
		return m.stepBase + 1
	}
	return m.stepBase
}

// channelWeight is BS.1770's weight of channel i of n: the block's Layout when
// it names every channel, else stereo/mono (all front) or FFmpeg's 5.1 and 7.1
// orders (FL FR FC LFE BL BR [SL SR]).
func channelWeight(layout []Channel, i, n int) float64 {
	role := ChannelFront
	switch {
	case len(layout) == n:
		role = layout[i]
	case (n == 6 || n == 8) && i == 3:
		role = ChannelLFE
	case (n == 6 || n == 8) && i > 3:
		role = ChannelSurround
	}
	switch role {
	case ChannelSurround:
		return surroundWeight
	case ChannelLFE:
		return 0
	default:
		return 1
	}
}

// Add feeds a block; onStep, if non-nil, is called at the end of every
// completed 100 ms step with the media time of that step's end and the current
// momentary and short-term loudness (LUFS; math.Inf(-1) when below measurable).
// Blocks without samples or below 1 kHz sample rate are ignored.
func (m *LoudnessMeter) Add(b *AudioBlock, onStep func(t, momentary, shortTerm float64)) {
	nch := len(b.Samples)
	if nch == 0 || b.SampleRate < minLoudnessRate {
		return
	}
	n := len(b.Samples[0])
	for _, s := range b.Samples[1:] {
		n = min(n, len(s)) // a malformed block must not panic the monitor
	}
	if n == 0 {
		return
	}
	if nch != len(m.channels) || b.SampleRate != m.sampleRate {
		m.setFormat(b.SampleRate, nch)
	}
	for i := range m.channels {
		m.channels[i].weight = channelWeight(b.Layout, i, nch)
	}
	rate := float64(b.SampleRate)
	for off := 0; off < n; {
		seg := min(n-off, m.stepLen-m.stepPos)
		for c := range m.channels {
			ch := &m.channels[c]
			x := b.Samples[c][off : off+seg]
			if ch.weight == 0 {
				ch.trackPeak(x)
				continue
			}
			m.stepEnergy += ch.weight * ch.filter(&m.pre, &m.rlb, x)
		}
		off += seg
		m.stepPos += seg
		if m.stepPos == m.stepLen {
			m.endStep()
			if onStep != nil {
				onStep(b.PTS+float64(off)/rate, m.momentary, m.shortTerm)
			}
		}
	}
}

// endStep closes a 100 ms step: it updates the sliding windows and feeds the
// gating histograms (400 ms blocks at 75% overlap, short-term values at 10 Hz
// as FFmpeg does for the loudness range).
func (m *LoudnessMeter) endStep() {
	m.ringE[m.ringPos] = m.stepEnergy
	m.ringN[m.ringPos] = m.stepLen
	m.ringPos = (m.ringPos + 1) % shortTermSteps
	m.steps++
	m.stepEnergy, m.stepPos = 0, 0
	m.stepLen = m.nextStepLen()

	var e400 float64
	m.momentary, e400 = m.window(momentarySteps)
	if m.momentary >= absoluteGate {
		m.blocks.add(m.momentary, e400)
	}
	var e3000 float64
	m.shortTerm, e3000 = m.window(shortTermSteps)
	if m.shortTerm >= absoluteGate {
		m.shortTerms.add(m.shortTerm, e3000)
	}
}

// window returns the loudness and mean weighted energy of the last k steps, or
// -Inf before k steps have been seen.
func (m *LoudnessMeter) window(k int) (float64, float64) {
	if m.steps < uint64(k) {
		return math.Inf(-1), 0
	}
	var e float64
	var n int
	for j := 1; j <= k; j++ {
		i := (m.ringPos - j + shortTermSteps) % shortTermSteps
		e += m.ringE[i]
		n += m.ringN[i]
	}
	e /= float64(n)
	return energyToLUFS(e), e
}

// Momentary returns the loudness of the last 400 ms, as of the last completed step.
func (m *LoudnessMeter) Momentary() float64 { return m.momentary }

// ShortTerm returns the loudness of the last 3 s, as of the last completed step.
func (m *LoudnessMeter) ShortTerm() float64 { return m.shortTerm }

// Integrated returns the gated loudness of everything since the start or the
// last reset (BS.1770-4: absolute gate -70 LUFS, relative gate -10 LU), or
// -Inf when no block passed the gates.
func (m *LoudnessMeter) Integrated() float64 {
	h := &m.blocks
	if h.total == 0 {
		return math.Inf(-1)
	}
	gate := h.relativeGate(integratedRelGate)
	var n, e float64
	for i := range histBins {
		if h.count[i] == 0 {
			continue
		}
		s := h.share(i, gate)
		n += s * float64(h.count[i])
		e += s * h.energy[i]
	}
	if n == 0 {
		return math.Inf(-1)
	}
	return energyToLUFS(e / n)
}

// Range returns the loudness range in LU (EBU Tech 3342: short-term values,
// absolute gate -70 LUFS, relative gate -20 LU, 10th to 95th percentile), or 0
// before the first short-term value.
func (m *LoudnessMeter) Range() float64 {
	h := &m.shortTerms
	if h.total == 0 {
		return 0
	}
	gate := h.relativeGate(rangeRelGate)
	var n float64
	for i := range histBins {
		if h.count[i] != 0 {
			n += h.share(i, gate) * float64(h.count[i])
		}
	}
	if n == 0 {
		return 0
	}
	return h.percentile(gate, n, rangeHighPercentile) - h.percentile(gate, n, rangeLowPercentile)
}

// SamplePeak returns the largest absolute sample of channel ch since the start
// or the last reset (linear, 1.0 = full scale), or 0 for an unknown channel.
func (m *LoudnessMeter) SamplePeak(ch int) float64 {
	if ch < 0 || ch >= len(m.channels) {
		return 0
	}
	return float64(m.channels[ch].peak)
}

// LoudnessConfig sets the loudness detector's thresholds on short-term loudness.
type LoudnessConfig struct {
	Enabled      bool    `json:"enabled"`
	MaxShortTerm float64 `json:"max_short_term"` // LUFS, default -15
	// MinShortTerm in LUFS, default -38; audio below -70 LUFS (silence) never
	// counts as too quiet: silence is the silence detector's job.
	MinShortTerm float64 `json:"min_short_term"`
	MinDuration  float64 `json:"min_duration"` // seconds, default 2
}

// DefaultLoudnessConfig returns the default loudness thresholds.
func DefaultLoudnessConfig() LoudnessConfig {
	return LoudnessConfig{Enabled: true, MaxShortTerm: -15, MinShortTerm: -38, MinDuration: 2}
}

// loudnessClearAfter is the hysteresis before a loudness alarm clears; short-term
// loudness hovering around a threshold would otherwise raise and clear in turn.
const loudnessClearAfter = 1.0

// LoudnessDetector raises a Loudness alarm while the short-term loudness stays
// above MaxShortTerm or below MinShortTerm (but above silence) for MinDuration.
type LoudnessDetector struct {
	cfg    LoudnessConfig
	meter  *LoudnessMeter
	dec    Decision
	onStep func(t, momentary, shortTerm float64) // d.step, bound once so Audio allocates nothing

	last              float64 // short-term loudness at the last step
	runMax, runMin    float64 // extremes of the current bad run
	runLoud, runQuiet bool    // what the current bad run has been
}

// NewLoudnessDetector returns a detector that sends its events to emit.
func NewLoudnessDetector(cfg LoudnessConfig, emit Emit) *LoudnessDetector {
	d := &LoudnessDetector{cfg: cfg, meter: NewLoudnessMeter(), last: math.Inf(-1)}
	d.dec = Decision{Defect: Loudness, MinDuration: cfg.MinDuration, ClearAfter: loudnessClearAfter, Emit: emit}
	d.dec.Annotate = d.annotate
	d.onStep = d.step
	return d
}

// Audio feeds a block; a disabled detector measures nothing.
func (d *LoudnessDetector) Audio(b *AudioBlock) {
	if !d.cfg.Enabled {
		return
	}
	d.meter.Add(b, d.onStep)
}

// Flush ends the input at time t, clearing a raised alarm.
func (d *LoudnessDetector) Flush(t float64) { d.dec.Flush(t) }

// Meter returns the detector's loudness meter, for reporting.
func (d *LoudnessDetector) Meter() *LoudnessMeter { return d.meter }

func (d *LoudnessDetector) step(t, _, shortTerm float64) {
	loud := shortTerm > d.cfg.MaxShortTerm
	quiet := shortTerm < d.cfg.MinShortTerm && shortTerm > absoluteGate
	if loud || quiet {
		if inRun, _ := d.dec.Pending(); !inRun {
			d.runMax, d.runMin = shortTerm, shortTerm
			d.runLoud, d.runQuiet = false, false
		}
		d.runMax, d.runMin = max(d.runMax, shortTerm), min(d.runMin, shortTerm)
		d.runLoud, d.runQuiet = d.runLoud || loud, d.runQuiet || quiet
	}
	d.last = shortTerm
	d.dec.Observe(t, loud || quiet)
	d.dec.Advance(t)
}

// annotate adds the measurements to an event; -Inf is left out because it has
// no JSON encoding.
// annotate names measurements apart from the settings they broke: every
// value ends in its unit, the thresholds in _limit_lufs (the setting names,
// max_short_term and min_short_term, read as measurements in events).
func (d *LoudnessDetector) annotate(e *Event) {
	e.Values = make(map[string]float64, 6)
	if !math.IsInf(d.last, 0) {
		e.Values["short_term_lufs"] = d.last
	}
	if d.runLoud {
		e.Values["loudest_short_term_lufs"] = d.runMax
		e.Values["high_limit_lufs"] = d.cfg.MaxShortTerm
		e.Reason = "short-term loudness too high"
	}
	if d.runQuiet {
		e.Values["quietest_short_term_lufs"] = d.runMin
		e.Values["low_limit_lufs"] = d.cfg.MinShortTerm
		e.Reason = "short-term loudness too low"
	}
	if d.runLoud && d.runQuiet {
		e.Reason = "short-term loudness too high and too low"
	}
	if i := d.meter.Integrated(); !math.IsInf(i, 0) {
		e.Values["integrated_lufs"] = i
	}
}
