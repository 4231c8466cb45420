package detectors

import (
	"math"
	"math/rand/v2"
	"testing"
)

const (
	freezeW, freezeH = 80, 48 // a width multiple of 10, for the dithered fade
	freezeFPS        = 25
)

// randomFrame8 returns a limited-range frame of random levels in [lo, hi).
func randomFrame8(r *rand.Rand, w, h, lo, hi int) *VideoFrame {
	return newFrame8(w, h, w, 0, func(int, int) byte { return byte(lo + r.IntN(hi-lo)) })
}

// addLevel returns a copy of f with d added to every sample of rows y%rowMod == 0.
func addLevel(f *VideoFrame, d, rowMod int) *VideoFrame {
	return newFrame8(f.Width, f.Height, f.Width, 0, func(x, y int) byte {
		v := int(f.Y[y*f.Stride+x])
		if y%rowMod == 0 {
			v += d
		}
		return byte(v)
	})
}

// timed returns a shallow copy of f shown at frame n of a 25 fps timeline.
func timed(f *VideoFrame, n int, key bool) *VideoFrame {
	g := *f
	g.PTS, g.Duration, g.KeyFrame = float64(n)/freezeFPS, 1.0/freezeFPS, key
	return &g
}

// freezeCaller drives a FreezeDetector the way the pipeline does: it keeps the
// reference picture while Video returns true and replaces it otherwise.
type freezeCaller struct {
	det     *FreezeDetector
	ref     *VideoFrame
	feat    FreezeFeature
	rowStep int
	// alwaysReplace makes a wrong caller that compares every frame with its
	// predecessor, for contrast.
	alwaysReplace bool
}

func (c *freezeCaller) video(cur *VideoFrame) bool {
	MeasureFreeze(cur, c.ref, c.rowStep, DefaultFreezeConfig().CellFloor, &c.feat)
	lo, hi := cur.LumaRange()
	levels := (hi - lo) >> uint(max(cur.BitDepth-8, 0))
	refT := cur.PTS
	if c.ref != nil {
		refT = c.ref.PTS
	}
	keep := c.det.Video(cur.PTS, cur.Duration, refT, cur.KeyFrame, levels, &c.feat)
	if !keep || c.alwaysReplace {
		c.ref = cur
	}
	return keep
}

func TestMeasureFreezeMAD(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	base := randomFrame8(r, freezeW, freezeH, 30, 200)
	full := *base
	full.FullRange = true
	fullPlus := *addLevel(base, 1, 1)
	fullPlus.FullRange = true
	small := randomFrame8(r, 40, 48, 30, 200)
	tests := []struct {
		name      string
		cur, prev *VideoFrame
		rowStep   int
		levels    int
		valid     bool
		want      float64
	}{
		{"identical", base, base, 1, 219, true, 0},
		{"identical copy, sampled", addLevel(base, 0, 1), base, 8, 219, true, 0},
		{"+1 everywhere, limited", addLevel(base, 1, 1), base, 1, 219, true, 1.0 / 219},
		{"-1 everywhere, limited", addLevel(base, -1, 1), base, 1, 219, true, 1.0 / 219},
		{"+1 everywhere, sampled rows", addLevel(base, 1, 1), base, 8, 219, true, 1.0 / 219},
		{"+1 on the sampled rows only", addLevel(base, 1, 4), base, 4, 219, true, 1.0 / 219},
		{"+1 on a quarter of the rows, all rows read", addLevel(base, 1, 4), base, 1, 219, true, 12.0 / 48 / 219},
		{"+1 everywhere, full range", &fullPlus, &full, 1, 255, true, 1.0 / 255},
		{"10-bit +4 everywhere", to10Bit(addLevel(base, 1, 1), 4), to10Bit(base, 0), 1, 219, true, 1.0 / 219},
		{"10-bit +1 everywhere is a quarter level", func() *VideoFrame {
			f := to10Bit(base, 0)
			y := append([]byte(nil), f.Y...)
			for i := 0; i < len(y); i += 2 {
				y[i]++ // samples are multiples of 4, so no carry
			}
			g := *f
			g.Y = y
			return &g
		}(), to10Bit(base, 0), 1, 219, true, 0.25 / 219},
		{"no reference", base, nil, 1, 219, false, 0},
		{"size change", base, small, 1, 219, false, 0},
		{"bit depth change", to10Bit(base, 0), base, 1, 219, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := FreezeFeature{Valid: !tc.valid, Pixels: 1, SAD: 1}
			MeasureFreeze(tc.cur, tc.prev, tc.rowStep, 0.008, &f)
			if f.Valid != tc.valid {
				t.Fatalf("Valid = %v, want %v (%+v)", f.Valid, tc.valid, f)
			}
			if got := f.MAD(tc.levels); math.Abs(got-tc.want) > 1e-12 {
				t.Errorf("MAD = %v, want %v (%+v)", got, tc.want, f)
			}
		})
	}
}

func TestMeasureFreezeMatchesNaive(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	for _, w := range []int{1, 7, 8, 9, 37, 1283} {
		for _, step := range []int{1, 3, 8} {
			a, b := randomFrame8(r, w, 17, 0, 256), randomFrame8(r, w, 17, 0, 256)
			a.Stride, b.Stride = w, w
			var want uint64
			pixels := 0
			for y := 0; y < 17; y += step {
				for x := 0; x < w; x++ {
					want += uint64(absDiff(int(a.Y[y*w+x]), int(b.Y[y*w+x])))
				}
				pixels += w
			}
			var f FreezeFeature
			MeasureFreeze(a, b, step, 0.008, &f)
			if f.SAD != want || f.Pixels != pixels {
				t.Errorf("w=%d step=%d: got SAD %d over %d, want %d over %d", w, step, f.SAD, f.Pixels, want, pixels)
			}
		}
	}
}

// freezeSequence returns 250 frames (10 s at 25 fps) of random pictures, in
// which, for each {first, last} of holds, frames first+1..last repeat frame first.
func freezeSequence(seed uint64, holds ...[2]int) []*VideoFrame {
	r := rand.New(rand.NewPCG(seed, 3))
	seq := make([]*VideoFrame, 250)
next:
	for i := range seq {
		for _, h := range holds {
			if i > h[0] && i <= h[1] {
				seq[i] = timed(seq[h[0]], i, false)
				continue next
			}
		}
		seq[i] = timed(randomFrame8(r, freezeW, freezeH, 16, 236), i, i%50 == 0)
	}
	return seq
}

func TestFreezeDetectorSequence(t *testing.T) {
	for _, step := range []int{1, 8} {
		var log eventLog
		c := freezeCaller{det: NewFreezeDetector(DefaultFreezeConfig(), log.emit), rowStep: step}
		seq := freezeSequence(1, [2]int{100, 174}) // the picture of 4.0 s stands until 7.0 s
		for i, f := range seq {
			keep := c.video(f)
			if want := i > 100 && i <= 174; keep != want {
				t.Errorf("step %d frame %d: keepRef = %v, want %v", step, i, keep, want)
			}
		}
		c.det.Flush(10)
		if len(log.events) != 2 || log.events[0].State != Raised || log.events[1].State != Cleared {
			t.Fatalf("step %d: got %v, want one raise and one clear", step, log.events)
		}
		if s := log.events[0].Start; math.Abs(s-4) > 1e-9 {
			t.Errorf("step %d: start %v, want 4.0 (the frozen frame itself)", step, s)
		}
		if e := log.events[1].End; math.Abs(e-7) > 1e-9 {
			t.Errorf("step %d: end %v, want 7.0 (the first moving frame)", step, e)
		}
		for _, e := range log.events {
			if e.Defect != Freeze || e.Values["max_difference"] != 0 {
				t.Errorf("step %d: %v values %v, want freeze with max_difference 0", step, e, e.Values)
			}
		}
	}
}

// TestFreezeStartsAtFrozenFrame: the freeze starts at the frozen frame itself
// (the reference), not at its first repeat, as testdata/clips and FFmpeg's
// freezedetect count, and min_duration is measured from there.
func TestFreezeStartsAtFrozenFrame(t *testing.T) {
	tests := []struct {
		name  string
		holds [][2]int
		want  []span
	}{
		{"3 s freeze", [][2]int{{100, 174}}, []span{{4, 7}}},
		{"freeze of exactly min_duration", [][2]int{{100, 149}}, []span{{4, 6}}},
		{"freeze 1 frame shorter than min_duration", [][2]int{{100, 148}}, nil},
		{"two freezes back to back", [][2]int{{100, 174}, {175, 249}}, []span{{4, 7}, {7, 10}}},
		{"freeze from the first frame", [][2]int{{0, 74}}, []span{{0, 3}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			c := freezeCaller{det: NewFreezeDetector(DefaultFreezeConfig(), log.emit), rowStep: 1}
			for _, f := range freezeSequence(1, tc.holds...) {
				c.video(f)
			}
			c.det.Flush(10)
			checkSpans(t, log.events, tc.want, 1e-9)
		})
	}
}

func TestFreezeDetectorStaticNoise(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	base := randomFrame8(r, freezeW, freezeH, 40, 200)
	var log eventLog
	c := freezeCaller{det: NewFreezeDetector(DefaultFreezeConfig(), log.emit), rowStep: 1}
	for i := 0; i < 250; i++ {
		f := newFrame8(freezeW, freezeH, freezeW, 0, func(x, y int) byte {
			return byte(int(base.Y[y*freezeW+x]) + r.IntN(7) - 3)
		})
		if c.video(timed(f, i, false)) {
			t.Fatalf("frame %d: keepRef true on a noisy static shot (MAD %v)", i, c.feat.MAD(219))
		}
	}
	c.det.Flush(10)
	if len(log.events) != 0 {
		t.Errorf("static shot with noise raised %v", log.events)
	}
}

func TestFreezeDetectorKeyFrameInFreeze(t *testing.T) {
	// The picture of frame 100 (4.0 s) stands until frame 200 (8.0 s); frame
	// 160 (6.4 s) changes it by delta on every pixel and frames 161..199 repeat
	// that change.
	tests := []struct {
		name    string
		key     bool
		delta   int
		keepAt  bool // keepRef returned for frame 160
		wantEnd float64
	}{
		{"re-coded key frame (below keyframe_noise) does not split", true, 1, false, 8},
		{"same change on a non-key frame ends the freeze", false, 1, false, 6.4},
		{"key frame above keyframe_noise ends the freeze", true, 10, false, 6.4},
		{"key frame identical to the freeze", true, 0, true, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seq := freezeSequence(2, [2]int{100, 199})
			recoded := addLevel(seq[100], tc.delta, 1)
			for i := 160; i < 200; i++ {
				seq[i] = timed(recoded, i, i == 160 && tc.key)
			}
			var log eventLog
			c := freezeCaller{det: NewFreezeDetector(DefaultFreezeConfig(), log.emit), rowStep: 1}
			for i, f := range seq {
				keep := c.video(f)
				switch {
				case i == 160 && keep != tc.keepAt:
					t.Errorf("frame 160: keepRef = %v, want %v", keep, tc.keepAt)
				case i > 160 && i < 200 && !keep:
					t.Errorf("frame %d: keepRef = false inside the re-coded freeze", i)
				}
			}
			c.det.Flush(10)
			if len(log.events) != 2 {
				t.Fatalf("got %v, want one alarm", log.events)
			}
			if s := log.events[0].Start; math.Abs(s-4) > 1e-9 {
				t.Errorf("start %v, want 4.0", s)
			}
			if e := log.events[1].End; math.Abs(e-tc.wantEnd) > 1e-9 {
				t.Errorf("end %v, want %v", e, tc.wantEnd)
			}
		})
	}
}

func TestFreezeDetectorSlowFade(t *testing.T) {
	// Every frame brightens by 0.1 level on average: a tenth of the columns
	// (x%10 == the frame's phase) steps up by one level. Each step is below
	// the noise floor (0.1/219 < 0.001), ten steps are not.
	r := rand.New(rand.NewPCG(9, 10))
	base := randomFrame8(r, freezeW, freezeH, 30, 180)
	fade := func(n int) *VideoFrame {
		return timed(newFrame8(freezeW, freezeH, freezeW, 0, func(x, y int) byte {
			return base.Y[y*freezeW+x] + byte((n+x%10)/10)
		}), n, n%50 == 0)
	}
	tests := []struct {
		name          string
		alwaysReplace bool
		wantAlarm     bool
	}{
		{"caller keeps the reference: no freeze", false, false},
		{"comparing with the previous frame would see one (contrast)", true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var log eventLog
			c := freezeCaller{det: NewFreezeDetector(DefaultFreezeConfig(), log.emit), rowStep: 1, alwaysReplace: tc.alwaysReplace}
			maxStill := 0
			still := 0
			for i := 0; i < 250; i++ {
				if c.video(fade(i)) {
					still++
					maxStill = max(maxStill, still)
				} else {
					still = 0
				}
			}
			c.det.Flush(10)
			if got := len(log.raised()) > 0; got != tc.wantAlarm {
				t.Errorf("alarm = %v, want %v (events %v, longest still run %d frames)", got, tc.wantAlarm, log.events, maxStill)
			}
		})
	}
}

func TestCellMoved(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		d     int64
		sad   uint64
		floor int64
		want  bool
	}{
		{"identical", 128, 0, 0, 14, false},
		{"noise: mean change within its standard error", 128, 128, 128 * 9, 14, false},
		{"uniform change of 3 levels", 128, 3 * 128, 3 * 128, 14, true},
		{"uniform change of 0.5 level is drift (under the floor)", 128, 64, 64, 14, false},
		{"negative change", 128, -5 * 128, 6 * 128, 14, true},
		{"3-level change under noise of mean 9 (z 3.4)", 128, 3 * 128, 9 * 128, 14, false},
		{"5-level change under noise of mean 9 (z 5.0)", 128, 5 * 128, 9 * 128, 14, true},
		{"no floor: any clean change", 128, 1, 1, 0, true},
	}
	for _, tc := range tests {
		if got := cellMoved(tc.n, tc.d, tc.sad, tc.floor); got != tc.want {
			t.Errorf("%s: cellMoved = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// grainScene returns frame i of a scene of broad features panning 3 pixels a
// frame, except frames first..last, which show frame first-1's picture; every
// frame gets fresh uniform noise of +-grain levels, added after the freeze.
func grainScene(seed uint64, first, last, grain int, still bool) func(i int) *VideoFrame {
	r := rand.New(rand.NewPCG(seed, 1))
	return func(i int) *VideoFrame {
		p := i
		if still {
			p = 0
		} else if i >= first && i <= last {
			p = first - 1
		}
		return newFrame8(160, 96, 160, 0, func(x, y int) byte {
			u := float64(x+3*p) / 23
			v := 120 + 60*math.Sin(u)*math.Cos(float64(y)/17) + 30*math.Sin(float64(x+y+5*p)/41)
			if grain > 0 {
				v += float64(r.IntN(2*grain+1) - grain)
			}
			return byte(min(max(v, 16), 235))
		})
	}
}

// refined raises a 64x16 patch of scene by 8 levels from frame at[0] on,
// another one from at[1] on, and so on (an encoder refining a frozen picture).
func refined(scene func(i int) *VideoFrame, at ...int) func(i int) *VideoFrame {
	return func(i int) *VideoFrame {
		f := scene(i)
		for k, a := range at {
			if i < a {
				continue
			}
			x0, y0 := 64*(k%2), 16+32*(k/2)
			for y := y0; y < y0+16; y++ {
				for x := x0; x < x0+64; x++ {
					f.Y[y*f.Stride+x] = byte(min(int(f.Y[y*f.Stride+x])+8, 235))
				}
			}
		}
		return f
	}
}

// checkFreezeScene runs 7 s of a 25 fps scene (a key frame every 2 s)
// through the freeze decision, every other row sampled, and checks its alarms.
func checkFreezeScene(t *testing.T, scene func(i int) *VideoFrame, want []span) {
	t.Helper()
	var log eventLog
	c := freezeCaller{det: NewFreezeDetector(DefaultFreezeConfig(), log.emit), rowStep: 2}
	for i := 0; i < 175; i++ {
		c.video(timed(scene(i), i, i%50 == 0))
	}
	c.det.Flush(7)
	checkSpans(t, log.events, want, 1e-9)
}

func TestFreezeUnderGrain(t *testing.T) {
	tests := []struct {
		name  string
		scene func(i int) *VideoFrame
		want  []span
	}{
		{"freeze under grain 2.0 to 5.0 s", grainScene(1, 50, 124, 12, false), []span{{1.96, 5}}},
		{"freeze under light grain", grainScene(2, 50, 124, 3, false), []span{{1.96, 5}}},
		{"exact freeze (no grain) still found", grainScene(3, 50, 124, 0, false), []span{{1.96, 5}}},
		{"grain on a static shot from the start: never moved, not a freeze", grainScene(4, 0, 0, 12, true), nil},
		{"grain on moving content: no freeze", grainScene(5, 1000, 1000, 12, false), nil},
		{"freeze shorter than min_duration", grainScene(6, 50, 90, 12, false), nil},
		// Re-encoding drift: the encoder refines a 64x16 patch (4 of 60 cells:
		// over max_moved, under min_motion) of the frozen picture.
		{"a re-encoder refines a few cells once inside the freeze", refined(grainScene(7, 50, 124, 3, false), 80), []span{{1.96, 5}}},
		{"refined at two frames apart: still one freeze", refined(grainScene(8, 50, 124, 3, false), 70, 90), []span{{1.96, 5}}},
		{"refined on two frames in a row: motion", refined(grainScene(9, 50, 124, 3, false), 80, 81), nil},
		{"refined every other frame (a creeping title card): motion", refined(grainScene(10, 50, 124, 3, false), 70, 72, 74, 76), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkFreezeScene(t, tc.scene, tc.want) })
	}
}

// subjectScene is a still, textured 160x96 shot under grain in which a
// 40x16 subject (wider than a cell: a cell's mean does not see motion inside
// it) moves 3 samples a frame, back and forth: 2 to 4 of the 60 freeze cells
// move, under min_motion. The whole picture is frozen on frame first-1 from
// first to last, and the subject alone stands still from pause to resume
// (the grain goes on in both).
func subjectScene(seed uint64, first, last, pause, resume, grain int) func(i int) *VideoFrame {
	r := rand.New(rand.NewPCG(seed, 2))
	return func(i int) *VideoFrame {
		p := i
		if i >= first && i <= last {
			p = first - 1
		}
		if p >= pause && p <= resume {
			p = pause - 1
		}
		sx := 10 + (3*p)%200 // the subject's left edge, 10 to 110 and back
		if sx > 110 {
			sx = 220 - sx
		}
		return newFrame8(160, 96, 160, 0, func(x, y int) byte {
			v := 120 + 50*math.Sin(float64(x)/9)*math.Cos(float64(y)/7)
			if x >= sx && x < sx+40 && y >= 40 && y < 56 {
				v = 220 - 40*math.Sin(float64(x-sx)/3)
			}
			if grain > 0 {
				v += float64(r.IntN(2*grain+1) - grain)
			}
			return byte(min(max(v, 16), 235))
		})
	}
}

// TestFreezeAfterSmallSubject: in a still shot where only a small subject
// moved (under min_motion, so the grain path does not apply), a frozen
// picture moves no cell at all, and that is a freeze from its first frame;
// the subject pausing briefly, or moving throughout, is not.
func TestFreezeAfterSmallSubject(t *testing.T) {
	never := 1 << 20
	tests := []struct {
		name  string
		scene func(i int) *VideoFrame
		want  []span
	}{
		{"frozen 2.0 to 5.0 s after a small subject moved", subjectScene(1, 50, 124, never, never, 3), []span{{1.96, 5}}},
		{"the same without grain", subjectScene(2, 50, 124, never, never, 0), []span{{1.96, 5}}},
		{"the same, a re-encoder refining 4 cells once inside", refined(subjectScene(3, 50, 124, never, never, 3), 80), []span{{1.96, 5}}},
		{"the subject moving throughout", subjectScene(4, never, never, never, never, 3), nil},
		{"the subject pausing 0.6 s", subjectScene(5, never, never, 50, 65, 3), nil},
		{"the subject stopping dead for 3 s reads as a freeze", subjectScene(6, never, never, 50, 124, 3), []span{{1.96, 5}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { checkFreezeScene(t, tc.scene, tc.want) })
	}
}
