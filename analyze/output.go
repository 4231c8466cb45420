package analyze

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/transport"
)

// writer prints events and the summary in one of the output formats.
type writer struct {
	json   bool
	color  bool
	w      io.Writer
	stream string
	err    error // first write error; later writes are skipped
}

func newWriter(format string, w io.Writer, stream string, color bool) (*writer, error) {
	switch format {
	case "", "text":
		return &writer{w: w, stream: stream, color: color}, nil
	case "json":
		return &writer{json: true, w: w, stream: stream}, nil
	}
	return nil, fmt.Errorf("format %q: want text or json", format)
}

// ms rounds seconds to the millisecond.
func ms(v float64) float64 { return math.Round(v*1000) / 1000 }

// NewJSONEvent converts an event to its json form.
func NewJSONEvent(stream string, e detectors.Event) schema.DefectEvent {
	j := schema.DefectEvent{Type: "defect", Stream: stream, Defect: e.Defect, State: string(e.State), Start: ms(e.Start), Reason: e.Reason, Values: e.Values}
	if e.State == detectors.Cleared {
		end, d := ms(e.End), ms(e.End-e.Start)
		j.End, j.Duration = &end, &d
	}
	return j
}

func (w *writer) write(b []byte) {
	if w.err == nil {
		_, w.err = w.w.Write(b)
	}
}

func (w *writer) event(e detectors.Event) {
	if w.json {
		b, err := json.Marshal(NewJSONEvent(w.stream, e))
		if err != nil {
			w.err = err
			return
		}
		w.write(append(b, '\n'))
		return
	}
	var sb strings.Builder
	state, on, off := strings.ToUpper(string(e.State)), "", ""
	if w.color {
		on, off = "\x1b[1;31m", "\x1b[0m"
		if e.State == detectors.Cleared {
			on = "\x1b[32m"
		}
	}
	fmt.Fprintf(&sb, "%s  %-12s %s%-7s%s", clock(e.Start), e.Defect, on, state, off)
	if e.State == detectors.Cleared {
		fmt.Fprintf(&sb, " %s -> %s (%.3f s)", clock(e.Start), clock(e.End), e.End-e.Start)
	}
	if e.Reason != "" {
		fmt.Fprintf(&sb, "  %s", e.Reason)
	}
	keys := make([]string, 0, len(e.Values))
	for k := range e.Values {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(&sb, "  %s=%g", k, e.Values[k])
	}
	w.write([]byte(strings.TrimRight(sb.String(), " ") + "\n"))
}

// clock formats media seconds as H:MM:SS.mmm.
func clock(s float64) string {
	ms := int64(math.Round(s * 1000))
	return fmt.Sprintf("%d:%02d:%02d.%03d", ms/3600000, ms/60000%60, ms/1000%60, ms%1000)
}

// JSONSummary is the json contract of the summary line.
type JSONSummary struct {
	Type           string               `json:"type"`
	Stream         string               `json:"stream"`
	Frames         int                  `json:"frames"`
	AudioBlocks    int                  `json:"audio_blocks"`
	Duration       float64              `json:"duration"`
	Elapsed        float64              `json:"elapsed"`
	Decoder        string               `json:"decoder"`
	AudioDecoder   string               `json:"audio_decoder"`
	Format         string               `json:"format"`
	Reconnects     int                  `json:"reconnects"`
	DecodeErrors   int                  `json:"decode_errors"`
	CorruptPackets int                  `json:"corrupt_packets"`
	Integrated     *float64             `json:"integrated_lufs,omitempty"`
	LRA            *float64             `json:"lra_lu,omitempty"`
	Alarms         map[string]JSONTally `json:"alarms"`
	// TR101290: transport errors per indicator, MPEG-TS inputs only.
	TR101290 map[string]int64 `json:"tr101290,omitempty"`
}

// JSONTally is one defect's line in the summary.
type JSONTally struct {
	Count   int     `json:"count"`
	Total   float64 `json:"total"`
	Longest float64 `json:"longest"`
}

func finite(v float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	r := math.Round(v*10) / 10
	return &r
}

func (w *writer) summary(s Summary) error {
	if w.json {
		j := JSONSummary{Type: "summary", Stream: w.stream, Frames: s.Frames, AudioBlocks: s.AudioBlocks,
			Duration: ms(s.Duration), Elapsed: ms(s.Elapsed), Decoder: s.Decoder, AudioDecoder: s.AudioDecoder,
			Format: s.Format, Reconnects: s.Reconnects, DecodeErrors: s.DecodeErrors, CorruptPackets: s.CorruptPackets,
			Integrated: finite(s.Integrated), LRA: finite(s.LRA), Alarms: map[string]JSONTally{}, TR101290: s.TR101290}
		for k, t := range s.Alarms {
			j.Alarms[k] = JSONTally{Count: t.Count, Total: ms(t.Total), Longest: ms(t.Longest)}
		}
		b, err := json.Marshal(j)
		if err != nil {
			return err
		}
		w.write(append(b, '\n'))
		return w.err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "\n%s: %s of media in %.2f s (%.1fx real time), %d frames, %d audio blocks\n",
		w.stream, clock(s.Duration), s.Elapsed, s.Duration/math.Max(s.Elapsed, 1e-9), s.Frames, s.AudioBlocks)
	fmt.Fprintf(&sb, "decoders: video %s, audio %s", orNone(s.Decoder), orNone(s.AudioDecoder))
	if v := finite(s.Integrated); v != nil {
		fmt.Fprintf(&sb, "; integrated loudness %.1f LUFS", *v)
		if l := finite(s.LRA); l != nil {
			fmt.Fprintf(&sb, ", LRA %.1f LU", *l)
		}
	}
	if s.DecodeErrors > 0 {
		fmt.Fprintf(&sb, "; %d decode errors", s.DecodeErrors)
	}
	if s.CorruptPackets > 0 {
		fmt.Fprintf(&sb, "; %d packets flagged corrupt by the demuxer", s.CorruptPackets)
	}
	sb.WriteString("\n\n")
	fmt.Fprintf(&sb, "%-12s %6s %12s %12s\n", "defect", "alarms", "total", "longest")
	for _, name := range detectors.Names {
		t := s.Alarms[name]
		if t == nil {
			fmt.Fprintf(&sb, "%-12s %6d %12s %12s\n", name, 0, "-", "-")
			continue
		}
		fmt.Fprintf(&sb, "%-12s %6d %12s %12s\n", name, t.Count, clock(t.Total), clock(t.Longest))
	}
	if s.TR101290 != nil {
		fmt.Fprintf(&sb, "\n%-40s %8s\n", "TR 101 290 (MPEG-TS)", "errors")
		for i := range transport.NumIndicators {
			fmt.Fprintf(&sb, "%-40s %8d\n", i.String(), s.TR101290[i.String()])
		}
	}
	w.write([]byte(sb.String()))
	return w.err
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
