package consumer

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/schema"
)

func TestDedup(t *testing.T) {
	d := NewDedup(3)
	for i, c := range []struct {
		id    string
		first bool
	}{{"a", true}, {"b", true}, {"a", false}, {"c", true}, {"d", true}, {"a", true}, {"d", false}} {
		if got := d.First(c.id); got != c.first {
			t.Errorf("step %d: First(%q) = %v, want %v", i, c.id, got, c.first)
		}
	}
}

func TestTextLine(t *testing.T) {
	end, dur := 7.0, 3.0
	cases := []struct {
		e    schema.AgentEvent
		want []string
	}{
		{schema.AgentEvent{Fleet: "f", Agent: "a", Time: "2026-11-22T07:00:00Z", DefectEvent: schema.DefectEvent{Stream: "s", Defect: "black", State: "raised", Start: 4, Values: map[string]float64{"black_share": 0.99}}},
			[]string{"f/a/s", "RAISED", "black", "4.000s", "black_share=0.99"}},
		{schema.AgentEvent{Fleet: "f", Agent: "a", DefectEvent: schema.DefectEvent{Stream: "s", Defect: "black", State: "cleared", Start: 4, End: &end, Duration: &dur, Reason: "r\x1b[2J"}},
			[]string{"CLEARED", "lasted 3.000s", "  r?[2J"}},
	}
	for _, c := range cases {
		line := textLine(c.e, false)
		for _, w := range c.want {
			if !strings.Contains(line, w) {
				t.Errorf("%q lacks %q", line, w)
			}
		}
		if strings.Contains(line, "\x1b") {
			t.Errorf("color without a terminal: %q", line)
		}
	}
	if !strings.Contains(textLine(cases[0].e, true), "\x1b[1;31m") {
		t.Error("raised is not red on a terminal")
	}
}

func TestPrintAgents(t *testing.T) {
	status, _ := json.Marshal(map[string]any{"state": "online", "version": "1.2.3"})
	metrics := []byte(`{"time":"2026-11-22T07:00:00Z","process":{"cpu_percent":12.5,"rss_bytes":104857600},"spool":{"pending":3},"streams":[{"state":"running"},{"state":"retrying"}]}`)
	reported := []byte(`{"status":"rejected","version":5,"applied_version":4}`)
	var b bytes.Buffer
	PrintAgents(&b, []Agent{{Fleet: "f", ID: "box", Status: status, Metrics: metrics, Reported: reported}, {Fleet: "f", ID: "silent"}})
	out := b.String()
	for _, w := range []string{"box", "online", "1.2.3", "1/2", "v4 (v5 refused)", "12.5", "100.0", "silent"} {
		if !strings.Contains(out, w) {
			t.Errorf("listing lacks %q:\n%s", w, out)
		}
	}
}
