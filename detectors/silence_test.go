package detectors

import (
	"math"
	"math/rand/v2"
	"testing"
)

const audioRate = 48000

// planar returns seconds of audio at 48 kHz with channels channels, sample
// n of channel c being fn(c, n).
func planar(channels int, seconds float64, fn func(c, n int) float32) [][]float32 {
	n := int(math.Round(seconds * audioRate))
	out := make([][]float32, channels)
	for c := range out {
		out[c] = make([]float32, n)
		for i := range out[c] {
			out[c][i] = fn(c, i)
		}
	}
	return out
}

// feedBlocks hands samples to audio in blocks of size samples, with exact
// sample-derived timestamps. The block and its channel slice are reused.
func feedBlocks(samples [][]float32, size int, audio func(*AudioBlock)) {
	b := AudioBlock{SampleRate: audioRate, Samples: make([][]float32, len(samples))}
	total := len(samples[0])
	for i := 0; i < total; i += size {
		j := min(i+size, total)
		for c := range samples {
			b.Samples[c] = samples[c][i:j]
		}
		b.PTS = float64(i) / audioRate
		audio(&b)
	}
}

// sine1k returns sample n of a 1 kHz sine at 48 kHz of peak amp and the
// given phase (radians). The period is exactly 48 samples, so one period of
// math.Sin serves every sample (math.Sin per sample is slow under -race).
func sine1k(phase float64) func(amp float64, n int) float32 {
	var period [48]float64
	for i := range period {
		period[i] = math.Sin(2*math.Pi*float64(i)/48 + phase)
	}
	return func(amp float64, n int) float32 { return float32(amp * period[n%48]) }
}

// tonePhase puts no sample of a 1 kHz tone near a zero crossing (the closest
// is 2.2 degrees from it), so that no single sample of it reads as silence.
const tonePhase = 0.3

func TestSilenceDetector(t *testing.T) {
	const seconds = 10
	tone := sine1k(tonePhase)
	r := rand.New(rand.NewPCG(12, 13))
	in := func(n int, from, to float64) bool { return n >= int(from*audioRate) && n < int(to*audioRate) }
	quietNoise := float32(math.Pow(10, -50.0/20)) // RMS -50 dBFS
	tests := []struct {
		name string
		fn   func(c, n int) float32
		want []span
	}{
		{"digital silence 4.0 to 7.0", func(c, n int) float32 {
			if n >= 192000 && n < 336000 {
				return 0
			}
			return tone(0.25, n)
		}, []span{{4, 7}}},
		{"one channel silent, the other not", func(c, n int) float32 {
			if c == 0 && in(n, 4, 7) {
				return 0
			}
			return tone(0.25, n)
		}, nil},
		{"negative half-waves only are not silence", func(c, n int) float32 {
			return -float32(math.Abs(float64(tone(0.25, n))))
		}, nil},
		{"quiet noise at -50 dBFS throughout", func(c, n int) float32 {
			return quietNoise * float32(r.NormFloat64())
		}, nil},
		{"quiet noise at -50 dBFS instead of silence", func(c, n int) float32 {
			if in(n, 4, 7) {
				return quietNoise * float32(r.NormFloat64())
			}
			return tone(0.25, n)
		}, nil},
		{"dither below -60 dBFS counts as silence", func(c, n int) float32 {
			if in(n, 4, 7) {
				return float32(0.0009 * (2*r.Float64() - 1))
			}
			return tone(0.25, n)
		}, []span{{4, 7}}},
		{"shorter than min_duration", func(c, n int) float32 {
			if in(n, 4, 5.9) {
				return 0
			}
			return tone(0.25, n)
		}, nil},
		{"silence at the start", func(c, n int) float32 {
			if n < 3*audioRate {
				return 0
			}
			return tone(0.25, n)
		}, []span{{0, 3}}},
		{"silence to the end of input", func(c, n int) float32 {
			if n >= 8*audioRate {
				return 0
			}
			return tone(0.25, n)
		}, []span{{8, 10}}},
		{"one loud sample splits the silence", func(c, n int) float32 {
			switch {
			case n == 5*audioRate:
				return 0.5
			case in(n, 2, 8):
				return 0
			}
			return tone(0.25, n)
		}, []span{{2, 5}, {5 + 1.0/audioRate, 8}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			samples := planar(2, seconds, tc.fn)
			var log eventLog
			d := NewSilenceDetector(DefaultSilenceConfig(), log.emit)
			feedBlocks(samples, 1024, d.Audio)
			d.Flush(seconds)
			checkSpans(t, log.events, tc.want, 1.0/audioRate)
			for _, e := range log.events {
				if e.Defect != Silence {
					t.Errorf("defect %q, want %q", e.Defect, Silence)
				}
			}
		})
	}
}

func TestSilenceBlockSizeInvariance(t *testing.T) {
	tone := sine1k(tonePhase)
	// Two silences, one of them straddling block boundaries of every size.
	samples := planar(2, 10, func(c, n int) float32 {
		if (n >= 192000 && n < 336000) || (n >= 383999 && n < 480000) {
			return 0
		}
		return tone(0.25, n)
	})
	want := []span{{4, 7}, {383999.0 / audioRate, 10}}
	var ref []Event
	for _, size := range []int{1024, 1, 7, 1000, 48000, 480000} {
		var log eventLog
		d := NewSilenceDetector(DefaultSilenceConfig(), log.emit)
		feedBlocks(samples, size, d.Audio)
		d.Flush(10)
		checkSpans(t, log.events, want, 1.0/audioRate)
		if ref == nil {
			ref = log.events
			continue
		}
		for i := range min(len(ref), len(log.events)) {
			g, w := log.events[i], ref[i]
			if g.State != w.State || math.Abs(g.Start-w.Start) > 1e-9 || math.Abs(g.End-w.End) > 1e-9 {
				t.Errorf("block size %d: event %d is %v, with 1024-sample blocks %v", size, i, g, w)
			}
		}
	}
}

func TestSilenceDetectorEmptyBlock(t *testing.T) {
	var log eventLog
	d := NewSilenceDetector(DefaultSilenceConfig(), log.emit)
	d.Audio(&AudioBlock{SampleRate: audioRate})
	d.Audio(&AudioBlock{SampleRate: audioRate, Samples: [][]float32{{}, {}}})
	d.Flush(10)
	if len(log.events) != 0 {
		t.Errorf("empty blocks raised %v", log.events)
	}
}
