package detectors

import (
	"math"
	"testing"
)

func TestDecodeErrorDetector(t *testing.T) {
	// 5 s of 25 fps frames; at each listed frame the decoder reports an
	// error (errorAt) instead of a frame, or flags the frame corrupt.
	type alarm struct {
		span
		errors float64
		reason string
	}
	tests := []struct {
		name       string
		clearAfter float64
		errorAt    []int // frame numbers
		corruptAt  []int
		want       []alarm
		total      int
	}{
		{"no error", 1, nil, nil, nil, 0},
		{"errors at 1.0 and 1.2 are one alarm", 1, []int{25, 30}, nil, []alarm{{span{1, 1.24}, 2, "bad slice"}}, 2},
		{"a single error", 1, []int{25}, nil, []alarm{{span{1, 1.04}, 1, "bad slice"}}, 1},
		{"errors 0.8 s apart are bridged", 1, []int{25, 45}, nil, []alarm{{span{1, 1.84}, 2, "bad slice"}}, 2},
		{"errors 2 s apart are two alarms", 1, []int{25, 75}, nil,
			[]alarm{{span{1, 1.04}, 1, "bad slice"}, {span{3, 3.04}, 1, "bad slice"}}, 2},
		{"without clear_after every error is an alarm", 0, []int{25, 30}, nil,
			[]alarm{{span{1, 1.04}, 1, "bad slice"}, {span{1.2, 1.24}, 1, "bad slice"}}, 2},
		{"corrupt frames count as errors", 1, nil, []int{50, 51}, []alarm{{span{2, 2.08}, 2, "corrupt frame"}}, 2},
		{"errors and corrupt frames together", 1, []int{50}, []int{52}, []alarm{{span{2, 2.12}, 2, "corrupt frame"}}, 2},
		{"error just before the end", 1, []int{122}, nil, []alarm{{span{4.88, 4.92}, 1, "bad slice"}}, 1},
		{"corrupt to the end", 1, nil, []int{120, 121, 122, 123, 124}, []alarm{{span{4.8, 5}, 5, "corrupt frame"}}, 5},
	}
	contains := func(list []int, n int) bool {
		for _, v := range list {
			if v == n {
				return true
			}
		}
		return false
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDecodeErrorDetector(DecodeErrorConfig{Enabled: true, ClearAfter: tc.clearAfter}, log.emit)
			for n := 0; n < 125; n++ {
				ts := float64(n) / 25
				if contains(tc.errorAt, n) {
					d.Error(ts, "bad slice")
					continue
				}
				d.Frame(ts, 1.0/25, contains(tc.corruptAt, n))
			}
			d.Flush(5)
			spans := make([]span, len(tc.want))
			for i, w := range tc.want {
				spans[i] = w.span
			}
			checkSpans(t, log.events, spans, 1e-9)
			for i := 1; i < len(log.events); i += 2 {
				e, w := log.events[i], tc.want[i/2]
				if e.Defect != DecodeError || e.Values["errors"] != w.errors || e.Reason != w.reason {
					t.Errorf("%v reason %q values %v, want %v errors, reason %q", e, e.Reason, e.Values, w.errors, w.reason)
				}
			}
			if got := d.Total(); got != tc.total {
				t.Errorf("Total() = %d, want %d", got, tc.total)
			}
		})
	}
}

func TestDecodeErrorRaisedAtOnce(t *testing.T) {
	// The alarm is raised by the first error, before any clean frame.
	var log eventLog
	d := NewDecodeErrorDetector(DefaultDecodeErrorConfig(), log.emit)
	d.Frame(0, 0.04, false)
	d.Error(0.04, "first")
	if len(log.events) != 1 || log.events[0].State != Raised || math.Abs(log.events[0].Start-0.04) > 1e-12 {
		t.Fatalf("after one error: got %v, want one raise at 0.04", log.events)
	}
	if v := log.events[0].Values["errors"]; v != 1 || log.events[0].Reason != "first" {
		t.Errorf("raise values %v reason %q, want 1 error, reason \"first\"", log.events[0].Values, log.events[0].Reason)
	}
}
