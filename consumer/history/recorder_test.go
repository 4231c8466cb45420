package history

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/schema"
)

// storedSeen is one StoredDoc seen by the watcher.
type storedSeen struct {
	agent    string
	doc      schema.StoredDoc
	retained bool
	at       time.Time
}

// storedLog is every StoredDoc the watcher saw, in arrival order.
type storedLog struct {
	mu   sync.Mutex
	list []storedSeen
}

func (l *storedLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.list)
}

// watchStored follows every agent's StoredDocs of fleet f, checking each
// against the schema.
func watchStored(t *testing.T, url, f string) *storedLog {
	t.Helper()
	sch, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	l := &storedLog{}
	c := newClient(t, mqtt.Options{Broker: url, ClientID: "watcher", MaxReconnectInterval: time.Second})
	c.Subscribe(schema.Filter(f, "", "events/stored"), 1, func(m mqtt.Message) {
		if err := sch.Validate(schema.Stored, m.Payload); err != nil {
			t.Errorf("StoredDoc %s: %v", m.Payload, err)
		}
		var d schema.StoredDoc
		json.Unmarshal(m.Payload, &d)
		l.mu.Lock()
		l.list = append(l.list, storedSeen{agent: strings.Split(m.Topic, "/")[3], doc: d, retained: m.Retained, at: time.Now()})
		l.mu.Unlock()
	})
	start(t, c)
	return l
}

func newClient(t testing.TB, o mqtt.Options) *mqtt.Client {
	t.Helper()
	o.Logger = quiet()
	c, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(time.Second) })
	return c
}

func start(t testing.TB, c *mqtt.Client) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.Start(context.Background())
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
}

// waitStored waits for a StoredDoc of agent that ok accepts, among those
// that arrived from index from on; it returns it and its index.
func waitStored(t *testing.T, l *storedLog, from int, agent string, within time.Duration, ok func(storedSeen) bool) (storedSeen, int) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		l.mu.Lock()
		for i := from; i < len(l.list); i++ {
			if s := l.list[i]; s.agent == agent && ok(s) {
				l.mu.Unlock()
				return s, i
			}
		}
		seen := fmt.Sprint(l.list[min(from, len(l.list)):])
		l.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no wanted StoredDoc of %s within %s; seen: %s", agent, within, seen)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func seqIs(seq uint64, gap bool) func(storedSeen) bool {
	return func(s storedSeen) bool { return s.doc.Seq == seq && s.doc.Gap == gap }
}

// agentPub publishes as agents do.
type agentPub struct {
	t *testing.T
	c *mqtt.Client
}

func (a agentPub) pub(topic string, payload any, retained bool) {
	a.t.Helper()
	b, ok := payload.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(payload); err != nil {
			a.t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := a.c.Publish(ctx, mqtt.Message{Topic: topic, Payload: b, QoS: 1, Retained: retained}); err != nil {
		a.t.Fatal(err)
	}
}

func (a agentPub) events(f, agent string, seqs ...uint64) {
	a.t.Helper()
	for _, n := range seqs {
		a.pub(schema.NewTopics(f, agent).Events, ev(f, agent, n, "s1", "black", []string{"raised", "cleared"}[n%2]), false)
	}
}

// recorderRun is a running Recorder with its store and client.
type recorderRun struct {
	st     *Store
	rec    *Recorder
	c      *mqtt.Client
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	events []Record
	thumbs []schema.ThumbnailDoc
}

func startRecorder(t *testing.T, url, dir string) *recorderRun {
	t.Helper()
	r := &recorderRun{st: openStore(t, dir, nil), done: make(chan error, 1)}
	durable := false
	r.c = newClient(t, mqtt.Options{Broker: url, ClientID: "recorder", CleanSession: &durable,
		MaxReconnectInterval: time.Second,
		OnConnect:            func(ctx context.Context, c *mqtt.Client) { r.rec.OnConnect(ctx, c) }})
	var err error
	r.rec, err = NewRecorder(r.st, RecorderOptions{Fleet: "f", Name: "test-dashboard", Client: r.c, Logger: quiet(),
		OnEvent: func(rec Record) {
			r.mu.Lock()
			r.events = append(r.events, rec)
			r.mu.Unlock()
		},
		OnThumbnail: func(d schema.ThumbnailDoc) {
			r.mu.Lock()
			r.thumbs = append(r.thumbs, d)
			r.mu.Unlock()
		}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { r.done <- r.rec.Run(ctx) }()
	start(t, r.c)
	t.Cleanup(r.stop)
	return r
}

func (r *recorderRun) stop() {
	if r.cancel == nil {
		return
	}
	r.cancel()
	<-r.done
	r.cancel = nil
	r.c.Close(time.Second)
	r.st.Close()
}

func (r *recorderRun) seen() ([]Record, []schema.ThumbnailDoc) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Record(nil), r.events...), append([]schema.ThumbnailDoc(nil), r.thumbs...)
}

func TestRecorderIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("real Mosquitto; -short")
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	dir := t.TempDir()
	stored := watchStored(t, b.URL, "f")
	r := startRecorder(t, b.URL, dir)
	ag := agentPub{t, newClient(t, mqtt.Options{Broker: b.URL, ClientID: "agent", MaxReconnectInterval: time.Second})}
	start(t, ag.c)
	ctx := context.Background()

	// Out of order, duplicated, with a gap at 4; garbage and forgeries around.
	ag.events("f", "a1", 1, 3, 2, 2, 1, 5, 6)
	ag.pub(schema.NewTopics("f", "a1").Events, []byte("not json"), false)
	bad := ev("f", "a1", 7, "s1", "black", "raised")
	bad.Defect, bad.Seq = "purple", 0 // no seq: refused, not passed over (TestRecorderNewerAgents)
	ag.pub(schema.NewTopics("f", "a1").Events, bad, false)
	ag.pub(schema.NewTopics("f", "a2").Events, ev("f", "a1", 8, "s1", "black", "raised"), false) // a2 speaking for a1
	ag.events("f", "a1", 1<<63)                                                                  // valid JSON, too big to store
	ag.pub(schema.NewTopics("f", "a1").Missing, []byte(`{"type":"missing"}`), false)

	gap, i := waitStored(t, stored, 0, "a1", 5*time.Second, seqIs(3, true))
	if gap.doc.Consumer != "test-dashboard" || gap.retained {
		t.Errorf("StoredDoc %+v retained=%v", gap.doc, gap.retained)
	}
	// While the gap lasts, the StoredDoc comes again every 5 s.
	again, _ := waitStored(t, stored, i+1, "a1", 7*time.Second, seqIs(3, true))
	if d := again.at.Sub(gap.at); d < 4*time.Second {
		t.Errorf("gap republished after %s, want about 5s", d)
	}
	ag.events("f", "a1", 4)
	waitStored(t, stored, 0, "a1", 5*time.Second, seqIs(6, false))

	// The agent declares 7-8 missing and sends 9.
	ag.pub(schema.NewTopics("f", "a1").Missing, schema.MissingDoc{Type: "missing", From: 7, To: 8, Reason: "dropped",
		Time: time.Now().UTC().Format(time.RFC3339)}, false)
	ag.events("f", "a1", 9)
	s, _ := waitStored(t, stored, 0, "a1", 5*time.Second, seqIs(9, false))
	if s.doc.Lost != 2 {
		t.Errorf("lost %d, want 2", s.doc.Lost)
	}

	// An alarm thumbnail, retained as agents publish it, and a forged one.
	e1 := ev("f", "a1", 1, "s1", "black", "raised")
	th := thumb("f", "a1", "s1", 1, e1.ID)
	ag.pub(schema.NewTopics("f", "a1").Thumbnail("s1", schema.ThumbAlarm), th, true)
	ag.pub(schema.NewTopics("f", "a1").Thumbnail("s2", schema.ThumbAlarm), thumb("f", "a1", "s1", 2, e1.ID), true) // wrong stream
	waitFor(t, 5*time.Second, "the thumbnail stored", func() bool {
		_, err := r.st.Thumbnail(ctx, th.ID)
		return err == nil
	})

	got, err := r.st.Events(ctx, Query{Fleet: "f"})
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, e := range got {
		if e.Agent != "a1" {
			t.Errorf("stored %s/%s seq %d", e.Fleet, e.Agent, e.Seq)
		}
		seqs = append(seqs, e.Seq)
	}
	if fmt.Sprint(seqs) != "[9 6 5 4 3 2 1]" {
		t.Errorf("stored seqs %v, want [9 6 5 4 3 2 1]", seqs)
	}
	waitFor(t, 5*time.Second, "the callbacks", func() bool { e, th := r.seen(); return len(e) == 7 && len(th) == 1 })
	st := r.rec.Stats()
	if st.Stored != 7 || st.Duplicates != 2 || st.Invalid != 4 || st.Forged != 2 || st.Missing != 1 || st.Thumbnails != 1 {
		t.Errorf("stats %+v, want 7 stored, 2 duplicates, 4 invalid, 2 forged, 1 missing, 1 thumbnail", st)
	}
	if st.Published > 8 {
		t.Errorf("%d StoredDocs published for 5 changes and one gap republish: not coalesced", st.Published)
	}

	// The recorder goes away; the agent publishes meanwhile (the broker
	// queues for the durable session); the recorder restarts on the same
	// database: it republishes the watermark at once and gets what was queued.
	r.stop()
	ag.events("f", "a1", 10, 11)
	ag.events("f", "a3", 1)
	from := stored.len()
	r = startRecorder(t, b.URL, dir)
	waitStored(t, stored, from, "a1", 10*time.Second, seqIs(11, false))
	waitStored(t, stored, from, "a3", 10*time.Second, seqIs(1, false))
	if m := markOf(t, r.st, "f", "a1"); m.Seq != 11 || m.Lost != 2 || m.Stored != 9 {
		t.Errorf("after restart: %+v", m)
	}

	// The broker restarts without persistence: the retained StoredDocs are
	// gone; the recorder publishes every agent's again on reconnection.
	b.Stop()
	time.Sleep(200 * time.Millisecond) // what was in flight arrives
	from = stored.len()
	b.Start()
	waitStored(t, stored, from, "a1", 15*time.Second, seqIs(11, false))
	waitStored(t, stored, from, "a3", 15*time.Second, seqIs(1, false))
}

func waitFor(t *testing.T, within time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
