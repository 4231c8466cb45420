package detectors

import (
	"math"
	"testing"
)

// TestDetailLossQuant: the quantizer cue on quantizer traces shaped like
// the ones software decoders export (see quant.go), with pictures that do
// not change (every picture cue stays quiet), at 30 frames a second.
func TestDetailLossQuant(t *testing.T) {
	const fps = 30.0
	// crf: an x264 CRF 20 stream's rhythm: P-frames 15-17, a B-frame every
	// third picture 2 coarser, a key frame every 2 s 3 finer.
	crf := func(i int) float64 {
		switch {
		case i%60 == 0:
			return 13
		case i%3 == 2:
			return 18
		}
		return 15 + float64(i%2)
	}
	zone := func(first, end int, q float64) func(int) float64 {
		return func(i int) float64 {
			if i >= first && i < end {
				return q + float64(i%3) // a starved encoder's own rhythm
			}
			return crf(i)
		}
	}
	tests := []struct {
		name  string
		quant func(frame int) float64
		known func(frame int) bool // nil: every picture
		want  []span
	}{
		{"clean CRF stream", crf, nil, nil},
		// x264 zones=50,99,q=51 on Sintel: QP 36-43 from the zone's first
		// picture on (the key frame at 60 stays fine), back at 100.
		{"a plain x264 zone, a fine key frame inside", zone(50, 100, 38), nil, []span{{50 / fps, 100 / fps}}},
		{"MPEG-2 at its maximum quantizer (6 to 62: 22.5 to 42.7)", func(i int) float64 {
			if i >= 60 && i < 120 {
				return 42.7
			}
			return 22.5
		}, nil, []span{{2, 4}}},
		{"starved to the end", zone(90, 150, 40), nil, []span{{3, 5}}},
		// Rate control: MPEG-2 out of a fade, quantiser_scale 4 to 62 in 16
		// pictures (exoplayer_bbb_1080p_mpeg2_mp2.ts), and an H.264 CBR
		// climb of 1 to 2 QP a picture (tsduck064_bbb_1080p_h264_mp2.ts).
		{"an MPEG-2 ramp out of a fade", func(i int) float64 {
			q := []float64{4, 10, 8, 10, 16, 14, 14, 20, 18, 24, 30, 36, 42, 48, 54, 60}
			return 7 + 6*math.Log2(q[min(max(i-40, 0), len(q)-1)])
		}, nil, nil},
		{"an H.264 CBR climb", func(i int) float64 { return min(29+1.5*float64(max(i-40, 0)), 50) }, nil, nil},
		// The B-frames before a starved P-frame climb with it: the run begins
		// on the first picture at quant_floor.
		{"four pictures to starvation (x264 interpolating the B-frames before)", func(i int) float64 {
			switch {
			case i < 50:
				return crf(i)
			case i < 53:
				return []float64{22, 29, 32}[i-50]
			}
			return 43 + float64(i%3)
		}, nil, []span{{53 / fps, 5}}},
		{"a jump that stays under quant_floor (near-lossless to ordinary)", func(i int) float64 {
			if i >= 50 {
				return 28
			}
			return 8
		}, nil, nil},
		// x264 opening a zone with B-frames (testsrc2, TestStarvedZone's
		// picture with B-frames): 28, 38, 48 from a level of 27, the zone's
		// first frame at 50: the run starts on the first picture two thirds
		// of the way up and at quant_floor (51), not on the one that
		// jumped (52).
		{"B-frames opening a zone", func(i int) float64 {
			switch {
			case i < 50:
				return crf(i) + 9*float64(i%3/2) // B-frames 9 coarser: 27
			case i < 53:
				return []float64{28, 38, 48}[i-50]
			}
			return 46 + float64(i%3)
		}, nil, []span{{51 / fps, 5}}},
		{"a jump under quant_jump", func(i int) float64 {
			if i >= 50 && i < 100 {
				return 34 + float64(i%2)
			}
			return 23 + float64(i%2)
		}, nil, nil},
		{"always coarse: no jump", func(i int) float64 { return 40 + float64(i%3) }, nil, nil},
		{"a jump at the start, before the level is known", zone(3, 60, 40), nil, nil},
		{"a single coarse picture", zone(50, 51, 45), nil, nil},
		// A CBR encoder's brief starvation after a cut: 0.2 s, then finer
		// pictures; the hold bridges them without raising the alarm.
		{"0.2 s starved, then fine: under min_duration", zone(50, 56, 40), nil, nil},
		{"0.4 s starved, a fine key frame, 0.2 s starved: one run", func(i int) float64 {
			if i >= 50 && i < 68 && i != 62 {
				return 40
			}
			return crf(i)
		}, nil, []span{{50 / fps, 68 / fps}}},
		{"quantizers unknown from the jump on", zone(50, 100, 40), func(i int) bool { return i < 50 }, nil},
		{"quantizers lost inside a run (a decoder switch): it ends where they stopped", zone(40, 150, 40),
			func(i int) bool { return i < 80 }, []span{{40 / fps, 80 / fps}}},
		{"a zone of finer pictures for longer than quant_hold: two runs", func(i int) float64 {
			if i >= 40 && i < 130 && (i < 70 || i >= 90) {
				return 40
			}
			return crf(i)
		}, nil, []span{{40 / fps, 70 / fps}, {90 / fps, 130 / fps}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			cfg := DefaultDetailLossConfig()
			d := NewDetailLossDetector(cfg, log.emit)
			f := gridFeature(1.1)
			for i := range 150 {
				known := tc.known == nil || tc.known(i)
				d.Video(float64(i)/fps, 1/fps, 0.5, 0, tc.quant(i), known, false, &f, false)
			}
			d.Flush(5)
			checkSpans(t, log.events, tc.want, 1e-9)
			for _, e := range log.events {
				if e.State == Cleared && e.Values["quant_rise"] < cfg.QuantJump {
					t.Errorf("%v values %v, want quant_rise >= quant_jump", e, e.Values)
				}
			}
		})
	}
}

// TestDetailLossQuantTimeBack: a new input (time going back) starts a new
// level: its first coarse pictures are not judged against the last input.
func TestDetailLossQuantTimeBack(t *testing.T) {
	var log eventLog
	d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
	f := gridFeature(1.1)
	for i := range 60 {
		d.Video(float64(i)/25, 0.04, 0.5, 0, 15, true, false, &f, false)
	}
	for i := range 60 {
		d.Video(float64(i)/25, 0.04, 0.5, 0, 40, true, false, &f, false)
	}
	d.Flush(2.4)
	if len(log.events) != 0 {
		t.Errorf("events %v, want none", log.events)
	}
	if math.IsNaN(d.qpeak) {
		t.Error("qpeak NaN")
	}
}

// TestDetailLossQuantJudges: where the quantizer is known the picture cues
// do not begin runs (a picture that looks starved at the stream's usual
// quantizer is content), unless picture_with_quant; they still extend a run
// the quantizer began.
func TestDetailLossQuantJudges(t *testing.T) {
	const fps = 25.0
	// The grid ratio jumps at frame 50 (the grid cue's starved look) and
	// stays up to frame 100.
	ratio := func(i int) float64 {
		if i >= 50 && i < 100 {
			return 2.5
		}
		return 1.2
	}
	tests := []struct {
		name         string
		quant        func(int) float64
		known        bool
		slice        bool
		pictureQuant bool
		want         []span
	}{
		{"quantizer unknown (hardware H.264): the pictures judge", func(int) float64 { return 20 }, false, false, false, []span{{2, 4}}},
		// An encoder that starves through per-block deltas leaves the
		// slices' base level still: the pictures judge too.
		{"slice quantizer (HEVC), steady: the pictures judge", func(int) float64 { return 20 }, true, true, false, []span{{2, 4}}},
		{"slice quantizer (HEVC) jumping at 50: the quantizer begins the run", func(i int) float64 {
			if i >= 50 && i < 100 {
				return 51
			}
			return 27
		}, true, true, false, []span{{2, 4}}},
		{"quantizer known and steady: no run", func(int) float64 { return 20 }, true, false, false, nil},
		{"quantizer known and steady, picture_with_quant", func(int) float64 { return 20 }, true, false, true, []span{{2, 4}}},
		{"the quantizer begins the run at 50 and releases at 75; the pictures hold it to 100", func(i int) float64 {
			if i >= 50 && i < 75 {
				return 40
			}
			return 20
		}, true, false, false, []span{{2, 4}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			cfg := DefaultDetailLossConfig()
			cfg.PictureWithQuant = tc.pictureQuant
			d := NewDetailLossDetector(cfg, log.emit)
			for i := range 150 {
				f := gridFeature(ratio(i))
				d.Video(float64(i)/fps, 1/fps, 0.5, 0, tc.quant(i), tc.known, tc.slice, &f, false)
			}
			d.Flush(6)
			checkSpans(t, log.events, tc.want, 1e-9)
		})
	}
}

// TestDetailLossQuantValuesPerRun: each run's event carries its own
// quant_rise, also when its start was set back (quantBack).
func TestDetailLossQuantValuesPerRun(t *testing.T) {
	const fps = 25.0
	quant := func(i int) float64 {
		switch {
		case i >= 30 && i < 60: // a steep zone: rise 26
			return 50
		case i == 99: // opening the second zone: 10 up (under quant_jump), at quant_floor
			return 34
		case i >= 100 && i < 130: // rise 16
			return 40
		}
		return 24
	}
	var log eventLog
	d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
	f := gridFeature(1.1)
	for i := range 175 {
		d.Video(float64(i)/fps, 1/fps, 0.5, 0, quant(i), true, false, &f, false)
	}
	d.Flush(7)
	checkSpans(t, log.events, []span{{30 / fps, 60 / fps}, {99 / fps, 130 / fps}}, 1e-9)
	var rises []float64
	for _, e := range log.events {
		if e.State == Cleared {
			rises = append(rises, e.Values["quant_rise"])
		}
	}
	if len(rises) != 2 || math.Abs(rises[0]-26) > 0.01 || math.Abs(rises[1]-16) > 0.01 {
		t.Errorf("quant_rise per run %v, want [26 16]", rises)
	}
}

// TestDetailLossQuantSettle: a slice-level quantizer (HEVC) that jumps just
// after a step in the picture (a still coming back to life, a cut) is rate
// control answering the content, and begins no run (quantSettle); every
// block's quantizer (H.264) still does; a starvation that begins later, or
// with a starved key frame's small change of picture, is found.
func TestDetailLossQuantSettle(t *testing.T) {
	const fps = 25.0
	// x265 with VBV after a re-encoded freeze (freeze_recoded_bbb_hevc_720p
	// of the quality corpus): QP about 20 in the freeze, the picture moving
	// again at frame 125, QP 51 two pictures later, then back down.
	vbv := []float64{20, 21, 51, 16, 41, 38, 51, 40, 40, 39, 39, 36, 36, 35, 35, 32, 32, 31, 31, 28, 30, 29, 30, 28, 24}
	spike := func(i int) float64 {
		if i >= 125 && i-125 < len(vbv) {
			return vbv[i-125]
		}
		return 20 + float64(i%2)
	}
	still := func(i int) float64 { // motion in levels: a still until 125
		switch {
		case i < 125:
			return 1
		case i == 125:
			return 32
		}
		return 2
	}
	zone := func(i int) float64 {
		if i >= 131 && i < 200 {
			return 51
		}
		return 29
	}
	tests := []struct {
		name   string
		quant  func(int) float64
		motion func(int) float64
		luma   func(int) float64 // nil: 0.5
		slice  bool
		want   []span
	}{
		{"HEVC: the quantizer jumps as a still comes back to life: no run", spike, still, nil, true, nil},
		{"HEVC: the same after a still drifting 3 levels from its first picture", spike, func(i int) float64 {
			switch {
			case i < 125:
				return 3
			case i == 125:
				return 21 // 7 times the still's drift (freeze_recoded_bgdvb_hevc_576p)
			}
			return 8
		}, nil, true, nil},
		{"H.264 (every block's quantizer): the same trace is a run", spike, still, nil, false, []span{{127 / fps, 149 / fps}}},
		{"HEVC: a zone 0.24 s after a cut is found on its first picture", zone, func(int) float64 { return 1 },
			func(i int) float64 {
				if i >= 125 {
					return 0.4 // a cut: mean luma 10% down
				}
				return 0.5
			}, true, []span{{131 / fps, 200 / fps}}},
		{"HEVC: a starved key frame on a still shot (a change of 5 levels) is found", zone, func(i int) float64 {
			if i == 131 {
				return 5
			}
			return 1
		}, nil, true, []span{{131 / fps, 200 / fps}}},
		{"HEVC: a starved key frame on a detailed still shot (a change of 20 levels) is found", zone, func(i int) float64 {
			if i == 131 {
				return 20
			}
			return 1
		}, nil, true, []span{{131 / fps, 200 / fps}}},
		{"HEVC: a cut coded coarse on its own picture is judged", func(i int) float64 {
			if i >= 125 && i < 200 {
				return 51
			}
			return 29
		}, func(i int) float64 {
			if i == 125 {
				return 40
			}
			return 1
		}, nil, true, []span{{125 / fps, 200 / fps}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewDetailLossDetector(DefaultDetailLossConfig(), log.emit)
			for i := range 250 {
				f := gridFeature(1.1)
				luma := 0.5
				if tc.luma != nil {
					luma = tc.luma(i)
				}
				d.Video(float64(i)/fps, 1/fps, luma, tc.motion(i), tc.quant(i), true, tc.slice, &f, false)
			}
			d.Flush(10)
			checkSpans(t, log.events, tc.want, 1e-9)
		})
	}
}
