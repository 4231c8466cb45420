package clips

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// --- no ffmpeg needed --------------------------------------------------------

func TestCatalogue(t *testing.T) {
	names := Names()
	if len(names) != 11 {
		t.Errorf("have %d clips, want 11: %v", len(names), names)
	}
	seen := map[string]bool{}
	for _, r := range recipes {
		if seen[r.name] {
			t.Errorf("clip %q listed twice", r.name)
		}
		seen[r.name] = true
		if r.seconds < 10 || r.seconds > 14 {
			t.Errorf("clip %q is %d s, want 10-14", r.name, r.seconds)
		}
		if (r.ext == ".ts") != (r.container == "mpegts") {
			t.Errorf("clip %q: extension %s does not match muxer %s", r.name, r.ext, r.container)
		}
	}
	if _, err := Generate(context.Background(), t.TempDir(), "no_such_clip"); err == nil ||
		!strings.Contains(err.Error(), "no_such_clip") {
		t.Errorf("Generate(unknown) = %v, want an error naming the clip", err)
	}
}

func TestCacheDirEnv(t *testing.T) {
	t.Setenv("STREAMQC_CLIPS", "/some/where")
	if d, err := CacheDir(); err != nil || d != "/some/where" {
		t.Errorf("CacheDir() = %q, %v; want $STREAMQC_CLIPS", d, err)
	}
	t.Setenv("STREAMQC_CLIPS", "")
	d, err := CacheDir()
	if err != nil {
		t.Skip("no user cache dir:", err)
	}
	if filepath.Base(d) != "clips-"+Version {
		t.Errorf("CacheDir() = %q, want .../streamqc/clips-%s", d, Version)
	}
}

func TestEnsureWithoutFFmpeg(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv("STREAMQC_CLIPS", t.TempDir())
	_, err := Ensure(context.Background(), Black)
	if !errors.Is(err, ErrNoFFmpeg) || !strings.Contains(err.Error(), "ffmpeg") {
		t.Errorf("Ensure without ffmpeg = %v, want ErrNoFFmpeg", err)
	}
}

// --- generated clips ---------------------------------------------------------

var (
	allOnce   sync.Once
	allTruths map[string]Truth
	allErr    error
)

// truths generates (or loads) every clip once per test binary.
func truths(t *testing.T) map[string]Truth {
	t.Helper()
	needFFmpeg(t)
	allOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var ts []Truth
		ts, allErr = Ensure(ctx)
		allTruths = map[string]Truth{}
		for _, tr := range ts {
			allTruths[tr.Name] = tr
		}
	})
	if allErr != nil {
		t.Fatal(allErr)
	}
	return allTruths
}

func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, tool := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not on PATH: skipping clip generation tests", tool)
		}
	}
}

func clip(t *testing.T, name string) Truth {
	t.Helper()
	tr, ok := truths(t)[name]
	if !ok {
		t.Fatalf("no truth for clip %s", name)
	}
	return tr
}

func TestTruthsConsistent(t *testing.T) {
	all := truths(t)
	if len(all) != len(Names()) {
		t.Fatalf("got %d truths, want %d", len(all), len(Names()))
	}
	for _, name := range Names() {
		tr := all[name]
		t.Run(name, func(t *testing.T) {
			if !filepath.IsAbs(tr.File) || filepath.Base(tr.File) != name+filepath.Ext(tr.File) {
				t.Errorf("file %q: want an absolute path to %s.*", tr.File, name)
			}
			if fi, err := os.Stat(tr.File); err != nil || fi.Size() == 0 {
				t.Errorf("file: %v", err)
			}
			if tr.Duration < 10 || tr.Duration > 14 || tr.FPS != FPS || tr.SampleRate != SampleRate {
				t.Errorf("duration %v fps %v rate %v", tr.Duration, tr.FPS, tr.SampleRate)
			}
			if tr.Notes == "" || tr.Version != Version {
				t.Errorf("notes %q version %q", tr.Notes, tr.Version)
			}
			if strings.HasPrefix(name, "clean_") != (len(tr.Defects) == 0) {
				t.Errorf("clean clips have no defects and the others do: %v", tr.Defects)
			}
			prev := math.Inf(-1)
			for _, s := range tr.Defects {
				if !slices.Contains(DefectNames, s.Defect) {
					t.Errorf("span %+v: unknown defect", s)
				}
				if !(0 <= s.Start && s.Start < s.End && s.End <= tr.Duration) {
					t.Errorf("span %+v outside 0..%v", s, tr.Duration)
				}
				if s.Start < prev {
					t.Errorf("spans not sorted by start: %v", tr.Defects)
				}
				prev = s.Start
				if tol := s.Tol(); tol <= 0 || tol > 0.2 {
					t.Errorf("span %+v: tolerance %v", s, tol)
				}
			}
			for _, a := range tr.Allow {
				if !slices.Contains(DefectNames, a) {
					t.Errorf("allow %q: unknown defect", a)
				}
			}
			b, err := os.ReadFile(truthPath(filepath.Dir(tr.File), name))
			var onDisk Truth
			if err != nil || json.Unmarshal(b, &onDisk) != nil || onDisk.Name != name {
				t.Errorf("truth file: %v", err)
			}
		})
	}
}

type probe struct {
	Streams []struct {
		CodecType  string `json:"codec_type"`
		CodecName  string `json:"codec_name"`
		Width      int    `json:"width"`
		Height     int    `json:"height"`
		PixFmt     string `json:"pix_fmt"`
		ColorRange string `json:"color_range"`
		RFrameRate string `json:"r_frame_rate"`
		SampleRate string `json:"sample_rate"`
		Channels   int    `json:"channels"`
		StartTime  string `json:"start_time"`
		Packets    string `json:"nb_read_packets"`
	} `json:"streams"`
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
}

func ffprobe(t *testing.T, file string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-count_packets", "-of", "json",
		"-show_entries", "stream=codec_type,codec_name,width,height,pix_fmt,color_range,r_frame_rate,"+
			"sample_rate,channels,start_time,nb_read_packets:format=format_name,duration", file).Output()
	if err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatalf("ffprobe %s: %v", file, err)
	}
	return p
}

func TestLayout(t *testing.T) {
	for _, name := range Names() {
		tr := clip(t, name)
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			p := ffprobe(t, tr.File)
			if !strings.Contains(p.Format.FormatName, tr.Container) {
				t.Errorf("format %q, want %q", p.Format.FormatName, tr.Container)
			}
			if d := atof(p.Format.Duration); math.Abs(d-tr.Duration) > 0.05 {
				t.Errorf("duration %v, want %v", d, tr.Duration)
			}
			if len(p.Streams) != 2 || p.Streams[0].CodecType != "video" || p.Streams[1].CodecType != "audio" {
				t.Fatalf("streams %+v, want one video then one audio", p.Streams)
			}
			v, a := p.Streams[0], p.Streams[1]
			if v.CodecName != tr.VideoCodec || v.Width != tr.Width || v.Height != tr.Height ||
				v.PixFmt != "yuv420p" || v.ColorRange != "tv" || v.RFrameRate != "25/1" {
				t.Errorf("video %+v", v)
			}
			if n, _ := strconv.Atoi(v.Packets); n != int(tr.Duration*tr.FPS) {
				t.Errorf("%d video frames, want %v", n, tr.Duration*tr.FPS)
			}
			if a.CodecName != tr.AudioCodec || a.SampleRate != "48000" || a.Channels != tr.Channels {
				t.Errorf("audio %+v", a)
			}
			// Time 0 is the first timestamp of the input: both tracks must start there.
			if math.Abs(atof(v.StartTime)-atof(a.StartTime)) > 1e-3 {
				t.Errorf("video starts at %s, audio at %s", v.StartTime, a.StartTime)
			}
		})
	}
}

// expectInterval checks that FFmpeg's filter reports exactly one interval matching span.
func expectInterval(t *testing.T, tr Truth, kind, filter string, want Span, tol float64) {
	t.Helper()
	ffmpeg, _ := exec.LookPath("ffmpeg")
	iv, err := ffmpegIntervals(context.Background(), ffmpeg, tr.File, kind, filter)
	if err != nil {
		t.Fatal(err)
	}
	if len(iv) != 1 || math.Abs(iv[0].Start-want.Start) > tol || math.Abs(iv[0].End-want.End) > tol {
		t.Errorf("%s on %s reports %s, want %.3f..%.3f within %.3f s", filter, tr.Name, describe(iv), want.Start, want.End, tol)
	}
}

func expectNothing(t *testing.T, tr Truth, kind, filter string) {
	t.Helper()
	ffmpeg, _ := exec.LookPath("ffmpeg")
	iv, err := ffmpegIntervals(context.Background(), ffmpeg, tr.File, kind, filter)
	if err != nil {
		t.Fatal(err)
	}
	if len(iv) != 0 {
		t.Errorf("%s on %s reports %s, want nothing", filter, tr.Name, describe(iv))
	}
}

func only(t *testing.T, tr Truth, defect string) Span {
	t.Helper()
	for _, s := range tr.Defects {
		if s.Defect == defect {
			return s
		}
	}
	t.Fatalf("%s has no %s span", tr.Name, defect)
	return Span{}
}

// Cross-checks with FFmpeg's own filters where they are good oracles.
func TestFFmpegOracles(t *testing.T) {
	t.Run("blackdetect on black", func(t *testing.T) {
		t.Parallel()
		tr := clip(t, Black)
		expectInterval(t, tr, "-vf", "blackdetect", only(t, tr, DefectBlack), VideoTolerance)
	})
	t.Run("silencedetect on silence", func(t *testing.T) {
		t.Parallel()
		tr := clip(t, Silence)
		expectInterval(t, tr, "-af", "silencedetect", only(t, tr, DefectSilence), AudioTolerance)
	})
	t.Run("freezedetect on freeze", func(t *testing.T) {
		t.Parallel()
		tr := clip(t, Freeze)
		s := only(t, tr, DefectFreeze)
		expectInterval(t, tr, "-vf", "freezedetect", s, VideoTolerance)
		if s.Values["ffmpeg_start"] != s.Start || s.Values["ffmpeg_end"] != s.End {
			t.Errorf("truth %+v: recorded freezedetect result differs from the span", s)
		}
	})
	t.Run("freezedetect quiet on clean_static_noisy", func(t *testing.T) {
		t.Parallel()
		expectNothing(t, clip(t, CleanStaticNoisy), "-vf", "freezedetect")
	})
	t.Run("blackdetect fires on clean_dark (the peer's false alarm)", func(t *testing.T) {
		t.Parallel()
		tr := clip(t, CleanDark)
		expectInterval(t, tr, "-vf", "blackdetect", Span{Start: 0, End: tr.Duration}, 2*VideoTolerance)
	})
	t.Run("silencedetect quiet on clean_quiet", func(t *testing.T) {
		t.Parallel()
		expectNothing(t, clip(t, CleanQuiet), "-af", "silencedetect=n=-60dB:d=2")
	})
	t.Run("broadcast_ts", func(t *testing.T) {
		t.Parallel()
		tr := clip(t, BroadcastTS)
		expectInterval(t, tr, "-vf", "blackdetect", only(t, tr, DefectBlack), VideoTolerance)
		// AAC smears the edges: the decoded run is a little under 2 s, so d=1.5.
		s := only(t, tr, DefectSilence)
		expectInterval(t, tr, "-af", "silencedetect=d=1.5", s, s.Tol())
	})
}

// decodePCM returns the clip's audio as interleaved stereo s16 samples.
func decodePCM(t *testing.T, file string) []int16 {
	t.Helper()
	ffmpeg, _ := exec.LookPath("ffmpeg")
	pcm, err := decodeS16(context.Background(), ffmpeg, file)
	if err != nil {
		t.Fatal(err)
	}
	return pcm
}

// decodeGray returns the luma planes of frames (all when frames is empty),
// scaled to w x h with area averaging.
func decodeGray(t *testing.T, file string, w, h int, frames ...int) [][]byte {
	t.Helper()
	vf := fmt.Sprintf("scale=%d:%d:flags=area,format=gray", w, h)
	if w == Width && h == Height {
		vf = "format=gray"
	}
	if len(frames) > 0 {
		var sel []string
		for _, n := range frames {
			sel = append(sel, fmt.Sprintf("eq(n,%d)", n))
		}
		vf = "select='" + strings.Join(sel, "+") + "'," + vf
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-i", file, "-an", "-vf", vf,
		"-fps_mode", "passthrough", "-f", "rawvideo", "-").Output()
	if err != nil {
		t.Fatalf("decode %s: %v", file, err)
	}
	var planes [][]byte
	for len(out) >= w*h {
		planes = append(planes, out[:w*h])
		out = out[w*h:]
	}
	return planes
}

func mean(p []byte) float64 {
	s := 0
	for _, v := range p {
		s += int(v)
	}
	return float64(s) / float64(len(p))
}

func TestSilenceIsSampleExact(t *testing.T) {
	tr := clip(t, Silence)
	s := only(t, tr, DefectSilence)
	pcm := decodePCM(t, tr.File)
	first, end := 2*sampleAt(s.Start), 2*sampleAt(s.End)
	for i := first; i < end; i++ {
		if pcm[i] != 0 {
			t.Fatalf("sample %d (%.5f s) = %d inside the silence", i/2, sampleTime(i/2), pcm[i])
		}
	}
	if slices.Equal(pcm[first-8:first], make([]int16, 8)) || slices.Equal(pcm[end:end+8], make([]int16, 8)) {
		t.Errorf("audio is zero next to the silence too: the span is not sample-exact")
	}
}

func TestClippingHasFlatTops(t *testing.T) {
	tr := clip(t, Clipping)
	s := only(t, tr, DefectClipping)
	pcm := decodePCM(t, tr.File)
	first, end := sampleAt(s.Start), sampleAt(s.End)
	in, before, after := fullScaleShare(pcm, first, end), fullScaleShare(pcm, 0, first), fullScaleShare(pcm, end, len(pcm)/2)
	t.Logf("full-scale samples: %.1f%% inside, %.3f%% before, %.3f%% after", 100*in, 100*before, 100*after)
	if in < 0.2 || before > 0 || after > 0 || math.Abs(in-s.Values["full_scale_share"]) > 0.001 {
		t.Errorf("full-scale share %.3f inside the span (want > 0.2), %v / %v outside (want 0)", in, before, after)
	}
}

// ebur128 short-term loudness of the base audio stays in the programme range.
func TestBaseLoudness(t *testing.T) {
	ffmpeg, _ := exec.LookPath("ffmpeg")
	for _, name := range []string{Black, Loudness} {
		tr := clip(t, name)
		steps, err := ebur128Steps(context.Background(), ffmpeg, tr.File)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, s := range steps {
			if s.T < 3 { // ebur128 logs -120.7 until the 3 s window is full
				continue
			}
			if name == Loudness && s.T >= 4 { // only the part before the gain step
				break
			}
			lo, hi = math.Min(lo, s.ShortTerm), math.Max(hi, s.ShortTerm)
		}
		t.Logf("%s: short-term %.1f..%.1f LUFS", name, lo, hi)
		if lo < -24 || hi > -22 {
			t.Errorf("%s: base short-term loudness %.1f..%.1f LUFS, want about -23", name, lo, hi)
		}
	}
	tr := clip(t, Loudness)
	s := only(t, tr, DefectLoudness)
	if s.Start <= s.Values["inject_start"] || s.Start > s.Values["inject_start"]+2 ||
		s.End <= s.Values["inject_end"] || s.End > s.Values["inject_end"]+3 {
		t.Errorf("loudness span %+v: the oracle's edges should trail the gain step by under 3 s", s)
	}
	if s.Values["peak_dbfs"] > -2 {
		t.Errorf("loudness clip peaks at %v dBFS: too close to clipping", s.Values["peak_dbfs"])
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func TestBaseVideoLuma(t *testing.T) {
	tr := clip(t, Black)
	s := only(t, tr, DefectBlack)
	planes := decodeGray(t, tr.File, 64, 36)
	if len(planes) != int(tr.Duration*FPS) {
		t.Fatalf("%d frames", len(planes))
	}
	for n, p := range planes {
		m := mean(p)
		black := frameTime(n) >= s.Start && frameTime(n) < s.End
		if black && m > 16.5 || !black && (m < 90 || m > 140) {
			t.Errorf("frame %d (%.2f s): mean luma %.1f (black span %v)", n, frameTime(n), m, black)
		}
	}
	dark := decodeGray(t, clip(t, CleanDark).File, Width, Height, 0, 100, 200)
	for i, p := range dark {
		bright := 0
		for _, v := range p {
			if v > 60 {
				bright++
			}
		}
		if share := float64(bright) / float64(len(p)); mean(p) > 30 || share < 0.005 || share > 0.015 {
			t.Errorf("clean_dark frame %d: mean %.1f, bright share %.4f", i, mean(p), share)
		}
	}
}

// blockiness is the mean absolute luma step across 8x8 block boundaries over
// the mean step inside blocks (about 1 for natural pictures).
func blockiness(p []byte, w, h int) float64 {
	var edge, inner float64
	var ne, ni int
	for y := 0; y < h; y++ {
		for x := 0; x+1 < w; x++ {
			d := math.Abs(float64(p[y*w+x+1]) - float64(p[y*w+x]))
			if (x+1)%8 == 0 {
				edge, ne = edge+d, ne+1
			} else {
				inner, ni = inner+d, ni+1
			}
		}
	}
	for y := 0; y+1 < h; y++ {
		for x := 0; x < w; x++ {
			d := math.Abs(float64(p[(y+1)*w+x]) - float64(p[y*w+x]))
			if (y+1)%8 == 0 {
				edge, ne = edge+d, ne+1
			} else {
				inner, ni = inner+d, ni+1
			}
		}
	}
	return (edge / float64(ne)) / (inner / float64(ni))
}

func TestBlockyIsBlocky(t *testing.T) {
	tr := clip(t, Blocky)
	s := only(t, tr, DefectBlockiness)
	frames := []int{frameAt(s.Start) - 1, frameAt(s.Start), frameAt((s.Start + s.End) / 2), frameAt(s.End) - 1, frameAt(s.End)}
	planes := decodeGray(t, tr.File, Width, Height, frames...)
	if len(planes) != len(frames) {
		t.Fatalf("decoded %d frames, want %d", len(planes), len(frames))
	}
	var got []string
	for i, p := range planes {
		b := blockiness(p, Width, Height)
		got = append(got, fmt.Sprintf("%d:%.2f", frames[i], b))
		inside := frameTime(frames[i]) >= s.Start && frameTime(frames[i]) < s.End
		if inside && b < 3 || !inside && b > 1.6 { // clean x264 frames measure about 1.2-1.3
			t.Errorf("frame %d: blockiness %.2f (inside the span: %v)", frames[i], b, inside)
		}
	}
	t.Log("blockiness per frame:", strings.Join(got, " "))
}

// The flash and beep times measured in the decoded clip give the offsets the truth states.
func TestAVSyncPattern(t *testing.T) {
	tr := clip(t, AVSync)
	var flashes []float64
	for n, p := range decodeGray(t, tr.File, 16, 9) {
		switch m := mean(p); {
		case m > 200:
			flashes = append(flashes, frameTime(n))
		case math.Abs(m-110) > 3:
			t.Errorf("frame %d: mean luma %.1f, want 110 (grey) or 235 (flash)", n, m)
		}
	}
	pcm := decodePCM(t, tr.File)
	var beeps []float64
	const thresh = 0.03 * 32768 // the noise floor peaks near 0.014
	last := -1
	for i := 0; i < len(pcm)/2; i++ {
		if float64(abs(int(pcm[2*i]))) > thresh {
			if last < 0 || i-last > SampleRate/5 {
				beeps = append(beeps, sampleTime(i))
			}
			last = i
		}
	}
	if len(flashes) != int(tr.Duration) || len(beeps) != len(flashes) {
		t.Fatalf("%d flashes %v and %d beeps %v, want %v each", len(flashes), flashes, len(beeps), beeps, tr.Duration)
	}
	for i, f := range flashes {
		want := 0.0
		for _, s := range tr.Defects {
			if f >= s.Start-1e-9 && f < s.End-1e-9 {
				want = s.Values["offset_ms"]
			}
		}
		got := (f - beeps[i]) * 1000
		if math.Abs(got-want) > 1 { // the beep's first samples are below the threshold
			t.Errorf("flash at %.2f s, beep at %.4f s: offset %.1f ms, want %v", f, beeps[i], got, want)
		}
	}
}

// Generate from several goroutines at once into a fresh dir: one builds, the
// others wait on the lock, all get the same truth and nothing is left over;
// a second call uses the cache.
func TestGenerateConcurrentAndCached(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	ctx := context.Background()
	var wg sync.WaitGroup
	res := make([][]Truth, 3)
	errs := make([]error, 3)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = Generate(ctx, dir, Silence)
		}()
	}
	wg.Wait()
	for i := range res {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if len(res[i]) != 1 || res[i][0].Name != Silence || res[i][0].File != res[0][0].File {
			t.Fatalf("call %d: %+v", i, res[i])
		}
	}
	entries, _ := os.ReadDir(dir)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"silence.mkv", "silence.truth.json"}; !slices.Equal(names, want) {
		t.Errorf("dir holds %v, want %v", names, want)
	}
	fi, _ := os.Stat(res[0][0].File)
	start := time.Now()
	again, err := Generate(ctx, dir, Silence)
	if err != nil || len(again) != 1 {
		t.Fatal(again, err)
	}
	if fi2, _ := os.Stat(again[0].File); !fi2.ModTime().Equal(fi.ModTime()) || time.Since(start) > time.Second {
		t.Errorf("second Generate rebuilt the clip")
	}
}
