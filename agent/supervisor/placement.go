package supervisor

import (
	"context"
	"math"
	"time"

	"github.com/streamqc/streamqc/agent/placement"
)

// Placer decides where each stream decodes (agent/placement.Placer).
type Placer interface {
	Place(now time.Time, reqs []placement.Request) map[string]placement.Decision
}

// place turns the configured streams into the ones to run: each gets its
// placer's decoder, device and thread count. Without a placer they run as
// configured.
func (s *Supervisor) place(cfgs []StreamConfig) []StreamConfig {
	if s.o.Placer == nil {
		return cfgs
	}
	s.mu.Lock()
	reqs := make([]placement.Request, len(cfgs))
	for i, c := range cfgs {
		lag := math.NaN()
		if st := s.streams[c.ID]; st != nil && st.live {
			lag = math.Float64frombits(st.lagBits.Load())
		}
		reqs[i] = placement.Request{ID: c.ID, HWAccel: c.Media.HWAccel, HWDevice: c.Media.HWDevice, Threads: c.Media.Threads, Lag: lag}
	}
	s.mu.Unlock()
	ds := s.o.Placer.Place(time.Now(), reqs)
	out := make([]StreamConfig, len(cfgs))
	for i, c := range cfgs {
		if d, ok := ds[c.ID]; ok {
			c.Decoder, c.Media.HWAccel, c.Media.HWDevice, c.Media.Threads = d.Decoder, d.HWAccel, d.HWDevice, d.Threads
		}
		out[i] = c
	}
	return out
}

// Rebalance places the configured streams again with the load of now and
// restarts only those whose decoder or thread count changed.
func (s *Supervisor) Rebalance() Diff {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	if s.stopped {
		return Diff{}
	}
	d := s.apply(s.place(s.desired))
	if len(d.Restarted) > 0 {
		s.o.Logger.Info("streams placed again", "restarted", d.Restarted)
	}
	return d
}

// rebalance runs Rebalance every PlaceEvery until ctx is done.
func (s *Supervisor) rebalance(ctx context.Context) {
	t := time.NewTicker(s.o.PlaceEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.Rebalance()
		}
	}
}
