package agent

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/streamqc/streamqc/detectors"
)

// openAlarm is an alarm raised and not yet cleared, kept on disk so that an
// agent killed with alarms raised clears them when it starts again: a
// consumer never keeps an alarm that no process will ever clear.
type openAlarm struct {
	Stream string             `json:"stream"`
	Defect string             `json:"defect"`
	Start  float64            `json:"start"`
	Raised time.Time          `json:"raised"`
	Values map[string]float64 `json:"values,omitempty"`
	// Indicator: a tr101290 alarm's indicator, which its clear must name.
	Indicator string `json:"indicator,omitempty"`
}

func indicator(e detectors.Event) string {
	if e.Defect == detectors.TR101290 {
		return e.Reason
	}
	return ""
}

const alarmsFile = "alarms.json"

// trackAlarm records a raise before its event is spooled and a clear after,
// and writes the open alarms to disk each time (atomic rename, no fsync: a
// killed process loses nothing the kernel holds). A crash between the two
// writes can so only make the next start clear an alarm twice or clear one
// whose raise was never sent: never leave one raised forever.
func (a *Agent) trackAlarm(stream string, e detectors.Event) {
	k := stream + "/" + e.Key()
	a.alarmsMu.Lock()
	defer a.alarmsMu.Unlock()
	a.mu.Lock()
	if e.State == detectors.Raised {
		a.open[k] = openAlarm{Stream: stream, Defect: e.Defect, Start: e.Start, Raised: time.Now(), Indicator: indicator(e)}
	} else {
		delete(a.open, k)
	}
	list := make([]openAlarm, 0, len(a.open))
	for _, o := range a.open {
		list = append(list, o)
	}
	a.mu.Unlock()
	if err := a.writeAlarms(list); err != nil {
		a.log.Warn("open alarms not saved", "err", err)
	}
}

func (a *Agent) writeAlarms(list []openAlarm) error {
	b, err := json.Marshal(list)
	if err != nil {
		return err
	}
	path := filepath.Join(a.cfg.StateDir, alarmsFile)
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, b, 0o640); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// clearStaleAlarms clears, with a reason, the alarms a previous process left
// raised (it was killed or lost power before it could clear them).
func (a *Agent) clearStaleAlarms() {
	b, err := os.ReadFile(filepath.Join(a.cfg.StateDir, alarmsFile))
	if err != nil {
		if !os.IsNotExist(err) {
			a.log.Warn("open alarms of the previous run unreadable", "err", err)
		}
		return
	}
	var list []openAlarm
	if err := json.Unmarshal(b, &list); err != nil {
		a.log.Warn("open alarms of the previous run unreadable", "err", err)
		return
	}
	for _, o := range list {
		a.log.Info("clearing an alarm left raised by the previous run", "stream", o.Stream, "defect", o.Defect)
		reason := fmt.Sprintf("agent restarted: the alarm raised at %s is no longer known", o.Raised.UTC().Format(time.RFC3339))
		if o.Indicator != "" {
			reason = o.Indicator // a tr101290 clear names its indicator, which tells its alarms apart
		}
		a.emit(o.Stream, detectors.Event{
			Defect: o.Defect, State: detectors.Cleared, Start: o.Start,
			End:    o.Start + max(0, time.Since(o.Raised).Seconds()),
			Reason: reason, Cause: detectors.CauseAgentRestart,
		}, nil)
	}
}
