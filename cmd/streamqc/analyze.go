package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/pprof"
	"slices"
	"strings"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/analyze"
	"github.com/streamqc/streamqc/media"
)

type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

func analyzeCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("analyze", "[flags] INPUT", `Analyzes one input to its end (or --duration) and prints every alarm raised
and cleared, then a summary. INPUT is a file or any FFmpeg URL: udp://, rtp://,
srt://, rtmp://, rtsp://, http(s):// (HLS). Exit 0: analyzed (defects or not);
1: the input could not be analyzed; 2: a usage error.`, stdout, stderr)
	format := fs.String("format", "text", "output format: text or json")
	hwaccel := fs.String("hwaccel", "none", "hardware decoding: auto, none, cuda, vaapi or qsv")
	videoIdx := fs.Int("video-stream", media.TrackFirst, "video stream index (-1 first, -2 none)")
	audioIdx := fs.Int("audio-stream", media.TrackFirst, "audio stream index (-1 first, -2 none)")
	threads := fs.Int("threads", 1, "decoder threads (slice threads: a damaged input gives the same events every run)")
	realtime := fs.Bool("realtime", false, "pace a file like a live source")
	duration := fs.Float64("duration", 0, "stop after this many seconds of media (0: to the end)")
	openTimeout := fs.Duration("open-timeout", 10*time.Second, "give up opening an input that does not answer")
	id := fs.String("id", "", "stream id in events (default: the input's file name)")
	cfgFile := fs.String("config", "", "detector settings, a JSON file merged over the defaults")
	var sets multiFlag
	fs.Var(&sets, "set", "one detector setting, e.g. black.min_duration=3 (repeatable)")
	verbose := fs.Bool("v", false, "log decoder choices and progress to stderr")
	cpuprofile := fs.String("cpuprofile", "", "write a Go CPU profile to this file")
	features := fs.String("features", "", "write every frame's video features to this CSV file (for calibration)")
	thumbDir := fs.String("thumbnails", "", "write each raised alarm's picture to this directory as a 320-pixel JPEG")
	if code, done := fs.parse(args); done {
		return code
	}
	switch {
	case len(fs.operands) == 0:
		return fs.fail("missing INPUT")
	case len(fs.operands) > 1:
		return fs.fail("one argument only, got %q and %q", fs.operands[0], fs.operands[1])
	case *format != "text" && *format != "json":
		return fs.fail("--format %q: want text or json", *format)
	case !slices.Contains([]string{"auto", "none", "cuda", "vaapi", "qsv"}, *hwaccel):
		return fs.fail("--hwaccel %q: want auto, none, cuda, vaapi or qsv", *hwaccel)
	}
	input := fs.operands[0]
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))
	slog.SetDefault(logger)
	dcfg, err := config.Detectors(*cfgFile, sets)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc analyze: %v\n", err)
		return 2
	}
	o := analyze.Options{
		Media: media.Options{URL: input, HWAccel: *hwaccel, Video: *videoIdx, Audio: *audioIdx, Threads: *threads,
			Realtime: *realtime, Duration: *duration, OpenTimeout: *openTimeout},
		Config: dcfg, StreamID: *id, Format: *format, Color: isTerminal(stdout), Logger: logger, Accel: accelerator(),
		Thumbnails: *thumbDir,
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintf(stderr, "streamqc analyze: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "streamqc analyze: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}
	if *features != "" {
		f, err := os.Create(*features)
		if err != nil {
			fmt.Fprintf(stderr, "streamqc analyze: %v\n", err)
			return 2
		}
		defer f.Close()
		o.Features = f
	}
	if _, err := analyze.Run(ctx, o, stdout); err != nil {
		fmt.Fprintf(stderr, "streamqc analyze: %v\n", err)
		return 1
	}
	return 0
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
