package consumer

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
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
		{schema.AgentEvent{Fleet: "f", Agent: "a", DefectEvent: schema.DefectEvent{Stream: "s", Defect: "tr101290", State: "raised", Start: 12.5, Reason: "1.4 continuity_count_error",
			Values: map[string]float64{"pid": 4097, "errors": 12, "errors_per_second": 4}}},
			[]string{"tr101290", "1.4 continuity_count_error", "pid=4097", "errors=12", "errors_per_second=4"}},
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
	metrics := []byte(`{"time":"2026-11-22T07:00:00Z","process":{"cpu_percent":12.5,"rss_bytes":104857600},"spool":{"pending":3},"streams":[{"state":"running","decoder":"nvdec:1"},{"state":"retrying","decoder":"cpu"},{"state":"running","decoder":"nvdec:1"}]}`)
	reported := []byte(`{"status":"rejected","version":5,"applied_version":4}`)
	var b bytes.Buffer
	PrintAgents(&b, []Agent{{Fleet: "f", ID: "box", Status: status, Metrics: metrics, Reported: reported}, {Fleet: "f", ID: "silent"}})
	out := b.String()
	for _, w := range []string{"box", "online", "1.2.3", "2/3", "v4 (v5 refused)", "12.5", "100.0", "cpu 1, nvdec:1 2", "silent"} {
		if !strings.Contains(out, w) {
			t.Errorf("listing lacks %q:\n%s", w, out)
		}
	}
}

// TestEventsFromAnotherTopicAreDropped: an event is believed only on its own
// agent's topic; the others are counted and said on Warn, and cannot
// shadow a real event by taking its id.
func TestEventsFromAnotherTopicAreDropped(t *testing.T) {
	var out, warn bytes.Buffer
	p := newEventPrinter(EventOptions{Format: "json", Warn: &warn}, &out)
	ev := func(id, fleet, agent string) []byte {
		b, err := json.Marshal(schema.AgentEvent{ID: id, Fleet: fleet, Agent: agent, Time: "2026-12-04T10:00:00Z",
			DefectEvent: schema.DefectEvent{Type: "defect", Stream: "s", Defect: "black", State: "raised"}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	msgs := []struct {
		topic   string
		payload []byte
		shown   bool
	}{
		{"streamqc/v1/eu/box1/events", ev("a", "eu", "box1"), true},
		{"streamqc/v1/eu/box1/events", ev("b", "eu", "box2"), false}, // box1 speaking for box2
		{"streamqc/v1/eu/box1/events", ev("c", "us", "box1"), false}, // another fleet
		{"streamqc/v1/eu/box2/events", ev("d", "eu", "box1"), false},
		{"streamqc/v1/eu/box1/events", ev("e", "", ""), false},
		{"other/tree/eu/box1/events", ev("f", "eu", "box1"), false},
		{"streamqc/v1/eu/box2/events", ev("b", "eu", "box2")[1:], true}, // the real "b" still shows
	}
	msgs[len(msgs)-1].payload = append([]byte(`{"seq":7,`), msgs[len(msgs)-1].payload...)
	for _, m := range msgs {
		p.handle(mqtt.Message{Topic: m.topic, Payload: m.payload, QoS: 1})
	}
	n, err := p.count()
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 || p.Dropped() != 5 {
		t.Fatalf("printed %d, dropped %d; want 2 and 5\n%s", n, p.Dropped(), &out)
	}
	for _, m := range msgs {
		if got := bytes.Contains(out.Bytes(), m.payload); got != m.shown {
			t.Errorf("%s %s: shown %v, want %v", m.topic, m.payload, got, m.shown)
		}
	}
	if lines := strings.Count(warn.String(), "\n"); lines != 5 || !strings.Contains(warn.String(), `claims to be from "eu"/"box2"`) {
		t.Errorf("warnings:\n%s", &warn)
	}
}

// TestAgentsDropsForeignDocuments: `fleet agents` lists an agent from the
// status and metrics its own topic carries only.
func TestAgentsDropsForeignDocuments(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "pub"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	c.Start(ctx)
	defer c.Close(time.Second)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	for topic, doc := range map[string]string{
		"streamqc/v1/f/a/status":  `{"state":"online","fleet":"f","agent":"a","version":"1"}`,
		"streamqc/v1/f/b/status":  `{"state":"offline","fleet":"f","agent":"a","version":"1"}`, // a's status on b's topic
		"streamqc/v1/f/c/metrics": `{"fleet":"f","agent":"c"}`,
		"streamqc/v1/f/d/metrics": `{"fleet":"g","agent":"d"}`,
	} {
		if err := c.Publish(ctx, mqtt.Message{Topic: topic, Payload: []byte(doc), QoS: 1, Retained: true}); err != nil {
			t.Fatal(err)
		}
	}
	reader, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "reader"})
	if err != nil {
		t.Fatal(err)
	}
	var warn bytes.Buffer
	done := make(chan []Agent, 1)
	go func() {
		list, err := Agents(ctx, reader, "f", 500*time.Millisecond, &warn)
		if err != nil {
			t.Error(err)
		}
		done <- list
	}()
	reader.Start(ctx)
	defer reader.Close(time.Second)
	list := <-done
	var ids []string
	for _, a := range list {
		ids = append(ids, a.ID)
	}
	if strings.Join(ids, ",") != "a,c" || !strings.Contains(string(list[0].Status), "online") {
		t.Fatalf("agents %v (%s)", ids, list[0].Status)
	}
	if w := warn.String(); strings.Count(w, "\n") != 2 || !strings.Contains(w, `streamqc/v1/f/b/status: its payload claims to be from "f"/"a"`) {
		t.Fatalf("warnings:\n%s", w)
	}
}
