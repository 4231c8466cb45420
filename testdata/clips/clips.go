// Package clips generates short labelled test clips with the ffmpeg CLI:
// natural-looking base content with defects (black, freeze, blocks, silence,
// clipping, loudness, A/V sync) injected at exact frame and sample times, plus
// the truth every detector is scored against. Clips are generated into a cache
// and never committed; see ../README.md.
package clips

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Version names the recipes: bump it when any clip's recipe changes, so that
// cached clips are regenerated.
const Version = "3"

// Defect names, as the detectors package spells them.
const (
	DefectBlack      = "black"
	DefectFreeze     = "freeze"
	DefectBlockiness = "blockiness"
	DefectSilence    = "silence"
	DefectClipping   = "clipping"
	DefectLoudness   = "loudness"
	DefectAVSync     = "av_sync"
	DefectSignalLoss = "signal_loss"
	DefectDecode     = "decode_error"
)

// DefectNames lists every defect a truth may name.
var DefectNames = []string{DefectBlack, DefectFreeze, DefectBlockiness, DefectSilence,
	DefectClipping, DefectLoudness, DefectAVSync, DefectSignalLoss, DefectDecode, DefectDetailLoss}

// Clip names.
const (
	Black            = "black"
	Freeze           = "freeze"
	Blocky           = "blocky"
	Silence          = "silence"
	Clipping         = "clipping"
	Loudness         = "loudness"
	AVSync           = "avsync"
	CleanDark        = "clean_dark"
	CleanStaticNoisy = "clean_static_noisy"
	CleanQuiet       = "clean_quiet"
	BroadcastTS      = "broadcast_ts"
)

// Common format of every clip.
const (
	FPS        = 25
	SampleRate = 48000
	Width      = 640
	Height     = 360
	Channels   = 2
)

// Default tolerances, used where Span.Tolerance is 0.
const (
	VideoTolerance = 1.0 / FPS // one frame
	AudioTolerance = 0.020
)

// Span is one alarm a monitor must raise on a clip.
type Span struct {
	Defect string             `json:"defect"`
	Start  float64            `json:"start"`
	End    float64            `json:"end"`
	Values map[string]float64 `json:"values,omitempty"`
	// Tolerance in seconds on Start and End; 0 means the default (one frame
	// for video defects, 20 ms for audio defects, see Tol).
	Tolerance float64 `json:"tolerance,omitempty"`
}

// Tol returns the span's tolerance in seconds, applying the defaults.
func (s Span) Tol() float64 {
	if s.Tolerance > 0 {
		return s.Tolerance
	}
	switch s.Defect {
	case DefectSilence, DefectClipping, DefectLoudness:
		return AudioTolerance
	}
	return VideoTolerance
}

// Truth describes one generated clip and what must be detected on it.
type Truth struct {
	Name       string  `json:"name"`
	File       string  `json:"file"` // absolute path
	Duration   float64 `json:"duration"`
	FPS        float64 `json:"fps"`
	SampleRate int     `json:"sample_rate"`
	// Defects are every alarm that MUST be raised, with expected start/end.
	Defects []Span `json:"defects"`
	// Allow names defects that may also fire on this clip without being a
	// false alarm (Notes says why).
	Allow []string `json:"allow,omitempty"`
	Notes string   `json:"notes"`

	// Layout, as ffprobe should report it.
	Container  string `json:"container"` // "matroska" or "mpegts"
	VideoCodec string `json:"video_codec"`
	AudioCodec string `json:"audio_codec"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	Channels   int    `json:"channels"`
	// Version is the generator Version that wrote the clip.
	Version string `json:"version"`
}

// Allows reports whether defect may fire on the clip without being a false alarm.
func (t Truth) Allows(defect string) bool { return slices.Contains(t.Allow, defect) }

// ErrNoFFmpeg is returned (wrapped) by Ensure and Generate when ffmpeg is not on PATH.
var ErrNoFFmpeg = errors.New("ffmpeg is needed to generate the test clips (testdata/clips) but is not on PATH")

// recipe makes one clip: build writes the media file to out and returns its truth
// (File, Version and the common fields are filled in by the caller).
type recipe struct {
	name      string
	ext       string
	container string // ffmpeg muxer
	seconds   int
	build     func(ctx context.Context, g *generator, out string) (Truth, error)
	// version overrides Version (the quality corpus has its own).
	version string
}

// ver is the generator version r's clips are cached under.
func (r recipe) ver() string {
	if r.version != "" {
		return r.version
	}
	return Version
}

var recipes = []recipe{
	{Black, ".mkv", "matroska", 12, buildBlack, ""},
	{Freeze, ".mkv", "matroska", 12, buildFreeze, ""},
	{Blocky, ".mkv", "matroska", 12, buildBlocky, ""},
	{Silence, ".mkv", "matroska", 12, buildSilence, ""},
	{Clipping, ".mkv", "matroska", 12, buildClipping, ""},
	{Loudness, ".mkv", "matroska", 13, buildLoudness, ""},
	{AVSync, ".mkv", "matroska", 13, buildAVSync, ""},
	{CleanDark, ".mkv", "matroska", 12, buildCleanDark, ""},
	{CleanStaticNoisy, ".mkv", "matroska", 12, buildCleanStaticNoisy, ""},
	{CleanQuiet, ".mkv", "matroska", 12, buildCleanQuiet, ""},
	{BroadcastTS, ".ts", "mpegts", 12, buildBroadcastTS, ""},
}

// Names returns the names of all clips, in generation order.
func Names() []string {
	names := make([]string, len(recipes))
	for i, r := range recipes {
		names[i] = r.name
	}
	return names
}

// CacheDir returns $STREAMQC_CLIPS if set, else os.UserCacheDir()/streamqc/clips-<Version>.
func CacheDir() (string, error) {
	if d := os.Getenv("STREAMQC_CLIPS"); d != "" {
		return d, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("clips cache dir: %w (set STREAMQC_CLIPS)", err)
	}
	return filepath.Join(base, "streamqc", "clips-"+Version), nil
}

// Ensure is what tests call: CacheDir + Generate. It returns an error wrapping
// ErrNoFFmpeg when ffmpeg is not on PATH.
func Ensure(ctx context.Context, only ...string) ([]Truth, error) {
	dir, err := CacheDir()
	if err != nil {
		return nil, err
	}
	return Generate(ctx, dir, only...)
}

// Generate writes every clip (or those named in only) into dir as NAME.mkv or
// NAME.ts plus NAME.truth.json, skipping clips whose files already exist for
// this Version, and returns their truths in the order of Names. It is safe to
// call concurrently, from several processes too: each clip is built under a
// lock file and published with os.Rename.
func Generate(ctx context.Context, dir string, only ...string) ([]Truth, error) {
	sel, err := selectRecipes(only)
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, err
	}
	return build(ctx, dir, sel)
}

// build returns the truths of the recipes rs in dir, building those not
// cached yet, a few at once (ffmpeg's filters are mostly single-threaded).
func build(ctx context.Context, dir string, rs []recipe) ([]Truth, error) {
	// Fast path: everything cached, ffmpeg not even needed.
	truths := make([]Truth, len(rs))
	missing := false
	for i, r := range rs {
		t, ok := loadTruth(dir, r)
		truths[i] = t
		missing = missing || !ok
	}
	if !missing {
		return truths, nil
	}
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		return nil, ErrNoFFmpeg
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("clips: %w", err)
	}
	g := &generator{dir: dir, ffmpeg: ffmpeg}
	defer g.cleanup()
	sem := make(chan struct{}, min(max(2, runtime.NumCPU()), 4))
	errs := make([]error, len(rs))
	var wg sync.WaitGroup
	for i, r := range rs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			truths[i], errs[i] = g.ensure(ctx, r)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return truths, nil
}

func selectRecipes(only []string) ([]recipe, error) {
	if len(only) == 0 {
		return recipes, nil
	}
	var sel []recipe
	for _, r := range recipes {
		if slices.Contains(only, r.name) {
			sel = append(sel, r)
		}
	}
	for _, n := range only {
		if !slices.Contains(Names(), n) {
			return nil, fmt.Errorf("clips: unknown clip %q (have %s)", n, strings.Join(Names(), ", "))
		}
	}
	return sel, nil
}

func truthPath(dir, name string) string { return filepath.Join(dir, name+".truth.json") }

// loadTruth returns the cached truth of r if it and its media file exist for this Version.
func loadTruth(dir string, r recipe) (Truth, bool) {
	b, err := os.ReadFile(truthPath(dir, r.name))
	if err != nil {
		return Truth{}, false
	}
	var t Truth
	if json.Unmarshal(b, &t) != nil || t.Version != r.ver() || t.Name != r.name {
		return Truth{}, false
	}
	t.File = filepath.Join(dir, r.name+r.ext) // the directory may have moved
	if fi, err := os.Stat(t.File); err != nil || fi.Size() == 0 {
		return Truth{}, false
	}
	return t, true
}

// Lock files older than this are left over from a killed process (a live
// holder touches its lock every lockTouch).
const (
	lockStale = 30 * time.Second
	lockTouch = 5 * time.Second
)

type generator struct {
	dir    string
	ffmpeg string

	mu      sync.Mutex
	work    string // scratch dir inside dir, made on first use
	canvas  string
	canvErr error
}

func (g *generator) cleanup() {
	if g.work != "" {
		os.RemoveAll(g.work)
	}
}

// ensure returns r's truth, building the clip unless it is cached, and waiting
// for another process that is building it.
func (g *generator) ensure(ctx context.Context, r recipe) (Truth, error) {
	lock := filepath.Join(g.dir, r.name+".lock")
	for {
		if t, ok := loadTruth(g.dir, r); ok {
			return t, nil
		}
		f, err := os.OpenFile(lock, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
		if err == nil {
			f.Close()
			return g.buildLocked(ctx, r, lock)
		}
		if !errors.Is(err, fs.ErrExist) {
			return Truth{}, fmt.Errorf("clips: lock %s: %w", lock, err)
		}
		if fi, err := os.Stat(lock); err == nil && time.Since(fi.ModTime()) > lockStale {
			os.Remove(lock)
			continue
		}
		select {
		case <-ctx.Done():
			return Truth{}, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// probeDuration returns a media file's duration as ffprobe reads it.
func probeDuration(ctx context.Context, file string) (float64, error) {
	out, err := exec.CommandContext(ctx, "ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", file).Output()
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s: %w", file, err)
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		return 0, fmt.Errorf("ffprobe %s duration %q: %w", file, out, err)
	}
	return d, nil
}

func (g *generator) buildLocked(ctx context.Context, r recipe, lock string) (Truth, error) {
	done := make(chan struct{})
	defer func() {
		close(done)
		os.Remove(lock)
	}()
	go func() {
		tick := time.NewTicker(lockTouch)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case now := <-tick.C:
				os.Chtimes(lock, now, now)
			}
		}
	}()
	// Another process may have finished between our check and taking the lock.
	if t, ok := loadTruth(g.dir, r); ok {
		return t, nil
	}
	tmp, err := os.CreateTemp(g.dir, "."+r.name+".*"+r.ext)
	if err != nil {
		return Truth{}, fmt.Errorf("clips: %w", err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name()) // no-op once renamed

	t, err := r.build(ctx, g, tmp.Name())
	if err != nil {
		return Truth{}, fmt.Errorf("clip %s: %w", r.name, err)
	}
	if r.version != "" { // a corpus clip: as long as its recipe says
		if d, err := probeDuration(ctx, tmp.Name()); err != nil {
			return Truth{}, fmt.Errorf("clip %s: %w", r.name, err)
		} else if d < float64(r.seconds)-0.25 {
			return Truth{}, fmt.Errorf("clip %s: %.2f s long, want %d s (a source that ran out, or a seek that missed its key frame)", r.name, d, r.seconds)
		}
	}
	final := filepath.Join(g.dir, r.name+r.ext)
	t.Name, t.File, t.Version = r.name, final, r.ver()
	// Corpus recipes fill in their own layout; the catalogue shares one.
	if t.Duration == 0 {
		t.Duration = float64(r.seconds)
	}
	if t.FPS == 0 {
		t.FPS = FPS
	}
	if t.SampleRate == 0 {
		t.SampleRate = SampleRate
	}
	if t.Width == 0 {
		t.Width, t.Height = Width, Height
	}
	if t.Channels == 0 {
		t.Channels = Channels
	}
	t.Container = r.container
	if t.VideoCodec == "" {
		t.VideoCodec = "h264"
	}
	if t.AudioCodec == "" {
		t.AudioCodec = "pcm_s16le"
	}
	if t.Defects == nil {
		t.Defects = []Span{}
	}
	slices.SortStableFunc(t.Defects, func(a, b Span) int { return cmpFloat(a.Start, b.Start) })

	if err := os.Chmod(tmp.Name(), 0o644); err != nil { // CreateTemp made it 0600
		return Truth{}, fmt.Errorf("clip %s: %w", r.name, err)
	}
	if err := os.Rename(tmp.Name(), final); err != nil {
		return Truth{}, fmt.Errorf("clip %s: %w", r.name, err)
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return Truth{}, err
	}
	if err := writeFileAtomic(truthPath(g.dir, r.name), append(b, '\n')); err != nil {
		return Truth{}, fmt.Errorf("clip %s: %w", r.name, err)
	}
	return t, nil
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	if err := errors.Join(werr, cerr, os.Chmod(f.Name(), 0o644)); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Rename(f.Name(), path); err != nil {
		os.Remove(f.Name())
		return err
	}
	return nil
}

// scratch returns the generator's scratch directory, making it on first use.
func (g *generator) scratch() (string, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.work == "" {
		w, err := os.MkdirTemp(g.dir, ".work-")
		if err != nil {
			return "", err
		}
		g.work = w
	}
	return g.work, nil
}

// canvasPNG returns a 1600x900 still of smooth multi-scale ("cloud") noise that
// the base video pans across: natural-looking detail at every scale with no
// structure on the 8x8 block grid (which would make blockiness unfair).
// It is rendered once per Generate.
func (g *generator) canvasPNG(ctx context.Context) (string, error) {
	work, err := g.scratch()
	if err != nil {
		return "", err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.canvas != "" || g.canvErr != nil {
		return g.canvas, g.canvErr
	}
	// Four octaves of uniform noise, each upscaled bicubically from an odd size
	// (so no cell grid lines up with 8x8 blocks); colour from the coarsest.
	layer := func(size string, chroma int) string {
		return fmt.Sprintf("color=c=0x808080:s=%s:d=0.04,format=yuv444p,"+
			"noise=c0s=100:c1s=%d:c2s=%d:c0f=u:c1f=u:c2f=u,scale=1600x900:flags=bicubic", size, chroma, chroma)
	}
	out := filepath.Join(work, "canvas.png")
	err = g.run(ctx,
		"-f", "lavfi", "-i", layer("9x5", 100),
		"-f", "lavfi", "-i", layer("37x21", 0),
		"-f", "lavfi", "-i", layer("160x90", 0),
		"-f", "lavfi", "-i", layer("800x450", 0),
		"-filter_complex",
		"[0][1]blend=c0_expr='A*0.6+B*0.4':c1_expr=A:c2_expr=A[a];"+
			"[a][2]blend=c0_expr='A*0.75+B*0.25':c1_expr=A:c2_expr=A[b];"+
			"[b][3]blend=c0_expr='A*0.85+B*0.15':c1_expr=A:c2_expr=A,"+
			"eq=contrast=1.7:saturation=0.8,format=rgb24",
		"-frames:v", "1", "-f", "image2", "-c:v", "png", out)
	if err != nil {
		g.canvErr = fmt.Errorf("canvas: %w", err)
		return "", g.canvErr
	}
	g.canvas = out
	return out, nil
}

// run runs ffmpeg quietly with args; on failure the error carries its stderr.
func (g *generator) run(ctx context.Context, args ...string) error {
	_, err := runFFmpeg(ctx, g.ffmpeg, "error", args...)
	return err
}

// runFFmpeg runs ffmpeg at the given log level and returns its stderr.
func runFFmpeg(ctx context.Context, ffmpeg, level string, args ...string) (string, error) {
	full := append([]string{"-hide_banner", "-nostdin", "-nostats", "-v", level, "-y"}, args...)
	cmd := exec.CommandContext(ctx, ffmpeg, full...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		msg := stderr.String()
		if len(msg) > 2000 {
			msg = "..." + msg[len(msg)-2000:]
		}
		return msg, fmt.Errorf("ffmpeg %s: %w\n%s", strings.Join(full, " "), err, msg)
	}
	return stderr.String(), nil
}

// --- building blocks -------------------------------------------------------

func frameTime(n int) float64  { return float64(n) / FPS }
func sampleTime(n int) float64 { return float64(n) / SampleRate }
func frameAt(sec float64) int  { return int(math.Round(sec * FPS)) }
func sampleAt(sec float64) int { return int(math.Round(sec * SampleRate)) }

// Pan path of the base video over the canvas: about 7 px/frame at most,
// the two axes never at rest together.
const panCrop = "crop=640:360:x='480+400*sin(2*PI*t/14)':y='270+200*sin(2*PI*t/9)'"

// baseVideo is a filter chain from the canvas (input 0) to base content:
// a pan over the canvas with uniform temporal noise, frame luma means about 105-130.
func baseVideo(frames int) string {
	return stillVideo(frames) + "," + panCrop + ",noise=alls=8:allf=t+u"
}

// stillVideo is the canvas looped into frames frames at 25 fps, pts = frame number.
func stillVideo(frames int) string {
	return fmt.Sprintf("[0:v]format=yuv420p,loop=loop=-1:size=1,trim=end_frame=%d,settb=1/%d,setpts=N", frames, FPS)
}

// baseAudio is a filtergraph fragment whose last chain is left open for more
// filters and an output label: two independent pink noises plus slowly
// tremoloed sines, soft-limited with tanh (never flat) so that the crest factor
// stays low: -23 LUFS integrated and short-term (+-0.2), sample peak -17.3 dBFS,
// so that +14 dB still peaks near -3 dBFS.
func baseAudio(samples int) string {
	d := samples/SampleRate + 1
	return fmt.Sprintf(
		"anoisesrc=c=pink:r=%[1]d:a=0.2:seed=11:d=%[2]d[nl];"+
			"anoisesrc=c=pink:r=%[1]d:a=0.2:seed=22:d=%[2]d[nr];"+
			"[nl][nr]join=inputs=2:channel_layout=stereo,aeval='0.06*tanh(val(ch)/0.06)':c=same[noise];"+
			"aevalsrc='0.06*sin(2*PI*220*t)*(0.6+0.4*sin(2*PI*0.7*t))+0.04*sin(2*PI*330*t+1)*(0.6+0.4*sin(2*PI*0.43*t))"+
			"|0.06*sin(2*PI*220*t+0.5)*(0.6+0.4*sin(2*PI*0.7*t))+0.04*sin(2*PI*554*t)*(0.6+0.4*sin(2*PI*0.31*t))'"+
			":s=%[1]d:d=%[2]d:c=stereo[tones];"+
			"[noise][tones]amix=inputs=2:normalize=0,aeval='0.12*tanh(val(ch)/0.12)':c=same,volume=2.4dB,"+
			"atrim=end_sample=%[3]d",
		SampleRate, d, samples)
}

// quietAudio is stereo pink noise at about -50 dBFS RMS (peaks about -37 dBFS).
func quietAudio(samples int) string {
	d := samples/SampleRate + 1
	return fmt.Sprintf(
		"anoisesrc=c=pink:r=%[1]d:a=0.01652:seed=11:d=%[2]d[ql];"+
			"anoisesrc=c=pink:r=%[1]d:a=0.01652:seed=22:d=%[2]d[qr];"+
			"[ql][qr]join=inputs=2:channel_layout=stereo,atrim=end_sample=%[3]d",
		SampleRate, d, samples)
}

// inSamples is an aeval condition true for samples first..last (inclusive).
func inSamples(first, last int) string { return fmt.Sprintf("between(n,%d,%d)", first, last) }

const gop = 50 // x264 keyframe interval (frames)

// x264Args encode the video of every clip. The tags say what the pixels are:
// limited range, and BT.601 because swscale converted the RGB sources with it.
func x264Args(crf int) []string {
	return []string{"-map", "[vout]", "-map", "[aout]", "-r", strconv.Itoa(FPS),
		"-c:v", "libx264", "-preset", "veryfast", "-crf", strconv.Itoa(crf), "-g", strconv.Itoa(gop), "-pix_fmt", "yuv420p",
		"-color_range", "tv", "-colorspace", "smpte170m", "-color_primaries", "smpte170m", "-color_trc", "smpte170m",
		"-map_metadata", "-1", "-fflags", "+bitexact"}
}

// mkvArgs are the output options of every Matroska clip: H.264 + PCM.
func mkvArgs(crf int, out string) []string {
	return append(x264Args(crf), "-c:a", "pcm_s16le", "-ar", strconv.Itoa(SampleRate), "-ac", strconv.Itoa(Channels),
		"-f", "matroska", out)
}

// encode builds a Matroska clip from the canvas (input 0) and extraInputs with
// a graph that ends in [vout] and [aout].
func (g *generator) encode(ctx context.Context, graph string, crf int, out string, extraInputs ...string) error {
	canvas, err := g.canvasPNG(ctx)
	if err != nil {
		return err
	}
	return g.encodeInputs(ctx, append([]string{canvas}, extraInputs...), graph, crf, out)
}

func (g *generator) encodeInputs(ctx context.Context, inputs []string, graph string, crf int, out string) error {
	var args []string
	for _, in := range inputs {
		args = append(args, "-i", in)
	}
	args = append(args, "-filter_complex", graph)
	return g.run(ctx, append(args, mkvArgs(crf, out)...)...)
}

// --- oracles: FFmpeg's own filters, run on a finished clip -------------------

var (
	reBlack     = regexp.MustCompile(`black_start:\s*([-0-9.e]+)\s+black_end:\s*([-0-9.e]+)`)
	reFreezeS   = regexp.MustCompile(`freeze_start:\s*([-0-9.e]+)`)
	reFreezeE   = regexp.MustCompile(`freeze_end:\s*([-0-9.e]+)`)
	reSilenceS  = regexp.MustCompile(`silence_start:\s*([-0-9.e]+)`)
	reSilenceE  = regexp.MustCompile(`silence_end:\s*([-0-9.e]+)`)
	reEBUR128   = regexp.MustCompile(`t:\s*([0-9.e+-]+)\s.*\sS:\s*([-0-9.]+)`)
	reOracleNum = regexp.MustCompile(`^[-0-9.e+]+$`)
)

// Interval is a [Start, End) range reported by an FFmpeg detection filter.
type Interval struct{ Start, End float64 }

// ffmpegIntervals runs one of FFmpeg's video or audio detection filters on file
// and returns the intervals it reports. kind is "-vf" or "-af".
func ffmpegIntervals(ctx context.Context, ffmpeg, file, kind, filter string) ([]Interval, error) {
	mapArgs := []string{"-an"}
	if kind == "-af" {
		mapArgs = []string{"-vn"}
	}
	args := append([]string{"-i", file}, mapArgs...)
	args = append(args, kind, filter, "-f", "null", "-")
	log, err := runFFmpeg(ctx, ffmpeg, "info", args...)
	if err != nil {
		return nil, err
	}
	var out []Interval
	switch {
	case strings.HasPrefix(filter, "blackdetect"):
		for _, m := range reBlack.FindAllStringSubmatch(log, -1) {
			out = append(out, Interval{atof(m[1]), atof(m[2])})
		}
	case strings.HasPrefix(filter, "freezedetect"):
		out = pairs(reFreezeS.FindAllStringSubmatch(log, -1), reFreezeE.FindAllStringSubmatch(log, -1))
	case strings.HasPrefix(filter, "silencedetect"):
		out = pairs(reSilenceS.FindAllStringSubmatch(log, -1), reSilenceE.FindAllStringSubmatch(log, -1))
	default:
		return nil, fmt.Errorf("no parser for filter %q", filter)
	}
	return out, nil
}

// pairs matches start and end reports; an unclosed start ends at +Inf.
func pairs(starts, ends [][]string) []Interval {
	out := make([]Interval, len(starts))
	for i, s := range starts {
		out[i] = Interval{atof(s[1]), math.Inf(1)}
		if i < len(ends) {
			out[i].End = atof(ends[i][1])
		}
	}
	return out
}

func atof(s string) float64 {
	if !reOracleNum.MatchString(s) {
		return math.NaN()
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

// LoudnessStep is one 100 ms line of FFmpeg's ebur128 log.
type LoudnessStep struct {
	T         float64 // end of the step, seconds
	ShortTerm float64 // LUFS over the 3 s ending at T (-120.7 before 3 s have passed)
}

func ebur128Steps(ctx context.Context, ffmpeg, file string) ([]LoudnessStep, error) {
	log, err := runFFmpeg(ctx, ffmpeg, "info", "-i", file, "-vn", "-af", "ebur128=framelog=info", "-f", "null", "-")
	if err != nil {
		return nil, err
	}
	var steps []LoudnessStep
	for _, line := range strings.Split(log, "\n") {
		if m := reEBUR128.FindStringSubmatch(line); m != nil {
			// t is logged as e.g. 4.69998: round to the 100 ms grid's millisecond.
			steps = append(steps, LoudnessStep{math.Round(atof(m[1])*1000) / 1000, atof(m[2])})
		}
	}
	if len(steps) == 0 {
		return nil, errors.New("ebur128 logged no steps")
	}
	return steps, nil
}

// decodeS16 decodes file's audio to interleaved stereo s16 at 48 kHz.
func decodeS16(ctx context.Context, ffmpeg, file string) ([]int16, error) {
	cmd := exec.CommandContext(ctx, ffmpeg, "-v", "error", "-nostdin", "-i", file, "-vn",
		"-f", "s16le", "-ac", strconv.Itoa(Channels), "-ar", strconv.Itoa(SampleRate), "-")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("decode audio of %s: %w: %s", file, err, stderr.String())
	}
	pcm := make([]int16, len(out)/2)
	for i := range pcm {
		pcm[i] = int16(uint16(out[2*i]) | uint16(out[2*i+1])<<8)
	}
	return pcm, nil
}

// fullScaleShare is the share of samples first..end-1 (both channels) at s16 full scale.
func fullScaleShare(pcm []int16, first, end int) float64 {
	first, end = min(Channels*first, len(pcm)), min(Channels*end, len(pcm))
	if end <= first {
		return 0
	}
	n := 0
	for _, v := range pcm[first:end] {
		if v >= math.MaxInt16 || v <= -math.MaxInt16 {
			n++
		}
	}
	return float64(n) / float64(end-first)
}

func describe(iv []Interval) string {
	if len(iv) == 0 {
		return "nothing"
	}
	var parts []string
	for _, v := range iv {
		parts = append(parts, fmt.Sprintf("%.3f..%.3f s", v.Start, v.End))
	}
	return strings.Join(parts, ", ")
}

// --- the clips ---------------------------------------------------------------

func buildBlack(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	first, end := frameAt(4.0), frameAt(7.0) // black frames first..end-1
	graph := baseVideo(seconds*FPS) +
		fmt.Sprintf(",drawbox=x=0:y=0:w=iw:h=ih:t=fill:c=black:enable='between(n,%d,%d)'[vout];", first, end-1) +
		baseAudio(seconds*SampleRate) + "[aout]"
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: []Span{{Defect: DefectBlack, Start: frameTime(first), End: frameTime(end),
			Values: map[string]float64{"luma": 16}}},
		Notes: fmt.Sprintf("Base content (pan over cloud-noise canvas + temporal noise, base audio about -23 LUFS); "+
			"frames %d..%d painted full-frame black (Y=16, limited range) with drawbox after the noise, "+
			"so black starts at the first black frame (%.2f s) and ends at the first picture frame (%.2f s).",
			first, end-1, frameTime(first), frameTime(end)),
	}, nil
}

func buildFreeze(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	held, end := frameAt(4.0), frameAt(7.0) // frames held+1..end-1 repeat frame held
	graph := baseVideo(seconds*FPS) +
		fmt.Sprintf(",split[f0][f1];[f0][f1]freezeframes=first=%d:last=%d:replace=%d[vout];", held+1, end-1, held) +
		baseAudio(seconds*SampleRate) + "[aout]"
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	span := Span{Defect: DefectFreeze, Start: frameTime(held), End: frameTime(end), Values: map[string]float64{}}
	iv, err := ffmpegIntervals(ctx, g.ffmpeg, out, "-vf", "freezedetect")
	if err != nil {
		return Truth{}, err
	}
	if len(iv) > 0 {
		span.Values["ffmpeg_start"], span.Values["ffmpeg_end"] = iv[0].Start, iv[0].End
	}
	return Truth{
		Defects: []Span{span},
		Notes: fmt.Sprintf("Base content; freezeframes replaces frames %d..%d with frame %d (%.2f s), so the picture shown at %.2f s "+
			"stays on screen until the new frame %d at %.2f s. Convention: the freeze starts at the frozen frame itself "+
			"(the first frame of the identical run, the last one that moved), not at its first repeat (%.2f s), and ends at the first "+
			"moving frame; this is also what FFmpeg freezedetect reports (it found %s). The repeated frames decode bit-identical "+
			"(x264 codes them as skips; the GOP-%d I-frame at %.2f s inside the freeze also decodes identical).",
			held+1, end-1, held, frameTime(held), frameTime(held), end, frameTime(end), frameTime(held+1), describe(iv),
			gop, frameTime((held/gop+1)*gop)),
	}, nil
}

func buildBlocky(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	first, end := frameAt(4.0), frameAt(7.0)
	const qscale = 31
	work, err := g.scratch()
	if err != nil {
		return Truth{}, err
	}
	canvas, err := g.canvasPNG(ctx)
	if err != nil {
		return Truth{}, err
	}
	// The starved segment: the same base frames through MPEG-2 at the worst
	// quantiser (8x8 DCT, no deblocking), decoded and spliced back. Intra only:
	// in P-frames the blocks would move with the pan, off the 8x8 grid.
	seg := filepath.Join(work, "blocky-segment.mkv")
	err = g.run(ctx, "-i", canvas, "-filter_complex",
		baseVideo(seconds*FPS)+fmt.Sprintf(",trim=start_frame=%d:end_frame=%d,setpts=PTS-STARTPTS", first, end),
		"-r", strconv.Itoa(FPS), "-c:v", "mpeg2video", "-qscale:v", strconv.Itoa(qscale), "-g", "1", "-f", "matroska", seg)
	if err != nil {
		return Truth{}, err
	}
	graph := baseVideo(seconds*FPS) + fmt.Sprintf(",split[b0][b1];"+
		"[b0]trim=end_frame=%d[p1];"+
		"[1:v]format=yuv420p,setpts=PTS-STARTPTS[p2];"+
		"[b1]trim=start_frame=%d,setpts=PTS-STARTPTS[p3];"+
		"[p1][p2][p3]concat=n=3:v=1:a=0,settb=1/%d,setpts=N[vout];", first, end, FPS) +
		baseAudio(seconds*SampleRate) + "[aout]"
	if err := g.encode(ctx, graph, 20, out, seg); err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: []Span{{Defect: DefectBlockiness, Start: frameTime(first), End: frameTime(end),
			Values: map[string]float64{"mpeg2_qscale": qscale}}},
		Notes: fmt.Sprintf("Base content (moving pan, temporal noise); frames %d..%d were encoded with mpeg2video -qscale:v %d -g 1 "+
			"(intra only, so every frame has 8x8 DCT blocks on the grid; no deblocking), decoded and spliced between the clean frames, and the whole clip encoded "+
			"with x264 crf 20, which keeps the block edges. x264 zones q=51 was tried first and was not blocky: "+
			"motion compensation copies the clean earlier picture and only newly revealed areas get blocks. "+
			"(FFmpeg 5.1 blockdetect reports a running mean, not a per-frame score, so it is no oracle here.)",
			first, end-1, qscale),
	}, nil
}

func buildSilence(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	first, end := sampleAt(4.0), sampleAt(7.0)
	graph := baseVideo(seconds*FPS) + "[vout];" + baseAudio(seconds*SampleRate) +
		fmt.Sprintf(",aeval='val(ch)*not(%s)':c=same[aout]", inSamples(first, end-1))
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: []Span{{Defect: DefectSilence, Start: sampleTime(first), End: sampleTime(end)}},
		Notes: fmt.Sprintf("Base content; audio samples %d..%d (%.3f..%.3f s) multiplied by 0 with a per-sample aeval "+
			"condition, so the PCM is digital zero exactly there.", first, end-1, sampleTime(first), sampleTime(end)),
	}, nil
}

func buildClipping(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	const gain = 20
	first, end := sampleAt(4.0), sampleAt(6.0)
	graph := baseVideo(seconds*FPS) + "[vout];" + baseAudio(seconds*SampleRate) +
		fmt.Sprintf(",aeval='if(%s,max(-1,min(1,%d*val(ch))),val(ch))':c=same[aout]", inSamples(first, end-1), gain)
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	pcm, err := decodeS16(ctx, g.ffmpeg, out)
	if err != nil {
		return Truth{}, err
	}
	share := fullScaleShare(pcm, first, end)
	return Truth{
		Defects: []Span{{Defect: DefectClipping, Start: sampleTime(first), End: sampleTime(end),
			Values: map[string]float64{"gain": gain, "full_scale_share": math.Round(share*1000) / 1000}}},
		Allow: []string{DefectLoudness},
		Notes: fmt.Sprintf("Base content; samples %d..%d (%.3f..%.3f s) multiplied by %d (%+.0f dB) and hard-clipped to [-1, 1] "+
			"(s16 -32768/+32767) with aeval: %.0f%% of those samples sit at full scale, in runs of several samples, flat tops "+
			"on most cycles of the 220 Hz tone (x10 left under 5%% of samples at full scale, in runs of about 3, hence x%d). "+
			"Loudness is allowed: the clipped section is far above -15 LUFS short-term.",
			first, end-1, sampleTime(first), sampleTime(end), gain, 20*math.Log10(gain), 100*share, gain),
	}, nil
}

func buildLoudness(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 13
	const gainDB = 14.0
	const limit = -15.0 // LUFS short-term
	first, end := sampleAt(4.0), sampleAt(9.0)
	gain := math.Pow(10, gainDB/20)
	graph := baseVideo(seconds*FPS) + "[vout];" + baseAudio(seconds*SampleRate) +
		fmt.Sprintf(",aeval='val(ch)*if(%s,%.9f,1)':c=same[aout]", inSamples(first, end-1), gain)
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	// The truth is the oracle's, not the injection times: short-term loudness
	// (3 s window) crosses -15 LUFS some time after the gain step.
	steps, err := ebur128Steps(ctx, g.ffmpeg, out)
	if err != nil {
		return Truth{}, err
	}
	start, stop, maxS := math.NaN(), math.NaN(), math.Inf(-1)
	for _, s := range steps {
		maxS = math.Max(maxS, s.ShortTerm)
		if math.IsNaN(start) && s.ShortTerm > limit {
			start = s.T
		} else if !math.IsNaN(start) && math.IsNaN(stop) && s.ShortTerm <= limit {
			stop = s.T
		}
	}
	if math.IsNaN(start) || math.IsNaN(stop) {
		return Truth{}, fmt.Errorf("ebur128 short-term never crossed %.0f LUFS both ways (start %v, end %v)", limit, start, stop)
	}
	pcm, err := decodeS16(ctx, g.ffmpeg, out)
	if err != nil {
		return Truth{}, err
	}
	peak := 0
	for _, v := range pcm {
		peak = max(peak, int(v), -int(v))
	}
	peakDB := math.Round(200*math.Log10(float64(peak)/32768)) / 10
	return Truth{
		Defects: []Span{{Defect: DefectLoudness, Start: start, End: stop, Tolerance: 0.15,
			Values: map[string]float64{"gain_db": gainDB, "inject_start": sampleTime(first), "inject_end": sampleTime(end),
				"max_short_term_lufs": maxS, "limit_lufs": limit, "peak_dbfs": peakDB}}},
		Notes: fmt.Sprintf("Base content; samples %d..%d (%.1f..%.1f s) amplified by +%.0f dB with aeval; the sample peak is "+
			"%.1f dBFS, so nothing clips. The span is the oracle's: FFmpeg ebur128 short-term loudness, per 100 ms step, "+
			"first exceeds %.0f LUFS at %.1f s and first falls back to <= %.0f LUFS at %.1f s (max %.1f LUFS); "+
			"the 3 s window delays both edges.",
			first, end-1, sampleTime(first), sampleTime(end), gainDB, peakDB, limit, start, limit, stop, maxS),
	}, nil
}

// avsyncRuns are the offset runs of the avsync clip: every flash whose nominal
// time (k+0.5 s) lies in [From, To] gets its beep OffsetMS early (> 0) or late (< 0).
var avsyncRuns = []struct {
	From, To float64
	OffsetMS int // flash time - beep time (ITU-R BT.1359 sign: audio early > 0)
}{
	{4.5, 7.5, -200},
	{9.5, 11.5, +80},
}

func buildAVSync(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 13
	const beepSamples = SampleRate * 40 / 1000 // 40 ms
	const beepAmp = 0.1                        // -20 dBFS
	// A flash every second at nominal k+0.5 s; 0.5 s falls between frames at
	// 25 fps, so the flash is frame 12+25k (shown 0.48..0.52 s, centred on 0.5 s).
	type flash struct{ frame, offsetMS int }
	var flashes []flash
	for k := 0; k < seconds; k++ {
		f := flash{frame: FPS*k + FPS/2}
		nominal := float64(k) + 0.5
		for _, r := range avsyncRuns {
			if nominal >= r.From && nominal <= r.To {
				f.offsetMS = r.OffsetMS
			}
		}
		flashes = append(flashes, f)
	}
	var enable, beeps, runs []string
	var spans []Span
	for i, f := range flashes {
		enable = append(enable, fmt.Sprintf("eq(n,%d)", f.frame))
		s := f.frame*SampleRate/FPS - f.offsetMS*SampleRate/1000
		beeps = append(beeps, fmt.Sprintf("%s*sin(2*PI*1000*(n-%d)/%d)", inSamples(s, s+beepSamples-1), s, SampleRate))
		// Spans run from the first flash of an offset run to the next in-sync flash.
		if f.offsetMS != 0 && (i == 0 || flashes[i-1].offsetMS != f.offsetMS) {
			spans = append(spans, Span{Defect: DefectAVSync, Start: frameTime(f.frame), Tolerance: VideoTolerance,
				Values: map[string]float64{"offset_ms": float64(f.offsetMS)}})
		}
		if f.offsetMS != 0 && (i+1 == len(flashes) || flashes[i+1].offsetMS != f.offsetMS) {
			runs = append(runs, fmt.Sprintf("flashes %.2f..%.2f s: beep %+d ms", spans[len(spans)-1].Start, frameTime(f.frame), f.offsetMS))
		}
		if f.offsetMS == 0 && len(spans) > 0 && spans[len(spans)-1].End == 0 {
			spans[len(spans)-1].End = frameTime(f.frame)
		}
	}
	if len(spans) == 0 || spans[len(spans)-1].End == 0 {
		return Truth{}, errors.New("an offset run has no in-sync flash after it")
	}
	beep := fmt.Sprintf("%g*(%s)", beepAmp, strings.Join(beeps, "+"))
	frames := seconds * FPS
	graph := fmt.Sprintf("color=c=0x6d6d6d:s=%dx%d:r=%d,format=yuv420p,trim=end_frame=%d,settb=1/%d,setpts=N,"+
		"drawbox=x=0:y=0:w=iw:h=ih:t=fill:c=white:enable='%s'[vout];", Width, Height, FPS, frames, FPS, strings.Join(enable, "+")) +
		quietAudio(seconds*SampleRate) + "[floor];" +
		fmt.Sprintf("aevalsrc='%[1]s|%[1]s':s=%[2]d:c=stereo:d=%[3]d,atrim=end_sample=%[4]d[beep];", beep, SampleRate, seconds+1, seconds*SampleRate) +
		"[floor][beep]amix=inputs=2:normalize=0[aout]"
	if err := g.encodeInputs(ctx, nil, graph, 20, out); err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: spans,
		Allow:   []string{DefectLoudness, DefectFreeze},
		Notes: fmt.Sprintf("Sync pattern: static mid-grey (Y=110) with one full-white frame (Y=235) at frames %d+%dk "+
			"(t = %.2f + k s: 0.5 s is not on the 25 fps grid) and a %d ms 1 kHz beep at %.0f dBFS (peak %g) per flash, "+
			"over pink noise at -50 dBFS RMS so silence never fires. Offset = flash time - beep time (BT.1359: audio early > 0): "+
			"%s; the other beeps start with their flash. Each span runs from the first offset flash to the next in-sync flash. "+
			"Allowed: loudness (a test pattern, not programme: about -34 LUFS short-term, -47 LUFS momentary between beeps) and freeze "+
			"(the grey is static between flashes, one second apart).",
			FPS/2, FPS, frameTime(FPS/2), beepSamples*1000/SampleRate, 20*math.Log10(beepAmp), beepAmp, strings.Join(runs, "; ")),
	}, nil
}

func buildCleanDark(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	const objW, objH = 56, 40
	graph := stillVideo(seconds*FPS) + "," + panCrop + ",split[c][o];" +
		// Night scene: the canvas squeezed into Y 18..31, desaturated, light noise.
		"[c]lutyuv=y='16+(val-16)*0.08':u='128+(val-128)*0.3':v='128+(val-128)*0.3',noise=c0s=3:c0f=t+u[bg];" +
		fmt.Sprintf("[o]crop=%d:%d:292:160,lutyuv=y='min(235,val+70)'[obj];", objW, objH) +
		"[bg][obj]overlay=x='292+150*sin(2*PI*t/6)':y='160+60*sin(2*PI*t/4)':eval=frame[vout];" +
		baseAudio(seconds*SampleRate) + "[aout]"
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	iv, err := ffmpegIntervals(ctx, g.ffmpeg, out, "-vf", "blackdetect")
	if err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: []Span{},
		Notes: fmt.Sprintf("Dark but not black: panning night-like background (canvas squeezed to Y 18..31, plus light noise) "+
			"with a bright %dx%d textured patch (Y about 110-235, %.2f%% of the frame) moving around the centre. "+
			"No defect: a viewer sees a picture. FFmpeg blackdetect (defaults d=2, pic_th=0.98) reports black %s "+
			"on it, a false alarm a good monitor should not repeat.",
			objW, objH, 100*float64(objW*objH)/float64(Width*Height), describe(iv)),
	}, nil
}

func buildCleanStaticNoisy(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	graph := stillVideo(seconds*FPS) + ",crop=640:360:480:270,noise=alls=10:allf=t[vout];" +
		baseAudio(seconds*SampleRate) + "[aout]"
	if err := g.encode(ctx, graph, 18, out); err != nil {
		return Truth{}, err
	}
	iv, err := ffmpegIntervals(ctx, g.ffmpeg, out, "-vf", "freezedetect")
	if err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: []Span{},
		Notes: fmt.Sprintf("A still picture (one crop of the canvas) with strong Gaussian temporal noise (noise=alls=10:allf=t, "+
			"added after the still is made) at crf 18 so the noise survives: a static shot with sensor noise, not a freeze. "+
			"FFmpeg freezedetect (defaults) reports %s.", describe(iv)),
	}, nil
}

func buildCleanQuiet(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	graph := baseVideo(seconds*FPS) + "[vout];" + quietAudio(seconds*SampleRate) + "[aout]"
	if err := g.encode(ctx, graph, 20, out); err != nil {
		return Truth{}, err
	}
	iv, err := ffmpegIntervals(ctx, g.ffmpeg, out, "-af", "silencedetect=n=-60dB:d=2")
	if err != nil {
		return Truth{}, err
	}
	return Truth{
		Defects: []Span{},
		Allow:   []string{DefectLoudness},
		Notes: fmt.Sprintf("Base video; audio is quiet ambience only: stereo pink noise at about -50 dBFS RMS (peaks about -37 dBFS), "+
			"not silence at a -60 dB threshold (FFmpeg silencedetect=n=-60dB:d=2 reports %s). Loudness is allowed: "+
			"about -50 LUFS is legitimately too quiet.", describe(iv)),
	}, nil
}

func buildBroadcastTS(ctx context.Context, g *generator, out string) (Truth, error) {
	const seconds = 12
	const aacDelay = 1024 // samples of encoder priming in FFmpeg's AAC encoder
	bFirst, bEnd := frameAt(3.0), frameAt(5.0)
	sFirst, sEnd := sampleAt(7.0), sampleAt(10.0) // 3 s: AAC smears the edges, a 2 s run would decode shorter than 2 s
	canvas, err := g.canvasPNG(ctx)
	if err != nil {
		return Truth{}, err
	}
	// MPEG-TS cannot signal AAC priming, so a decoder plays it: drop the first
	// 1024 content samples (atrim keeps their timestamps) so that the priming
	// takes their place, the first audio packet has the first video frame's
	// timestamp, and content sample n still plays at n/48000 s.
	graph := baseVideo(seconds*FPS) +
		fmt.Sprintf(",drawbox=x=0:y=0:w=iw:h=ih:t=fill:c=black:enable='between(n,%d,%d)'[vout];", bFirst, bEnd-1) +
		baseAudio(seconds*SampleRate) +
		fmt.Sprintf(",aeval='val(ch)*not(%s)':c=same,atrim=start_sample=%d[aout]", inSamples(sFirst, sEnd-1), aacDelay)
	args := append([]string{"-i", canvas, "-filter_complex", graph}, x264Args(20)...)
	err = g.run(ctx, append(args, "-c:a", "aac", "-b:a", "128k", "-ar", strconv.Itoa(SampleRate),
		"-ac", strconv.Itoa(Channels), "-f", "mpegts", out)...)
	if err != nil {
		return Truth{}, err
	}
	return Truth{
		AudioCodec: "aac",
		Defects: []Span{
			{Defect: DefectBlack, Start: frameTime(bFirst), End: frameTime(bEnd)},
			{Defect: DefectSilence, Start: sampleTime(sFirst), End: sampleTime(sEnd), Tolerance: 0.05},
		},
		Notes: fmt.Sprintf("MPEG-TS, H.264 + AAC-LC 128 kb/s 48 kHz stereo, base content; frames %d..%d black (drawbox), "+
			"samples %d..%d zeroed before AAC encoding (the decoded silence edges smear by about 5 ms, so audio spans "+
			"have tolerance 0.05 s; the span is 3 s because the decoded run of a 2 s one is slightly under 2.0 s, below the default minimum). "+
			"AAC priming: FFmpeg's encoder emits %d priming samples that MPEG-TS cannot signal, so a decoder plays them; "+
			"the first %d content samples are dropped before encoding so that the priming stands in for them: the first audio "+
			"and video timestamps are equal (both 1.48 s: the muxer's 1.4 s delay plus x264's 2-frame B-frame reorder), time 0 "+
			"is the first timestamp of the input, and content time is unshifted.", bFirst, bEnd-1, sFirst, sEnd-1, aacDelay, aacDelay),
	}, nil
}
