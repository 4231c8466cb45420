package detectors

import "math"

func round3(v float64) float64 { return math.Round(v*1000) / 1000 }

func nan() float64 { return math.NaN() }
