package detectors

import "strconv"

// Defect names, as they appear in events.
const (
	Black       = "black"
	Freeze      = "freeze"
	Blockiness  = "blockiness"
	Silence     = "silence"
	Clipping    = "clipping"
	Loudness    = "loudness"
	AVSync      = "av_sync"
	SignalLoss  = "signal_loss"
	DecodeError = "decode_error"
	TR101290    = "tr101290"
	DetailLoss  = "detail_loss"
)

// Names lists every defect a stream can raise, in a stable order.
var Names = [...]string{Black, Freeze, Blockiness, Silence, Clipping, Loudness, AVSync, SignalLoss, DecodeError, TR101290, DetailLoss}

// State is whether an event raises or clears an alarm.
type State string

const (
	Raised  State = "raised"
	Cleared State = "cleared"
)

// Event is one raise or clear of a defect alarm. Times are seconds of media
// time from the start of the input.
type Event struct {
	Defect string
	State  State
	// Start is the time of the first defective frame or sample.
	Start float64
	// End is the time the defect stopped (the first good frame or sample, or the
	// end of the input); only set when State is Cleared.
	End float64
	// Values are measurements that explain the alarm (share of black pixels,
	// loudness, offset in ms...). Events are rare, so a small map is fine here.
	Values map[string]float64
	// Reason is a human-readable detail, for example why a track is missing.
	Reason string
	// Cause says why a clear happened (Cleared only): the defect ended
	// (CauseRecovered), or monitoring of it did (the others).
	Cause string
}

// Causes of a clear: consumers tell "the defect ended" from "monitoring
// stopped" by them.
const (
	CauseRecovered     = "recovered"       // the defect ended: good frames or samples again
	CauseInputEnded    = "input ended"     // the input ended (a file, a sender that stopped for good)
	CauseStreamStopped = "stream stopped"  // the stream was removed from the config, or analyze interrupted
	CauseConfigChanged = "config changed"  // the stream restarted with new settings
	CauseAgentStopping = "agent stopping"  // the agent is stopping (SIGTERM, an update)
	CauseAgentRestart  = "agent restarted" // left raised by a previous run that did not stop cleanly
)

// Key identifies the alarm an event raises or clears: its defect, and for
// tr101290, whose indicators are alarms of their own, the indicator too.
func (e Event) Key() string {
	if e.Defect == TR101290 && e.Reason != "" {
		return e.Defect + "/" + e.Reason
	}
	return e.Defect
}

// Duration returns End - Start for a cleared event and 0 otherwise.
func (e Event) Duration() float64 {
	if e.State != Cleared {
		return 0
	}
	return e.End - e.Start
}

// String formats the event for logs.
func (e Event) String() string {
	s := e.Defect + " " + string(e.State) + " start=" + strconv.FormatFloat(e.Start, 'f', 3, 64)
	if e.State == Cleared {
		s += " end=" + strconv.FormatFloat(e.End, 'f', 3, 64)
	}
	return s
}

// Emit receives events from decisions.
type Emit func(Event)
