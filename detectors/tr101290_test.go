package detectors

import (
	"math"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/transport"
)

func TestTR101290Decision(t *testing.T) {
	type errAt struct {
		ind transport.Indicator
		t   float64
	}
	every := func(ind transport.Indicator, from, to, step float64) []errAt {
		var out []errAt
		for x := from; x <= to+1e-9; x += step {
			out = append(out, errAt{ind, x})
		}
		return out
	}
	tests := []struct {
		name     string
		min      float64
		clear    float64
		errs     []errAt
		end      float64
		want     []Event // cleared events, in order
		wantRise int
	}{
		{name: "one lost packet is not an alarm by default", min: 2, clear: 2,
			errs: []errAt{{transport.Continuity, 10}}, end: 3600},
		{name: "errors every 0.5 s for 4 s", min: 2, clear: 2,
			errs: every(transport.Continuity, 10, 14, 0.5), end: 30,
			want: []Event{{Defect: TR101290, State: Cleared, Start: 10, End: 15, Reason: "1.4 continuity_count_error"}}},
		{name: "min_duration 0 pages on one error", min: 0, clear: 2,
			errs: []errAt{{transport.CRCError, 10}}, end: 30,
			want: []Event{{Defect: TR101290, State: Cleared, Start: 10, End: 11, Reason: "2.2 crc_error"}}},
		{name: "two indicators, two alarms", min: 0, clear: 1,
			errs: []errAt{{transport.PATError, 5}, {transport.PMTError, 5.2}}, end: 30,
			want: []Event{
				{Defect: TR101290, State: Cleared, Start: 5, End: 6, Reason: "1.3 pat_error"},
				{Defect: TR101290, State: Cleared, Start: 5.2, End: 6.2, Reason: "1.5 pmt_error"},
			}},
		{name: "a gap shorter than clear_after keeps one alarm", min: 0, clear: 2,
			errs: []errAt{{transport.Continuity, 1}, {transport.Continuity, 3.5}}, end: 30,
			want: []Event{{Defect: TR101290, State: Cleared, Start: 1, End: 4.5, Reason: "1.4 continuity_count_error"}}},
		{name: "raised to the end", min: 0, clear: 2,
			errs: every(transport.SyncLoss, 1, 5, 0.25), end: 5.5,
			want: []Event{{Defect: TR101290, State: Cleared, Start: 1, End: 5.5, Reason: "1.1 ts_sync_loss"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultTR101290Config()
			cfg.MinDuration, cfg.ClearAfter = tc.min, tc.clear
			var got []Event
			raised := 0
			d := NewTR101290Detector(cfg, func(e Event) {
				if e.State == Raised {
					raised++
					return
				}
				got = append(got, e)
			})
			for _, e := range tc.errs {
				d.Time(e.t)
				d.Error(e.ind, 0x100, e.t, 1)
			}
			for x := 0.0; x < tc.end; x += 0.04 { // the PCR sweeps
				d.Time(x)
			}
			d.Flush(tc.end)
			if len(got) != len(tc.want) || raised != len(tc.want) {
				t.Fatalf("%d raised, cleared %v; want %v", raised, got, tc.want)
			}
			for i, w := range tc.want {
				g := got[i]
				if g.Reason != w.Reason || math.Abs(g.Start-w.Start) > 1e-6 || math.Abs(g.End-w.End) > 1e-6 {
					t.Errorf("alarm %d: %s %.3f-%.3f, want %s %.3f-%.3f", i, g.Reason, g.Start, g.End, w.Reason, w.Start, w.End)
				}
				if g.Values["pid"] != 0x100 || g.Values["errors"] < 1 || g.Values["errors_per_second"] <= 0 {
					t.Errorf("values %v", g.Values)
				}
				if g.Key() != "tr101290/"+w.Reason {
					t.Errorf("key %q", g.Key())
				}
			}
			var total int64
			for _, n := range d.Counts() {
				total += n
			}
			if total != int64(len(tc.errs)) {
				t.Errorf("counted %d errors, want %d", total, len(tc.errs))
			}
		})
	}
}

func TestTR101290ConfigValidate(t *testing.T) {
	c := DefaultConfig()
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	c.TR101290.PATInterval = -1
	c.TR101290.PCRAccuracyNs = 2e9
	err := c.Validate()
	if err == nil || !strings.Contains(err.Error(), "tr101290.pat_interval") || !strings.Contains(err.Error(), "tr101290.pcr_accuracy_ns") {
		t.Fatalf("validate: %v", err)
	}
	// TR 101 290's timings but for 2.3a, ISO 13818-1's 100 ms by default.
	want := transport.DefaultLimits()
	want.PCRRepetition = 0.1
	if l := DefaultTR101290Config().Limits(); l != want {
		t.Fatalf("default limits %+v, want %+v", l, want)
	}
}
