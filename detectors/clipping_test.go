package detectors

import (
	"math"
	"strings"
	"testing"
)

func TestClippingDetector(t *testing.T) {
	const seconds = 8
	sine := sine1k(0)
	hardClip := func(v float32) float32 { return min(max(v, -1), 1) }
	// runsEvery puts runs of length full-scale samples (of sign sign) every
	// period samples from sample from to sample to, over a 0.3 sine.
	runsEvery := func(from, to, period, length int, sign float32) func(c, n int) float32 {
		return func(c, n int) float32 {
			if n >= from && n < to && (n-from)%period < length {
				return sign
			}
			return sine(0.3, n)
		}
	}
	tests := []struct {
		name     string
		fn       func(c, n int) float32
		want     []span
		startTol float64
		endTol   float64
		sizes    []int // block sizes besides 1024 and 48000
	}{
		{"1 kHz at gain 4 hard-clipped 4.0 to 6.0", func(c, n int) float32 {
			if n >= 4*audioRate && n < 6*audioRate {
				return hardClip(4 * sine(0.5, n))
			}
			return sine(0.5, n)
		}, []span{{4, 6}}, 1e-3, 2e-3, []int{1, 4800}},
		{"clipped on one channel only", func(c, n int) float32 {
			if c == 1 && n >= 4*audioRate && n < 6*audioRate { // channel 0 stays clean
				return hardClip(4 * sine(0.5, n))
			}
			return sine(0.5, n)
		}, []span{{4, 6}}, 1e-3, 2e-3, nil},
		{"clipped to the end of input", func(c, n int) float32 {
			if n >= 7*audioRate {
				return hardClip(4 * sine(0.5, n))
			}
			return sine(0.5, n)
		}, []span{{7, 8}}, 1e-3, 2e-3, nil},
		{"clipped for less than min_duration", func(c, n int) float32 {
			if n >= 4*audioRate && n < 4*audioRate+audioRate*3/10 {
				return hardClip(4 * sine(0.5, n))
			}
			return sine(0.5, n)
		}, nil, 0, 0, nil},
		{"isolated full-scale samples", runsEvery(audioRate, 7*audioRate, 240, 1, 1), nil, 0, 0, []int{1}},
		{"runs of two, below min_run", runsEvery(audioRate, 7*audioRate, 240, 2, -1), nil, 0, 0, []int{1}},
		{"flat tops every 150 ms, slower than max_gap", runsEvery(audioRate, 7*audioRate, 7200, 4, 1), nil, 0, 0, []int{1, 4800}},
		{"flat tops every 50 ms", runsEvery(2*audioRate, 5*audioRate, 2400, 4, 1),
			[]span{{2, (5*audioRate - 2400 + 4) / float64(audioRate)}}, 1e-9, 1e-9, []int{1, 4800}},
		{"negative flat tops every 50 ms", runsEvery(2*audioRate, 5*audioRate, 2400, 4, -1),
			[]span{{2, (5*audioRate - 2400 + 4) / float64(audioRate)}}, 1e-9, 1e-9, nil},
		// A lossy codec turns flat tops into ripple around full scale: runs of
		// at most two samples at or beyond level, so only the pile-up test sees it.
		{"clipped then lossy: ripple and overshoot 4.0 to 6.0", func(c, n int) float32 {
			if n >= 4*audioRate && n < 6*audioRate {
				return lossyRipple(hardClip(4*sine(0.5, n)), n)
			}
			return sine(0.5, n)
		}, []span{{4, 6}}, 1e-3, 0.011, []int{1, 4800}},
		{"loud sine at -0.5 dBFS is not clipped", func(c, n int) float32 { return sine(0.944, n) }, nil, 0, 0, []int{480}},
		{"loud 60 Hz at -0.3 dBFS with a treble on top is not clipped", func(c, n int) float32 {
			return float32(0.9*math.Sin(2*math.Pi*60*float64(n)/audioRate) + 0.066*math.Sin(2*math.Pi*5000*float64(n)/audioRate))
		}, nil, 0, 0, nil},
		{"sine peaking just under full scale", func(c, n int) float32 { return sine(0.99, n) }, nil, 0, 0, nil},
		{"clipped speech through an integer decoder: saturated bursts 0.2 s apart", func(c, n int) float32 {
			if n >= 4*audioRate && n < 6*audioRate && n%9600 < 4800 {
				return min(max(lossyRipple(hardClip(4*sine(0.5, n)), n), -1), 1)
			}
			return sine(0.1, n)
		}, []span{{4, 6 - 0.1}}, 1e-3, 0.011, nil},
		// Lookback: a burst too short to count alone belongs to clipping
		// that follows within a second; it never raises alone.
		{"a 0.2 s clipped burst 0.7 s before clipping: the event starts at the burst", clippedSpans(hardClip, sine, [2]float64{3, 3.2}, [2]float64{3.9, 5.5}),
			[]span{{3, 5.5}}, 1e-3, 2e-3, nil},
		{"a 0.2 s clipped burst 1.5 s before clipping: not part of it", clippedSpans(hardClip, sine, [2]float64{3, 3.2}, [2]float64{4.7, 5.5}),
			[]span{{4.7, 5.5}}, 1e-3, 2e-3, nil},
		{"0.2 s clipped bursts every 0.9 s never raise", clippedSpans(hardClip, sine, [2]float64{1, 1.2}, [2]float64{1.9, 2.1}, [2]float64{2.8, 3}, [2]float64{3.7, 3.9}),
			nil, 0, 0, nil},
		{"overshoot without pile-up (a peak every 100 ms)", func(c, n int) float32 {
			if n%4800 < 2 {
				return 1.05
			}
			return sine(0.3, n)
		}, nil, 0, 0, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			channels := 1
			if strings.Contains(tc.name, "one channel") {
				channels = 2
			}
			samples := planar(channels, seconds, tc.fn)
			for _, size := range append([]int{1024, 48000}, tc.sizes...) {
				var log eventLog
				d := NewClippingDetector(DefaultClippingConfig(), log.emit)
				feedBlocks(samples, size, d.Audio)
				d.Flush(seconds)
				checkSpans(t, log.events, tc.want, max(tc.startTol, tc.endTol))
				for i, w := range tc.want {
					if s := log.events[2*i].Start; math.Abs(s-w.start) > tc.startTol {
						t.Errorf("block size %d: start %v, want %v within %v", size, s, w.start, tc.startTol)
					}
				}
				for _, e := range log.events {
					if e.Defect != Clipping || e.Values["flat_tops"] < 1 {
						t.Errorf("block size %d: %v values %v, want clipping with flat_tops", size, e, e.Values)
					}
				}
			}
		})
	}
}

// clippedSpans is a 0.5 sine at gain 4, hard-clipped, inside the spans (seconds), and clean outside.
func clippedSpans(hardClip func(float32) float32, sine func(float64, int) float32, spans ...[2]float64) func(c, n int) float32 {
	return func(c, n int) float32 {
		t := float64(n) / audioRate
		for _, s := range spans {
			if t >= s[0] && t < s[1] {
				return hardClip(4 * sine(0.5, n))
			}
		}
		return sine(0.5, n)
	}
}

// lossyRipple adds what a codec leaves of a flat top: a 12 kHz ripple of
// +-6% on samples near full scale, so that no three in a row stay at full scale.
func lossyRipple(v float32, n int) float32 {
	if v < 0.99 && v > -0.99 {
		return v
	}
	r := float32(0.06 * math.Sin(math.Pi*float64(n)/2+math.Pi/4))
	if v < 0 {
		return v - r
	}
	return v + r
}

func TestClipWindow(t *testing.T) {
	tests := []struct {
		name string
		w    ClipWindow
		want bool
	}{
		{"pile-up reaching full scale", ClipWindow{Samples: 960, Near: 200, Full: 50}, true},
		{"exactly the share", ClipWindow{Samples: 1000, Near: 50, Full: 1}, true},
		{"pile-up rippling under full scale (AAC)", ClipWindow{Samples: 960, Near: 187, Ripple: 69}, true},
		{"pile-up in one smooth hump (a bass note at -0.3 dBFS)", ClipWindow{Samples: 960, Near: 140, Ripple: 2}, false},
		{"full scale without pile-up (a peak)", ClipWindow{Samples: 960, Near: 10, Full: 3}, false},
		{"empty", ClipWindow{}, false},
	}
	for _, tc := range tests {
		if got := tc.w.Clipped(0.05, 8); got != tc.want {
			t.Errorf("%s: Clipped = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func BenchmarkClippingAudio(b *testing.B) {
	tone := sine1k(0)
	s := make([]float32, 1024)
	for i := range s {
		s[i] = min(max(4*tone(0.5, i), -1), 1)
	}
	blk := &AudioBlock{SampleRate: audioRate, Samples: [][]float32{s, s}}
	d := NewClippingDetector(DefaultClippingConfig(), nil)
	b.ReportAllocs()
	for b.Loop() {
		d.Audio(blk)
		blk.PTS += float64(len(s)) / audioRate
	}
}

func TestClippingDetectorManyChannels(t *testing.T) {
	// More channels than the detector preallocates for.
	samples := planar(10, 3, func(c, n int) float32 {
		if c == 9 && n >= audioRate/2 {
			return 1
		}
		return 0.1
	})
	var log eventLog
	d := NewClippingDetector(DefaultClippingConfig(), log.emit)
	feedBlocks(samples, 1024, d.Audio)
	d.Flush(3)
	checkSpans(t, log.events, []span{{0.5, 3}}, 1e-9)
}
