package detectors

// eps absorbs float rounding when comparing accumulated media times.
const eps = 1e-6

// Decision turns a timeline of good/bad observations into raised and cleared
// events. It is the one policy every detector and every backend shares:
//   - an alarm is raised once the condition has held for MinDuration, with
//     Start at the first defective frame or sample of that run;
//   - a raised alarm is cleared once the condition has been absent for
//     ClearAfter (hysteresis), with End at the first good frame or sample;
//     likewise a bad run not yet raised survives good gaps shorter than
//     ClearAfter, so an intermittent defect is one alarm, not none.
//
// Observations carry exact media times, so video feeds it per frame and audio
// per sample transition. It allocates nothing per observation.
type Decision struct {
	Defect      string
	MinDuration float64
	ClearAfter  float64
	// Emit receives the events; Annotate, when set, adds measurements to them.
	Emit     Emit
	Annotate func(*Event)

	bad       bool    // the last observation
	runStart  float64 // start of the current bad run
	inRun     bool
	raised    bool
	goodStart float64 // start of the good stretch while raised
	inGood    bool
	bridging  bool // the good stretch is bridged (Bridge) until the next Observe
	now       float64
}

// Observe records that from time t on the condition is bad (or good).
func (d *Decision) Observe(t float64, bad bool) {
	d.Advance(t)
	d.bridging = false
	switch {
	case bad:
		if !d.inRun {
			d.inRun, d.runStart = true, t
		}
		d.inGood = false
	case d.inRun:
		if !d.inGood {
			d.inGood, d.goodStart = true, t
		}
		if d.ClearAfter <= 0 {
			d.end(d.goodStart) // t, or where a bridged stretch began
		}
	}
	d.bad = bad
	d.Advance(t) // a zero MinDuration raises at once
}

// Bridge records that from time t on the condition is absent but may come
// back: a detector's own hysteresis. The run neither ends nor raises its
// alarm until the next Observe; if that one is good, the run ends where
// the bridged stretch began, whatever ClearAfter says.
func (d *Decision) Bridge(t float64) {
	d.Advance(t)
	if d.inRun && !d.inGood {
		d.inGood, d.goodStart = true, t
	}
	d.bad, d.bridging = false, d.inRun
}

// Advance tells the decision that media time has reached t with no change.
func (d *Decision) Advance(t float64) {
	if t > d.now {
		d.now = t
	}
	if d.inRun && !d.raised && d.bad && t-d.runStart >= d.MinDuration-eps {
		d.raised = true
		d.emit(Event{Defect: d.Defect, State: Raised, Start: d.runStart})
	}
	if d.inRun && d.inGood && !d.bridging && t-d.goodStart >= d.ClearAfter-eps {
		d.end(d.goodStart)
	}
}

// Raised reports whether the alarm is up.
func (d *Decision) Raised() bool { return d.raised }

// Pending reports whether a bad run is under way, raised or not, and since when.
func (d *Decision) Pending() (bool, float64) { return d.inRun, d.runStart }

// Flush ends the input at time t: a raised alarm is cleared with End at the
// first good time seen, or t if the defect lasted to the end.
func (d *Decision) Flush(t float64) {
	d.Advance(t)
	if d.raised {
		end := t
		if d.inGood {
			end = d.goodStart
		}
		d.clear(end)
	}
	d.inRun, d.bad = false, false
}

// end closes the bad run at time end, clearing the alarm if it was raised.
func (d *Decision) end(end float64) {
	if !d.raised {
		d.inRun, d.inGood = false, false
		return
	}
	d.clear(end)
}

func (d *Decision) clear(end float64) {
	start := d.runStart
	d.raised, d.inRun, d.inGood = false, false, false
	d.emit(Event{Defect: d.Defect, State: Cleared, Start: start, End: end})
}

func (d *Decision) emit(e Event) {
	if d.Annotate != nil {
		d.Annotate(&e)
	}
	if d.Emit != nil {
		d.Emit(e)
	}
}
