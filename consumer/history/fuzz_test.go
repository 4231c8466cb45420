package history

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/schema"
)

// fakeBroker hands the Recorder's handlers to the test and keeps what it
// publishes.
type fakeBroker struct {
	mu   sync.Mutex
	subs map[string]func(mqtt.Message)
	pubs []mqtt.Message
}

func (f *fakeBroker) Subscribe(filter string, _ byte, h func(mqtt.Message)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.subs == nil {
		f.subs = map[string]func(mqtt.Message){}
	}
	f.subs[filter] = h
}

func (f *fakeBroker) Publish(_ context.Context, m mqtt.Message) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pubs = append(f.pubs, m)
	return nil
}

func (f *fakeBroker) handler(filter string) func(mqtt.Message) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.subs[filter]
}

// FuzzRecorderPayloads: whatever arrives on the subscribed topics, the
// recorder neither panics nor stores what its schema or topic refuses, and
// whatever it stores reads back.
func FuzzRecorderPayloads(f *testing.F) {
	good, _ := json.Marshal(ev("f", "a1", 1, "s1", "black", "raised"))
	cleared, _ := json.Marshal(ev("f", "a1", 2, "s1", "black", "cleared"))
	missing, _ := json.Marshal(schema.MissingDoc{Type: "missing", From: 3, To: 4, Reason: "dropped", Time: t0.Format(time.RFC3339)})
	th, _ := json.Marshal(thumb("f", "a1", "s1", 1, ev("f", "a1", 1, "", "", "").ID))
	for _, seed := range []struct {
		topic   string
		payload []byte
	}{
		{"streamqc/v1/f/a1/events", good},
		{"streamqc/v1/f/a1/events", cleared},
		{"streamqc/v1/f/a2/events", good},
		{"streamqc/v1/f/a1/events/missing", missing},
		{"streamqc/v1/f/a1/thumbnails/s1/alarm", th},
		{"streamqc/v1/f/a1/events", []byte(`{"type":"defect","seq":1e30}`)},
		{"streamqc/v1/f/a1/events", []byte(`null`)},
		{"streamqc/v1/f/a1/events/missing", []byte(`{"type":"missing","from":9,"to":2,"reason":"dropped","time":"2026-12-04T00:00:00Z"}`)},
		{"x", []byte{0xff, 0x00}},
	} {
		f.Add(seed.topic, seed.payload)
	}
	s := openStore(f, f.TempDir(), nil)
	fb := &fakeBroker{}
	rec, err := NewRecorder(s, RecorderOptions{Fleet: "f", Name: "fuzz", Client: fb, Logger: quiet()})
	if err != nil {
		f.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rec.Run(ctx)
	fromItsTopic := map[string]bool{} // ids sent on their own agent's events topic
	f.Fuzz(func(t *testing.T, topic string, payload []byte) {
		var e schema.AgentEvent
		parsed := json.Unmarshal(payload, &e) == nil && e.ID != ""
		if parsed && topic == schema.NewTopics(e.Fleet, e.Agent).Events {
			fromItsTopic[e.ID] = true
		}
		var h func(mqtt.Message)
		switch {
		case len(topic) > 6 && topic[len(topic)-6:] == "/alarm":
			h = fb.handler(schema.Filter("f", "", "thumbnails/+/alarm"))
		case len(topic) > 8 && topic[len(topic)-8:] == "/missing":
			h = fb.handler(schema.Filter("f", "", "events/missing"))
		default:
			h = fb.handler(schema.Filter("f", "", "events"))
		}
		h(mqtt.Message{Topic: topic, Payload: payload, QoS: 1})
		// Wait for the writer: a synchronous write queues behind it.
		if _, err := s.Prune(ctx); err != nil {
			t.Fatal(err)
		}
		if !parsed {
			return
		}
		rs, err := s.Events(ctx, Query{Fleet: e.Fleet, Agent: e.Agent, Limit: MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if !fromItsTopic[r.ID] {
				t.Fatalf("stored %s (%s/%s), never sent on its own topic; last topic %q", r.ID, r.Fleet, r.Agent, topic)
			}
		}
	})
}
