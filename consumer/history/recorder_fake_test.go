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

// published returns the StoredDocs published so far for agent.
func (f *fakeBroker) published(agent string) []schema.StoredDoc {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []schema.StoredDoc
	for _, m := range f.pubs {
		if m.Topic == schema.NewTopics("f", agent).Stored {
			var d schema.StoredDoc
			json.Unmarshal(m.Payload, &d)
			out = append(out, d)
		}
	}
	return out
}

// runFakeRecorder runs a Recorder named "unit" of fleet "f" on a fresh
// store and a fakeBroker until the test ends.
func runFakeRecorder(t *testing.T) (*Store, *fakeBroker, *Recorder, context.Context) {
	t.Helper()
	s := openStore(t, t.TempDir(), nil)
	fb := &fakeBroker{}
	rec, err := NewRecorder(s, RecorderOptions{Fleet: "f", Name: "unit", Client: fb, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	go rec.Run(ctx)
	return s, fb, rec, ctx
}

// TestRecorderPublishes: the StoredDoc publication without a broker:
// coalesced under a burst, every known agent again after a reconnection.
func TestRecorderPublishes(t *testing.T) {
	_, fb, rec, ctx := runFakeRecorder(t)
	events := fb.handler(schema.Filter("f", "", "events"))
	send := func(agent string, seq uint64) {
		b, _ := json.Marshal(ev("f", agent, seq, "s1", "black", "raised"))
		events(mqtt.Message{Topic: schema.NewTopics("f", agent).Events, Payload: b, QoS: 1})
	}
	last := func(agent string) (schema.StoredDoc, int) {
		p := fb.published(agent)
		if len(p) == 0 {
			return schema.StoredDoc{}, 0
		}
		return p[len(p)-1], len(p)
	}

	// A burst of 600 events over about 1.2 s: at most ~5 StoredDocs a second.
	begin := time.Now()
	for n := uint64(1); n <= 600; n++ {
		send("a1", n)
		if n%50 == 0 {
			time.Sleep(100 * time.Millisecond)
		}
	}
	send("a2", 1)
	send("a2", 3)
	waitFor(t, 5*time.Second, "a1 at 600, a2 at 1 with a gap", func() bool {
		d1, _ := last("a1")
		d2, _ := last("a2")
		return d1.Seq == 600 && !d1.Gap && d2.Seq == 1 && d2.Gap
	})
	_, n1 := last("a1")
	if max := int(time.Since(begin)/minRepublish) + 2; n1 > max || n1 < 2 {
		t.Errorf("%d StoredDocs for a1 in %s, want 2 to %d", n1, time.Since(begin).Round(time.Millisecond), max)
	}
	for _, d := range fb.published("a1") {
		if d.Type != "stored" || d.Consumer != "unit" || d.Time == "" {
			t.Errorf("StoredDoc %+v", d)
		}
	}

	// A reconnection: both agents again at once, although nothing changed.
	_, before1 := last("a1")
	_, before2 := last("a2")
	rec.OnConnect(ctx, nil)
	waitFor(t, time.Second, "both agents republished", func() bool {
		_, n1 := last("a1")
		_, n2 := last("a2")
		return n1 > before1 && n2 > before2
	})
	if d, _ := last("a1"); d.Seq != 600 || d.Gap {
		t.Errorf("a1 after the reconnection: %+v", d)
	}
	if d, _ := last("a2"); d.Seq != 1 || !d.Gap {
		t.Errorf("a2 after the reconnection: %+v", d)
	}
}

// TestRecorderNewerAgents: an event this build's schema refuses does not
// stop its agent's watermark (which would have the agent resend everything
// above it until its spool drops it): one from a newer agent (a defect and
// a field this build does not know) is stored as it is; one that lacks what
// the history needs is passed over and counted lost; one whose agent is
// unknown or forged changes no watermark.
func TestRecorderNewerAgents(t *testing.T) {
	s, fb, rec, ctx := runFakeRecorder(t)
	events := fb.handler(schema.Filter("f", "", "events"))
	topic := schema.NewTopics("f", "a1").Events
	send := func(topic string, payload []byte) {
		events(mqtt.Message{Topic: topic, Payload: payload, QoS: 1})
	}
	marshal := func(e schema.AgentEvent, extra string) []byte {
		b, _ := json.Marshal(e)
		if extra != "" {
			b = append(b[:len(b)-1], ","+extra+"}"...)
		}
		return b
	}
	newer := ev("f", "a1", 2, "s1", "lip_sync_drift", "raised")
	noID := ev("f", "a1", 3, "s1", "black", "raised")
	noID.ID = "not-an-id"
	send(topic, marshal(ev("f", "a1", 1, "s1", "black", "raised"), ""))
	send(topic, marshal(newer, `"confidence":0.93`))
	send(topic, marshal(noID, ""))
	cleared := ev("f", "a1", 4, "s1", "black", "cleared")
	cleared.Cause = "operator muted" // a cause this build does not know
	send(topic, marshal(cleared, ""))
	send(schema.NewTopics("f", "a2").Events, marshal(ev("f", "a1", 5, "s1", "black", "raised"), "")) // forged
	send(topic, []byte(`{"seq":6}`))                                                                 // no agent: nothing to pass over
	send(topic, marshal(ev("f", "a1", 5, "s1", "black", "raised"), ""))
	waitFor(t, 5*time.Second, "a1's watermark at 5", func() bool {
		p := fb.published("a1")
		return len(p) > 0 && p[len(p)-1].Seq == 5 && !p[len(p)-1].Gap
	})
	if d := fb.published("a1"); d[len(d)-1].Lost != 1 {
		t.Errorf("lost %d, want 1 (seq 3 passed over)", d[len(d)-1].Lost)
	}
	rs, err := s.Events(ctx, Query{Fleet: "f", Agent: "a1", Limit: MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	got := map[uint64]string{}
	for _, r := range rs {
		got[r.Seq] = r.Defect
	}
	want := map[uint64]string{1: "black", 2: "lip_sync_drift", 4: "black", 5: "black"}
	if len(got) != len(want) {
		t.Errorf("stored %v, want %v", got, want)
	}
	for seq, d := range want {
		if got[seq] != d {
			t.Errorf("seq %d: stored %q, want %q", seq, got[seq], d)
		}
	}
	st := rec.Stats()
	if st.Nonconforming != 2 || st.PassedOver != 1 || st.Forged != 1 || st.Invalid != 2 {
		t.Errorf("stats %+v, want 2 nonconforming (seqs 2, 4), 1 passed over (3), 1 forged, 2 invalid (3, the bare seq)", st)
	}
	if ms, err := s.Marks(ctx); err != nil || len(ms) != 1 || ms[0].Agent != "a1" {
		t.Errorf("marks %+v (%v): only a1's", ms, err)
	}
}
