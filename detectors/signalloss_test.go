package detectors

import (
	"testing"
)

// reasonSpan is an expected signal loss alarm with its reason.
type reasonSpan struct {
	span
	reason string
}

func checkReasonSpans(t *testing.T, events []Event, want []reasonSpan, tol float64) {
	t.Helper()
	spans := make([]span, len(want))
	for i, w := range want {
		spans[i] = w.span
	}
	checkSpans(t, events, spans, tol)
	for i, e := range events {
		if e.Defect != SignalLoss || e.Reason != want[i/2].reason {
			t.Errorf("%v reason %q, want signal_loss %q", e, e.Reason, want[i/2].reason)
		}
	}
}

func TestSignalLossNoTrackAtAll(t *testing.T) {
	// Two independent alarms: both raise at 0 and clear at the end.
	var log eventLog
	d := NewSignalLossDetector(DefaultSignalLossConfig(), log.emit)
	d.Tracks(0, false, false)
	d.Flush(10)
	want := []Event{
		{State: Raised, Start: 0, Reason: "no video track"},
		{State: Raised, Start: 0, Reason: "no audio track"},
		{State: Cleared, Start: 0, End: 10, Reason: "no video track"},
		{State: Cleared, Start: 0, End: 10, Reason: "no audio track"},
	}
	if len(log.events) != len(want) {
		t.Fatalf("got %v, want %v", log.events, want)
	}
	for i, w := range want {
		g := log.events[i]
		if g.Defect != SignalLoss || g.State != w.State || g.Start != w.Start || g.End != w.End || g.Reason != w.Reason {
			t.Errorf("event %d: got %v (%q), want %v (%q)", i, g, g.Reason, w, w.Reason)
		}
	}
}

func TestSignalLossTracks(t *testing.T) {
	type tracks struct {
		t            float64
		video, audio bool
	}
	tests := []struct {
		name   string
		mutate func(*SignalLossConfig)
		calls  []tracks
		want   []reasonSpan
	}{
		{"both tracks", nil, []tracks{{0, true, true}}, nil},
		{"no video track", nil, []tracks{{0, false, true}}, []reasonSpan{{span{0, 10}, "no video track"}}},
		{"no audio track", nil, []tracks{{0, true, false}}, []reasonSpan{{span{0, 10}, "no audio track"}}},
		{"video not required", func(c *SignalLossConfig) { c.RequireVideo = false }, []tracks{{0, false, true}}, nil},
		{"audio not required", func(c *SignalLossConfig) { c.RequireAudio = false }, []tracks{{0, true, false}}, nil},
		{"video track appears at 3 s", nil, []tracks{{0, false, true}, {3, true, true}},
			[]reasonSpan{{span{0, 3}, "no video track"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultSignalLossConfig()
			if tc.mutate != nil {
				tc.mutate(&cfg)
			}
			var log eventLog
			d := NewSignalLossDetector(cfg, log.emit)
			for _, c := range tc.calls {
				d.Tracks(c.t, c.video, c.audio)
			}
			d.Flush(10)
			checkReasonSpans(t, log.events, tc.want, 1e-9)
		})
	}
}

// feedTracks reports 25 fps video frames and 1024-sample audio blocks at
// 48 kHz, in time order, for seconds, leaving out the video frames and audio
// blocks that start in [from, to) of their track's gap.
func feedTracks(d *SignalLossDetector, seconds float64, videoGap, audioGap [2]float64) {
	in := func(t float64, gap [2]float64) bool { return t >= gap[0] && t < gap[1] }
	nv, na := 0, 0
	for {
		tv, ta := float64(nv)/25, float64(na)*1024/audioRate
		if tv >= seconds && ta >= seconds {
			return
		}
		if tv <= ta {
			if !in(tv, videoGap) {
				d.Frame(0, tv, tv+1.0/25)
			}
			nv++
		} else {
			if !in(ta, audioGap) {
				d.Frame(1, ta, ta+1024.0/audioRate)
			}
			na++
		}
	}
}

func TestSignalLossTimelineJump(t *testing.T) {
	none := [2]float64{}
	audioEnd := func(t float64) float64 { // end of the audio block playing at t
		n := int(t * audioRate / 1024)
		return float64((n+1)*1024) / audioRate
	}
	audioStart := func(t float64) float64 { // start of the first audio block at or after t
		n := (int(t*audioRate) + 1023) / 1024
		return float64(n*1024) / audioRate
	}
	tests := []struct {
		name               string
		videoGap, audioGap [2]float64
		want               []reasonSpan
	}{
		{"continuous", none, none, nil},
		{"5 s jump in the video timeline", [2]float64{10, 15}, none, []reasonSpan{{span{10, 15}, "no data"}}},
		{"2.6 s jump in the video timeline", [2]float64{10, 12.6}, none, []reasonSpan{{span{10, 12.6}, "no data"}}},
		{"jump of exactly the timeout", [2]float64{10, 12}, none, nil},
		{"1.5 s jump", [2]float64{10, 11.5}, none, nil},
		{"5 s jump in the audio timeline", none, [2]float64{10, 15},
			[]reasonSpan{{span{audioEnd(10), audioStart(15)}, "no data"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewSignalLossDetector(DefaultSignalLossConfig(), log.emit)
			d.Tracks(0, true, true)
			feedTracks(d, 20, tc.videoGap, tc.audioGap)
			d.Flush(20)
			checkReasonSpans(t, log.events, tc.want, 1e-9)
		})
	}
}

func TestSignalLossJumpInBothTracksIsOneAlarm(t *testing.T) {
	var log eventLog
	d := NewSignalLossDetector(DefaultSignalLossConfig(), log.emit)
	feedTracks(d, 20, [2]float64{10, 15}, [2]float64{10, 15})
	d.Flush(20)
	// One alarm from the first track's loss to (about) the first track's return.
	checkReasonSpans(t, log.events, []reasonSpan{{span{10, 15}, "no data"}}, 0.03)
}

func TestSignalLossStall(t *testing.T) {
	tests := []struct {
		name string
		// stallAt and resumeAt are media times; resumeAt < 0 means no Resume call.
		stallAt, resumeAt float64
		framesFrom        float64 // frames arrive again from here (>= end: never)
		want              []reasonSpan
	}{
		{"stall then resume", 5, 8, 8, []reasonSpan{{span{5, 8}, "no data"}}},
		{"stall, frames come back without resume", 5, -1, 8, []reasonSpan{{span{5, 8}, "no data"}}},
		{"stall to the end of input", 5, -1, 20, []reasonSpan{{span{5, 20}, "no data"}}},
		{"stall shorter than the timeout, with resume", 5, 6, 6, []reasonSpan{{span{5, 6}, "no data"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewSignalLossDetector(DefaultSignalLossConfig(), log.emit)
			d.Tracks(0, true, true)
			for n := 0; n < 125; n++ { // video up to 5 s
				d.Frame(0, float64(n)/25, float64(n+1)/25)
			}
			d.Stall(tc.stallAt)
			if tc.resumeAt >= 0 {
				d.Resume(tc.resumeAt)
			}
			for n := int(tc.framesFrom * 25); n < 500; n++ {
				d.Frame(0, float64(n)/25, float64(n+1)/25)
			}
			d.Flush(20)
			checkReasonSpans(t, log.events, tc.want, 1e-9)
		})
	}
}
