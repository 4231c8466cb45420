// Command quality scores streamqc's detectors and FFmpeg's detection filters
// on the quality corpus (testdata/clips EnsureCorpus, both splits): per class
// recall, onset error, and false alarms per hour of clean material. FFmpeg's
// score-only filters (blockdetect, blurdetect, astats) get thresholds fitted
// on the tune split (the lowest that raise nothing on its clean material),
// then applied unchanged to the held-back split, as streamqc's defaults are.
//
//	go run ./testdata/quality [-media ../shared/media] [-v] [-gen]
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/streamqc/streamqc/analyze"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/testdata/clips"
)

func main() {
	mediaDir := flag.String("media", "../shared/media", "real clips folder (synthetic sources when absent)")
	verbose := flag.Bool("v", false, "print every clip's alarms")
	genOnly := flag.Bool("gen", false, "only generate (or find) the corpus and print its files")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if *genOnly {
		for _, split := range []string{clips.Tune, clips.Held} {
			truths, err := clips.EnsureCorpus(ctx, split, *mediaDir)
			if err != nil {
				fmt.Fprintln(os.Stderr, "quality:", err)
				os.Exit(1)
			}
			for _, t := range truths {
				fmt.Println(t.File)
			}
		}
		return
	}
	if err := run(ctx, *mediaDir, *verbose, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "quality:", err)
		os.Exit(1)
	}
}

// alarm is one [Start, End) alarm of a defect.
type alarm struct {
	Defect     string
	Start, End float64
}

// clipResult is what both monitors said about one clip.
type clipResult struct {
	truth   clips.Truth
	ours    []alarm
	peer    []alarm    // FFmpeg's event filters (freeze, black, silence)
	scores  peerSeries // FFmpeg's per-frame and per-window scores
	elapsed [2]float64 // seconds: streamqc, ffmpeg
}

func run(ctx context.Context, mediaDir string, verbose bool, w io.Writer) error {
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		return clips.ErrNoFFmpeg
	}
	if _, err := os.Stat(mediaDir); err != nil {
		fmt.Fprintf(w, "note: %s absent: corpus made from synthetic sources only\n", mediaDir)
	}
	start := time.Now()
	results := map[string][]clipResult{}
	for _, split := range []string{clips.Tune, clips.Held} {
		truths, err := clips.EnsureCorpus(ctx, split, mediaDir)
		if err != nil {
			return err
		}
		for _, tr := range truths {
			r := clipResult{truth: tr}
			t0 := time.Now()
			if r.ours, err = ours(ctx, tr.File); err != nil {
				return fmt.Errorf("%s: %w", tr.Name, err)
			}
			t1 := time.Now()
			if r.peer, r.scores, err = peer(ctx, tr.File); err != nil {
				return fmt.Errorf("%s: ffmpeg: %w", tr.Name, err)
			}
			r.elapsed = [2]float64{t1.Sub(t0).Seconds(), time.Since(t1).Seconds()}
			results[split] = append(results[split], r)
		}
	}
	th := fitPeer(results[clips.Tune])
	for _, split := range []string{clips.Tune, clips.Held} {
		for i := range results[split] {
			results[split][i].peer = append(results[split][i].peer, th.alarms(results[split][i].scores)...)
		}
	}
	fmt.Fprintf(w, "FFmpeg score thresholds fitted on the tune split: blockdetect >= %.3f, blurdetect >= %.3f, astats peak >= %.3f dBFS (each for 0.5 s)\n\n",
		th.block, th.blur, th.peakDB)
	for _, split := range []string{clips.Tune, clips.Held} {
		fmt.Fprintf(w, "== %s split (%d clips)\n", split, len(results[split]))
		table(w, results[split])
		if verbose {
			for _, r := range results[split] {
				fmt.Fprintf(w, "  %s: truth %s\n    streamqc %s\n    ffmpeg   %s\n", r.truth.Name, fmtSpans(r.truth.Defects), fmtAlarms(r.ours), fmtAlarms(r.peer))
			}
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "make quality took %.0f s\n", time.Since(start).Seconds())
	return nil
}

// ours runs streamqc's analyzer with default settings on file.
func ours(ctx context.Context, file string) ([]alarm, error) {
	var out bytes.Buffer
	o := analyze.Options{
		Media:  media.Options{URL: file, HWAccel: "none", Video: media.TrackFirst, Audio: media.TrackFirst},
		Config: detectors.DefaultConfig(), Format: "json", Logger: slog.New(slog.DiscardHandler),
	}
	if _, err := analyze.Run(ctx, o, &out); err != nil {
		return nil, err
	}
	var as []alarm
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		var e struct {
			State, Defect string
			Start         float64
			End           *float64
		}
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			return nil, fmt.Errorf("analyze output %q: %w", line, err)
		}
		if e.State == "cleared" && e.End != nil {
			as = append(as, alarm{e.Defect, e.Start, *e.End})
		}
	}
	return as, nil
}

// --- FFmpeg -----------------------------------------------------------------

// peerSeries are FFmpeg's scores: per frame (blockdetect, blurdetect) and per
// 10 ms audio window (astats peak level, dBFS).
type peerSeries struct {
	t, block, blur []float64
	at, peak       []float64
}

var (
	reBlackIv  = regexp.MustCompile(`black_start:\s*([-0-9.e]+)\s+black_end:\s*([-0-9.e]+)`)
	reFreezeS  = regexp.MustCompile(`freeze_start:\s*([-0-9.e]+)`)
	reFreezeE  = regexp.MustCompile(`freeze_end:\s*([-0-9.e]+)`)
	reSilenceS = regexp.MustCompile(`silence_start:\s*([-0-9.e]+)`)
	reSilenceE = regexp.MustCompile(`silence_end:\s*([-0-9.e]+)`)
	rePTS      = regexp.MustCompile(`pts_time:([-0-9.e]+)`)
	reKV       = regexp.MustCompile(`^(lavfi\.[A-Za-z_.]+)=([-0-9.e+a-z]+)`)
)

// peer runs FFmpeg's detection filters on file in one decode.
func peer(ctx context.Context, file string) ([]alarm, peerSeries, error) {
	dir, err := os.MkdirTemp("", "quality-")
	if err != nil {
		return nil, peerSeries{}, err
	}
	defer os.RemoveAll(dir)
	vm, am := filepath.Join(dir, "v.txt"), filepath.Join(dir, "a.txt")
	cmd := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-v", "info", "-i", file,
		"-vf", "blackdetect=d=2:pix_th=0.1,freezedetect=n=-60dB:d=2,blockdetect,blurdetect,metadata=print:file="+vm,
		"-af", "silencedetect=n=-60dB:d=2,asetnsamples=n=480,astats=metadata=1:reset=1:measure_perchannel=none,"+
			"ametadata=print:key=lavfi.astats.Overall.Peak_level:file="+am,
		"-f", "null", "-")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return nil, peerSeries{}, fmt.Errorf("%w: %s", err, tail(stderr.String()))
	}
	log := stderr.String()
	var as []alarm
	for _, m := range reBlackIv.FindAllStringSubmatch(log, -1) {
		as = append(as, alarm{detectors.Black, atof(m[1]), atof(m[2])})
	}
	as = append(as, pairs(detectors.Freeze, reFreezeS.FindAllStringSubmatch(log, -1), reFreezeE.FindAllStringSubmatch(log, -1))...)
	as = append(as, pairs(detectors.Silence, reSilenceS.FindAllStringSubmatch(log, -1), reSilenceE.FindAllStringSubmatch(log, -1))...)
	var s peerSeries
	if err := readMeta(vm, func(t float64, k string, v float64) {
		switch k {
		case "lavfi.block":
			s.t, s.block = append(s.t, t), append(s.block, v)
		case "lavfi.blur":
			s.blur = append(s.blur, v)
		}
	}); err != nil {
		return nil, s, err
	}
	if err := readMeta(am, func(t float64, k string, v float64) {
		s.at, s.peak = append(s.at, t), append(s.peak, v)
	}); err != nil {
		return nil, s, err
	}
	if len(s.blur) != len(s.block) {
		return nil, s, fmt.Errorf("blockdetect gave %d scores, blurdetect %d", len(s.block), len(s.blur))
	}
	return as, s, nil
}

func readMeta(file string, f func(t float64, key string, v float64)) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	t := math.NaN()
	for _, line := range strings.Split(string(b), "\n") {
		if m := rePTS.FindStringSubmatch(line); m != nil {
			t = atof(m[1])
		} else if m := reKV.FindStringSubmatch(line); m != nil && !math.IsNaN(t) {
			f(t, m[1], atof(m[2]))
		}
	}
	return nil
}

func pairs(defect string, starts, ends [][]string) []alarm {
	var out []alarm
	for i, s := range starts {
		a := alarm{defect, atof(s[1]), math.Inf(1)}
		if i < len(ends) {
			a.End = atof(ends[i][1])
		}
		out = append(out, a)
	}
	return out
}

func atof(s string) float64 {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return math.NaN()
	}
	return f
}

func tail(s string) string {
	if len(s) > 1500 {
		return "..." + s[len(s)-1500:]
	}
	return s
}

// peerThresholds are the fitted thresholds of FFmpeg's score-only filters.
type peerThresholds struct{ block, blur, peakDB float64 }

// fitPeer picks, for each score, the lowest threshold that raises no alarm
// (the same 0.5 s rule as alarms) on the clean stretches of the tune split,
// so that FFmpeg's filters are tuned the way streamqc's are.
func fitPeer(rs []clipResult) peerThresholds {
	clean := func(r clipResult, t float64) bool {
		for _, sp := range r.truth.Defects {
			if t >= sp.Start-0.5 && t < sp.End+0.5 {
				return false
			}
		}
		return true
	}
	fit := func(series func(r clipResult) (t, v []float64)) float64 {
		var masked [][2][]float64
		var cand []float64
		for _, r := range rs {
			t, v := series(r)
			m := make([]float64, len(v))
			for i := range v {
				m[i] = math.Inf(-1)
				if i < len(t) && clean(r, t[i]) && !math.IsNaN(v[i]) {
					m[i] = v[i]
					cand = append(cand, v[i])
				}
			}
			masked = append(masked, [2][]float64{t, m})
		}
		sort.Float64s(cand)
		quiet := func(th float64) bool {
			for _, tv := range masked {
				if len(runs("", tv[0], tv[1], th)) > 0 {
					return false
				}
			}
			return true
		}
		// The lowest quiet candidate (quiet is monotonic in th), just above it.
		i := sort.Search(len(cand), func(i int) bool { return quiet(cand[i]) })
		if i == len(cand) {
			if len(cand) == 0 {
				return math.Inf(1)
			}
			return math.Nextafter(cand[len(cand)-1], math.Inf(1))
		}
		if i > 0 {
			return math.Nextafter(cand[i-1], math.Inf(1))
		}
		return math.Inf(-1)
	}
	return peerThresholds{
		block:  fit(func(r clipResult) ([]float64, []float64) { return r.scores.t, r.scores.block }),
		blur:   fit(func(r clipResult) ([]float64, []float64) { return r.scores.t, r.scores.blur }),
		peakDB: fit(func(r clipResult) ([]float64, []float64) { return r.scores.at, r.scores.peak }),
	}
}

// alarms turns the scores into alarms: at or above the threshold for 0.5 s
// (gaps under 0.1 s bridged), as streamqc's decisions do.
func (th peerThresholds) alarms(s peerSeries) []alarm {
	var out []alarm
	out = append(out, runs(detectors.Blockiness, s.t, s.block, th.block)...)
	out = append(out, runs("blur", s.t, s.blur, th.blur)...)
	out = append(out, runs(detectors.Clipping, s.at, s.peak, th.peakDB)...)
	return out
}

func runs(defect string, t, v []float64, th float64) []alarm {
	var out []alarm
	in, start, last := false, 0.0, 0.0
	for i := range t {
		if i < len(v) && v[i] >= th {
			if !in || t[i]-last > 0.1 {
				if in && last-start >= 0.5 {
					out = append(out, alarm{defect, start, last})
				}
				in, start = true, t[i]
			}
			last = t[i] + 0.04
		}
	}
	if in && last-start >= 0.5 {
		out = append(out, alarm{defect, start, last})
	}
	return out
}

// --- scoring ----------------------------------------------------------------

// accepted names the alarms that find a span of each class, per monitor.
func accepted(class, defect string, ffmpeg bool) []string {
	switch class {
	case clips.ClassStarved:
		if ffmpeg {
			return []string{detectors.Blockiness, "blur"}
		}
		return []string{clips.DefectDetailLoss, detectors.Blockiness}
	}
	return []string{defect}
}

// spanClass is the table row of a span: the clip's class, or the defect for
// the black+silence clip.
func spanClass(tr clips.Truth, sp clips.Span) string {
	c := clips.CorpusClass(tr.Name)
	if c == clips.ClassBlack {
		return sp.Defect
	}
	return c
}

type tally struct {
	spans, found, onTime int
	onset                []float64 // absolute onset errors (s) of found spans
}

func table(w io.Writer, rs []clipResult) {
	type key struct{ class string }
	classes := []string{clips.ClassStarved, clips.ClassFreezeGrain, clips.ClassFreezeRecoded, clips.ClassClipLossy, clips.ClassBlack, clips.ClassSilence}
	our, their := map[string]*tally{}, map[string]*tally{}
	for _, c := range classes {
		our[c], their[c] = &tally{}, &tally{}
	}
	var cleanSec float64
	falseOurs, falsePeer := 0, 0
	var falseNames []string
	for _, r := range rs {
		cleanSec += r.truth.Duration
		for _, sp := range r.truth.Defects {
			cleanSec -= sp.End - sp.Start
			c := spanClass(r.truth, sp)
			score(our[c], sp, r.ours, accepted(clips.CorpusClass(r.truth.Name), sp.Defect, false))
			score(their[c], sp, r.peer, accepted(clips.CorpusClass(r.truth.Name), sp.Defect, true))
		}
		for _, a := range r.ours {
			if isFalse(r.truth, a, false) {
				falseOurs++
				falseNames = append(falseNames, fmt.Sprintf("streamqc %s on %s %.2f-%.2f", a.Defect, r.truth.Name, a.Start, a.End))
			}
		}
		for _, a := range r.peer {
			if isFalse(r.truth, a, true) {
				falsePeer++
				falseNames = append(falseNames, fmt.Sprintf("ffmpeg %s on %s %.2f-%.2f", a.Defect, r.truth.Name, a.Start, a.End))
			}
		}
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "class\tstreamqc found\tonset ok\tonset err median/max\tFFmpeg found\tonset ok\tonset err median/max")
	for _, c := range classes {
		o, p := our[c], their[c]
		if o.spans == 0 {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d/%d\t%s\t%d/%d\t%d/%d\t%s\n", c, o.found, o.spans, o.onTime, o.spans, errs(o.onset),
			p.found, p.spans, p.onTime, p.spans, errs(p.onset))
	}
	h := cleanSec / 3600
	fmt.Fprintf(tw, "false alarms\t%d\t(%.0f/h)\t\t%d\t(%.0f/h)\t\n", falseOurs, float64(falseOurs)/h, falsePeer, float64(falsePeer)/h)
	tw.Flush()
	fmt.Fprintf(w, "clean material: %.0f s; tolerance: one frame (video), 20 ms (audio)\n", cleanSec)
	for _, n := range falseNames {
		fmt.Fprintln(w, "  false:", n)
	}
}

func errs(v []float64) string {
	if len(v) == 0 {
		return "-"
	}
	s := slices.Clone(v)
	sort.Float64s(s)
	return fmt.Sprintf("%.0f/%.0f ms", 1000*s[len(s)/2], 1000*s[len(s)-1])
}

// score finds the earliest alarm of an accepted defect overlapping sp.
func score(t *tally, sp clips.Span, as []alarm, names []string) {
	t.spans++
	best := -1
	for i, a := range as {
		if slices.Contains(names, a.Defect) && a.Start < sp.End && a.End > sp.Start && (best < 0 || a.Start < as[best].Start) {
			best = i
		}
	}
	if best < 0 {
		return
	}
	t.found++
	e := math.Abs(as[best].Start - sp.Start)
	t.onset = append(t.onset, e)
	if e <= sp.Tol()+1e-3 {
		t.onTime++
	}
}

// isFalse: an alarm that overlaps no span it could find and is not allowed.
func isFalse(tr clips.Truth, a alarm, ffmpeg bool) bool {
	if tr.Allows(a.Defect) && !(ffmpeg && a.Defect == "blur") {
		return false
	}
	for _, sp := range tr.Defects {
		if slices.Contains(accepted(clips.CorpusClass(tr.Name), sp.Defect, ffmpeg), a.Defect) && a.Start < sp.End+0.5 && a.End > sp.Start-0.5 {
			return false
		}
	}
	return true
}

func fmtSpans(sp []clips.Span) string {
	var p []string
	for _, s := range sp {
		p = append(p, fmt.Sprintf("%s %.2f-%.2f", s.Defect, s.Start, s.End))
	}
	return "[" + strings.Join(p, ", ") + "]"
}

func fmtAlarms(as []alarm) string {
	var p []string
	for _, a := range as {
		p = append(p, fmt.Sprintf("%s %.2f-%.2f", a.Defect, a.Start, a.End))
	}
	return "[" + strings.Join(p, ", ") + "]"
}
