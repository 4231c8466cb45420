package agent

import (
	"context"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/streamqc/streamqc/agent/supervisor"
)

// wedgedAfter is how long a running, not stalled stream may deliver nothing
// before the agent counts it as wedged and stops feeding systemd's watchdog.
const wedgedAfter = 20 * time.Second

// notify tells systemd (Type=notify) the agent is ready; without
// NOTIFY_SOCKET it does nothing.
func (a *Agent) notify(state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		a.log.Warn("sd_notify", "state", state, "err", err)
	}
}

// watchdog feeds systemd's watchdog (WatchdogSec) only while the agent makes
// progress: its main loop turns and every running stream delivers frames or
// audio (a live input being reopened counts as alive). A wedged decoder or a
// stuck loop stops the pings, and systemd restarts the agent.
func (a *Agent) watchdog(ctx context.Context) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil || interval <= 0 {
		return
	}
	last := map[string]seen{}
	tick := time.NewTicker(interval / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		now := time.Now()
		healthy := now.Sub(time.Unix(0, a.loopAlive.Load())) < max(2*interval, 5*time.Second)
		if !healthy {
			a.log.Error("main loop stuck: not feeding the watchdog")
		}
		for _, w := range wedged(last, a.sup.Status(), now) {
			healthy = false
			a.log.Error("stream delivers nothing and is not reconnecting: not feeding the watchdog", "stream", w)
		}
		if healthy {
			if _, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog); err != nil {
				a.log.Warn("watchdog ping", "err", err)
			}
		}
	}
}

type seen struct {
	count int64
	at    time.Time
}

// wedged returns the streams that are running, not reconnecting, and have
// delivered nothing for wedgedAfter; last remembers progress between calls.
func wedged(last map[string]seen, list []supervisor.Status, now time.Time) []string {
	var out []string
	for _, s := range list {
		n := s.Frames + s.AudioBlocks
		prev, ok := last[s.ID]
		if !ok || n != prev.count || s.State != supervisor.Running || s.Stalled {
			last[s.ID] = seen{n, now}
			continue
		}
		if now.Sub(prev.at) > wedgedAfter {
			out = append(out, s.ID)
		}
	}
	return out
}
