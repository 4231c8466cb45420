package detectors

import (
	"math"
	"testing"
)

type obs struct {
	t   float64
	bad bool
}

func TestDecision(t *testing.T) {
	tests := []struct {
		name       string
		min, clear float64
		obs        []obs
		end        float64
		want       []Event
	}{
		{
			name: "short bad run is ignored",
			min:  2, obs: []obs{{0, false}, {1, true}, {2.5, false}}, end: 5,
		},
		{
			name: "run long enough raises at its start and clears at first good",
			min:  2, obs: []obs{{0, false}, {1, true}, {3.5, false}}, end: 5,
			want: []Event{{State: Raised, Start: 1}, {State: Cleared, Start: 1, End: 3.5}},
		},
		{
			name: "defect lasting to the end is cleared at the end",
			min:  1, obs: []obs{{0, true}}, end: 4,
			want: []Event{{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 4}},
		},
		{
			name: "hysteresis keeps the alarm across a short good gap",
			min:  1, clear: 1, obs: []obs{{0, true}, {2, false}, {2.5, true}, {4, false}}, end: 6,
			want: []Event{{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 4}},
		},
		{
			name: "hysteresis clears after a long enough good stretch",
			min:  1, clear: 1, obs: []obs{{0, true}, {2, false}, {3.2, true}, {5, false}}, end: 5.5,
			want: []Event{
				{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 2},
				{State: Raised, Start: 3.2}, {State: Cleared, Start: 3.2, End: 5},
			},
		},
		{
			name: "hysteresis bridges a short good gap before the raise",
			min:  1, clear: 0.5, obs: []obs{{0, true}, {0.6, false}, {0.8, true}, {1.5, false}}, end: 3,
			want: []Event{{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 1.5}},
		},
		{
			name: "a long good gap ends a pending run",
			min:  1, clear: 0.5, obs: []obs{{0, true}, {0.6, false}, {1.2, true}, {1.9, false}}, end: 3,
		},
		{
			name: "zero minimum raises on the first bad observation",
			min:  0, obs: []obs{{1, true}, {1.04, false}}, end: 2,
			want: []Event{{State: Raised, Start: 1}, {State: Cleared, Start: 1, End: 1.04}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Event
			d := Decision{Defect: "x", MinDuration: tc.min, ClearAfter: tc.clear, Emit: func(e Event) { got = append(got, e) }}
			for _, o := range tc.obs {
				d.Observe(o.t, o.bad)
				d.Advance(o.t + 0.01)
			}
			d.Flush(tc.end)
			checkDecisionEvents(t, got, tc.want)
		})
	}
}

type bridgeKind int

const (
	obsGood bridgeKind = iota
	obsBad
	obsBridge
)

type bridgeObs struct {
	t    float64
	kind bridgeKind
}

// TestDecisionBridge: Bridge, a detector's own hysteresis (ClearAfter 0).
func TestDecisionBridge(t *testing.T) {
	tests := []struct {
		name string
		min  float64
		obs  []bridgeObs
		end  float64
		want []Event
	}{
		{
			name: "a bridged stretch neither raises the alarm nor ends the run",
			min:  1, obs: []bridgeObs{{0, obsBad}, {0.5, obsBridge}, {1.2, obsBridge}, {1.4, obsGood}}, end: 3,
		},
		{
			name: "bad after a bridged stretch continues the run",
			min:  1, obs: []bridgeObs{{0, obsBad}, {0.5, obsBridge}, {0.8, obsBad}, {2, obsGood}}, end: 3,
			want: []Event{{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 2}},
		},
		{
			name: "a raised run that does not come back ends where the bridge began",
			min:  0.5, obs: []bridgeObs{{0, obsBad}, {1, obsBridge}, {1.3, obsGood}}, end: 3,
			want: []Event{{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 1}},
		},
		{
			name: "a bridge at the end of the input ends the alarm where it began",
			min:  0.5, obs: []bridgeObs{{0, obsBad}, {1, obsBridge}}, end: 3,
			want: []Event{{State: Raised, Start: 0}, {State: Cleared, Start: 0, End: 1}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []Event
			d := Decision{Defect: "x", MinDuration: tc.min, Emit: func(e Event) { got = append(got, e) }}
			for _, o := range tc.obs {
				if o.kind == obsBridge {
					d.Bridge(o.t)
				} else {
					d.Observe(o.t, o.kind == obsBad)
				}
				d.Advance(o.t + 0.01)
			}
			d.Flush(tc.end)
			checkDecisionEvents(t, got, tc.want)
		})
	}
}

// checkDecisionEvents compares a Decision's events with want: states,
// starts and ends.
func checkDecisionEvents(t *testing.T, got, want []Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.State != w.State || math.Abs(g.Start-w.Start) > 1e-9 || math.Abs(g.End-w.End) > 1e-9 {
			t.Errorf("event %d: got %v, want %v", i, g, w)
		}
	}
}
