package detectors

import (
	"math"
	"sort"
	"testing"
)

// syncPattern describes a flash+beep test signal as testdata/clips builds it:
// 25 fps video with one white frame (mean luma 1) a second at frames 12+25k
// (0.48+k s: 0.5 s falls between two frames, so the flashes are 20 ms early
// of the half seconds), and a 40 ms 1 kHz beep at peak 0.3 per flash over
// noise at 0.001, in mono.
type syncPattern struct {
	seconds    int
	background float64     // mean luma of the other frames
	offsetMS   map[int]int // flash k: flash time - beep time in ms (positive: audio early)
	noBeep     map[int]bool
	// audioDelay hands each audio block over when the video has reached its
	// time plus audioDelay (negative: the video arrives late).
	audioDelay float64
	// lumaAt, when set, replaces the background/white mean luma of frame n.
	lumaAt func(n int) float64
}

// run feeds the pattern to an AVSyncDetector with the default config and
// returns its events.
func (p syncPattern) run() []Event {
	// Noise of peak 0.001 from a xorshift generator (cheaper than math/rand
	// under -race).
	mono := make([]float32, p.seconds*audioRate)
	x := uint32(2463534242)
	for i := range mono {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		mono[i] = 0.001 * (float32(x)/(1<<31) - 1)
	}
	for k := 0; k < p.seconds; k++ {
		if p.noBeep[k] {
			continue
		}
		s := (12+25*k)*audioRate/25 - p.offsetMS[k]*audioRate/1000
		for i := 0; i < audioRate*40/1000 && s+i < len(mono); i++ {
			// Cosine phase: the beep's first sample is its peak, so its onset
			// is exactly sample s.
			mono[s+i] = float32(0.3 * math.Cos(2*math.Pi*1000*float64(i)/audioRate))
		}
	}

	type item struct {
		key   float64
		video bool
		n     int // frame number or first sample
	}
	var items []item
	for n := 0; n < p.seconds*25; n++ {
		items = append(items, item{key: float64(n) / 25, video: true, n: n})
	}
	for i := 0; i < len(mono); i += 1024 {
		items = append(items, item{key: float64(i)/audioRate + p.audioDelay, n: i})
	}
	sort.SliceStable(items, func(a, b int) bool { return items[a].key < items[b].key })

	var log eventLog
	d := NewAVSyncDetector(DefaultAVSyncConfig(), log.emit)
	b := AudioBlock{SampleRate: audioRate, Samples: make([][]float32, 1)}
	for _, it := range items {
		if it.video {
			luma := p.background
			if (it.n-12)%25 == 0 {
				luma = 1
			}
			if p.lumaAt != nil {
				luma = p.lumaAt(it.n)
			}
			d.Video(float64(it.n)/25, 1.0/25, luma)
			continue
		}
		b.Samples[0] = mono[it.n:min(it.n+1024, len(mono))]
		b.PTS = float64(it.n) / audioRate
		d.Audio(&b)
	}
	d.Flush(float64(p.seconds))
	return log.events
}

func TestAVSyncPattern(t *testing.T) {
	late := map[int]int{4: -200, 5: -200, 6: -200, 7: -200}
	early := map[int]int{9: 80, 10: 80, 11: 80}
	both := map[int]int{4: -200, 5: -200, 6: -200, 7: -200, 9: 80, 10: 80, 11: 80}
	type alarm struct {
		span
		offsetMS float64
	}
	tests := []struct {
		name     string
		offsetMS map[int]int
		noBeep   map[int]bool
		want     []alarm
	}{
		{"in sync", nil, nil, nil},
		{"within tolerance (+40 early, -120 late)", map[int]int{3: 40, 4: 40, 6: -120, 7: -120}, nil, nil},
		{"200 ms late from flash 4.48 to 7.48", late, nil, []alarm{{span{4.48, 8.48}, -200}}},
		{"80 ms early from flash 9.48 to 11.48", early, nil, []alarm{{span{9.48, 12.48}, 80}}},
		{"late then early (the testdata clip)", both, nil, []alarm{{span{4.48, 8.48}, -200}, {span{9.48, 12.48}, 80}}},
		{"just outside tolerance (+50 early)", map[int]int{5: 50}, nil, []alarm{{span{5.48, 6.48}, 50}}},
		{"just outside tolerance (-130 late)", map[int]int{5: -130}, nil, []alarm{{span{5.48, 6.48}, -130}}},
		{"a flash without a beep is ignored", nil, map[int]bool{3: true, 4: true}, nil},
		{"a late beep after a missing one still pairs", late, map[int]bool{3: true}, []alarm{{span{4.48, 8.48}, -200}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, delay := range []float64{0, 0.5, -0.5} {
				seconds := 10 // the last alarm of the short cases ends at flash 8 (8.48 s)
				if len(tc.want) > 0 && tc.want[len(tc.want)-1].end > 9 {
					seconds = 13
				}
				p := syncPattern{seconds: seconds, background: 0.5, offsetMS: tc.offsetMS, noBeep: tc.noBeep, audioDelay: delay}
				events := p.run()
				spans := make([]span, len(tc.want))
				for i, w := range tc.want {
					spans[i] = w.span
				}
				checkSpans(t, events, spans, 1e-9)
				for i, e := range events {
					w := tc.want[i/2]
					if e.Defect != AVSync || e.Reason != "sync pattern" || e.Values["offset_ms"] != w.offsetMS {
						t.Errorf("audio delay %v: %v reason %q values %v, want offset_ms %v", delay, e, e.Reason, e.Values, w.offsetMS)
					}
				}
			}
		})
	}
}

func TestAVSyncFlashDetection(t *testing.T) {
	// Beeps 200 ms late at flashes 4..7: an alarm exactly when the white
	// frames are taken for flashes.
	late := map[int]int{4: -200, 5: -200, 6: -200, 7: -200}
	// flashOn shows flash on the flash frames and background on the others.
	flashOn := func(background, flash float64) func(n int) float64 {
		return func(n int) float64 {
			if (n-12)%25 == 0 {
				return flash
			}
			return background
		}
	}
	tests := []struct {
		name      string
		lumaAt    func(n int) float64
		wantAlarm bool
	}{
		{"white on black", flashOn(0, 1), true},
		{"white on mid-grey (the clip's Y=110)", flashOn((110.0-16)/219, 1), true},
		{"white on light grey 0.7", flashOn(0.7, 1), true},
		{"rise of only 0.25 to 0.85", flashOn(0.6, 0.85), false},
		{"large rise below the flash level", flashOn(0, 0.75), false},
		{"fade up to white over 5 frames", func(n int) float64 {
			k := (n - 12 + 25) % 25 // 0 on the flash frame
			switch {
			case k == 0:
				return 1
			case k >= 21:
				return 0.5 + 0.1*float64(k-20)
			}
			return 0.5
		}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := syncPattern{seconds: 13, offsetMS: late, lumaAt: tc.lumaAt}
			events := p.run()
			if tc.wantAlarm {
				checkSpans(t, events, []span{{4.48, 8.48}}, 1e-9)
			} else if len(events) != 0 {
				t.Errorf("no flash expected, got %v", events)
			}
		})
	}
}

func TestAVSyncTimestampSkew(t *testing.T) {
	const seconds = 15
	tests := []struct {
		name   string
		offset func(t float64) float64 // audio timestamp minus its true time
		want   []span
		skewMS float64
	}{
		{"in step", func(float64) float64 { return 0 }, nil, 0},
		{"jitter of +-0.3 s", func(t float64) float64 { return 0.3 * math.Sin(37*t) }, nil, 0},
		{"audio 3 s ahead from 5 to 10 s", func(t float64) float64 {
			if t >= 5 && t < 10 {
				return 3
			}
			return 0
		}, []span{{5, 10}}, 3000},
		{"audio 3 s behind from 5 to 10 s", func(t float64) float64 {
			if t >= 5 && t < 10 {
				return -3
			}
			return 0
		}, []span{{5, 10}}, -3000},
		{"audio 3 s ahead for only 1 s", func(t float64) float64 {
			if t >= 5 && t < 6 {
				return 3
			}
			return 0
		}, nil, 0},
		{"audio ahead to the end", func(t float64) float64 {
			if t >= 10 {
				return 2
			}
			return 0
		}, []span{{10, 15}}, 2000},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			d := NewAVSyncDetector(DefaultAVSyncConfig(), log.emit)
			// Packets in arrival order; the audio one first on a tie.
			nv, na := 0, 0
			for {
				tv, ta := float64(nv)/25, float64(na)*1024/audioRate
				if tv >= seconds && ta >= seconds {
					break
				}
				if ta <= tv {
					d.Packet(false, ta+tc.offset(ta))
					na++
				} else {
					d.Packet(true, tv)
					nv++
				}
			}
			d.Flush(seconds)
			// The skew is seen at the first video packet after the first
			// shifted audio packet: within a video frame of the truth.
			checkSpans(t, log.events, tc.want, 0.041)
			for _, e := range log.events {
				if e.Defect != AVSync || e.Reason != "timestamp skew" || math.Abs(e.Values["skew_ms"]-tc.skewMS) > 25 {
					t.Errorf("%v reason %q values %v, want skew_ms about %v", e, e.Reason, e.Values, tc.skewMS)
				}
			}
		})
	}
}

func TestAVSyncTrackEndingEarlyIsNotSkew(t *testing.T) {
	for _, audioEnd := range []float64{6, 8} {
		var log eventLog
		d := NewAVSyncDetector(DefaultAVSyncConfig(), log.emit)
		for nv, na := 0, 0; nv < 250; {
			tv, ta := float64(nv)/25, float64(na)*1024/audioRate
			if ta <= tv && ta < audioEnd { // the audio track ends, the video goes on to 10 s
				d.Packet(false, ta)
				na++
			} else {
				d.Packet(true, tv)
				nv++
			}
		}
		d.Flush(10)
		if len(log.events) != 0 {
			t.Errorf("audio ending at %v s: got %v", audioEnd, log.events)
		}
	}
}

func TestAVSyncSkewNeedsBothTracks(t *testing.T) {
	var log eventLog
	d := NewAVSyncDetector(DefaultAVSyncConfig(), log.emit)
	for n := 0; n < 250; n++ {
		d.Packet(true, float64(n)/25) // no audio packet ever
	}
	d.Flush(10)
	if len(log.events) != 0 {
		t.Errorf("video-only packets raised %v", log.events)
	}
}
