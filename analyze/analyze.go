// Package analyze runs one input through decode and detection to its end
// and writes the events and a summary: the `streamqc analyze` command.
package analyze

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"path"
	"strings"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/thumbnail"
	"github.com/streamqc/streamqc/transport"
)

// Options for one analysis.
type Options struct {
	Media    media.Options
	Config   detectors.Config
	StreamID string
	// Format is "text" or "json".
	Format string
	// Color enables ANSI colors in text output.
	Color  bool
	Logger *slog.Logger
	// Features, when set, receives every frame's video features as CSV.
	Features io.Writer
	// Accel, when set (the cuda build), measures NVDEC frames on the GPU
	// they were decoded on, in place.
	Accel detectors.Accelerator
	// Thumbnails, when set, is a directory where each raised alarm's
	// picture is written as a JPEG (thumbnails.go).
	Thumbnails string
}

// Summary is the last line of an analysis.
type Summary struct {
	Frames       int
	AudioBlocks  int
	Duration     float64 // media seconds analyzed
	Elapsed      float64 // wall seconds
	Decoder      string
	AudioDecoder string
	Format       string
	Reconnects   int
	DecodeErrors int
	// CorruptPackets counts packets the demuxer flagged corrupt.
	CorruptPackets int
	Integrated     float64
	LRA            float64
	Alarms         map[string]*Tally
	// TR101290 counts the transport errors per indicator ("1.4
	// continuity_count_error": 3); nil when the input was not checked as MPEG-TS.
	TR101290 map[string]int64
}

// Tally counts the alarms of one defect.
type Tally struct {
	Count   int
	Total   float64 // seconds under alarm
	Longest float64
}

// StreamID derives a readable stream id from a URL: its last path element,
// never its credentials or query.
func StreamID(u string) string {
	s := u
	if i := strings.Index(s, "://"); i >= 0 {
		s = s[i+3:]
		if j := strings.IndexAny(s, "?#"); j >= 0 {
			s = s[:j]
		}
		if j := strings.LastIndex(s, "@"); j >= 0 {
			s = s[j+1:]
		}
	}
	if b := path.Base(strings.TrimRight(s, "/")); b != "." && b != "/" && b != "" {
		return b
	}
	return "input"
}

// Run analyzes the input and writes events as they happen, then the summary.
func Run(ctx context.Context, o Options, w io.Writer) (Summary, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	o.Media.Logger = o.Logger
	if o.StreamID == "" {
		o.StreamID = StreamID(o.Media.URL)
	}
	out, err := newWriter(o.Format, w, o.StreamID, o.Color)
	if err != nil {
		return Summary{}, err
	}
	sum := Summary{Alarms: map[string]*Tally{}}
	var th *thumbs
	if o.Thumbnails != "" {
		if th, err = newThumbs(o.Thumbnails, o.StreamID, o.Logger); err != nil {
			return Summary{}, err
		}
	}
	cause := detectors.CauseRecovered // until the input ends
	emit := func(e detectors.Event) {
		if th != nil {
			th.shoot(e)
		}
		if e.State == detectors.Cleared {
			if e.Cause == "" {
				e.Cause = cause
			}
			t := sum.Alarms[e.Defect]
			if t == nil {
				t = &Tally{}
				sum.Alarms[e.Defect] = t
			}
			t.Count++
			t.Total += e.Duration()
			t.Longest = math.Max(t.Longest, e.Duration())
		}
		out.event(e)
	}
	var backend detectors.VideoBackend
	if n, ok := detectors.AcceleratedDevice(o.Media.HWAccel, o.Media.HWDevice); ok && o.Accel != nil {
		b, release, err := o.Accel.Backend(n, o.Config)
		if err != nil {
			o.Logger.Warn("GPU detectors unavailable, measuring on the CPU", "err", err)
		} else {
			defer release()
			backend, o.Media.DeviceFrames = b, true
		}
	}
	an, err := detectors.NewAnalyzer(o.Config, backend, emit)
	if err != nil {
		return Summary{}, err
	}
	var sink media.Sink = an
	if o.Features != nil {
		sink = newFeatureLog(an, o.Features)
	}
	if th != nil {
		sink = &thumbSink{Analyzer: an, video: sink.Video, t: th}
		if d, ok := backend.(thumbnail.DeviceScaler); ok {
			th.cam.SetScaler(d)
		}
	}
	start := time.Now()
	info, err := media.Run(ctx, o.Media, sink)
	if th != nil {
		defer th.close()
	}
	if err != nil {
		return Summary{}, err
	}
	if info.Frames == 0 && info.AudioBlocks == 0 {
		return Summary{}, fmt.Errorf("%w: %s: nothing could be decoded", media.ErrInput, o.StreamID)
	}
	end := info.End
	if o.Media.Duration > 0 {
		end = math.Min(end, o.Media.Duration)
	}
	cause = detectors.CauseInputEnded
	if ctx.Err() != nil {
		cause = detectors.CauseStreamStopped
	}
	an.Flush(end)
	st := an.Stats()
	sum.Frames, sum.AudioBlocks = info.Frames, info.AudioBlocks
	sum.Duration, sum.Elapsed = end, time.Since(start).Seconds()
	sum.Decoder, sum.AudioDecoder, sum.Format = info.VideoDecoder, info.AudioDecoder, info.Format
	sum.Reconnects, sum.DecodeErrors, sum.CorruptPackets = info.Reconnects, st.DecodeErrors, st.CorruptPackets
	sum.Integrated, sum.LRA = st.Integrated, st.LRA
	if info.Transport {
		sum.TR101290 = make(map[string]int64, len(st.TR101290))
		for i, n := range st.TR101290 {
			sum.TR101290[transport.Indicator(i).String()] = n
		}
	}
	if err := out.summary(sum); err != nil {
		return sum, fmt.Errorf("write summary: %w", err)
	}
	if out.err != nil {
		return sum, fmt.Errorf("write events: %w", out.err)
	}
	return sum, nil
}
