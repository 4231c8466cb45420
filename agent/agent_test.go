package agent

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/testdata/clips"
)

// clipDir generates the named clips and returns their directory.
func clipDir(t *testing.T, names ...string) string {
	t.Helper()
	tr, err := clips.Ensure(context.Background(), names...)
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(tr[0].File)
}

func agentConfig(t *testing.T, b *mqtttest.Broker, media string) config.Agent {
	c := config.DefaultAgent()
	c.Fleet, c.ID = "test", "box1"
	c.StateDir = t.TempDir()
	c.MediaDir = media
	c.Broker.URL = b.URL
	c.MetricsInterval = config.Duration(time.Second)
	c.StopTimeout = config.Duration(5 * time.Second)
	return c
}

// running is an agent started by a test.
type running struct {
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func startAgent(t *testing.T, c config.Agent) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() { r.done <- Run(ctx, Options{Config: c, Version: "test", Logger: logger, Ready: ready}) }()
	select {
	case <-ready:
	case err := <-r.done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not start")
	}
	t.Cleanup(func() { r.stop(t) })
	return r
}

// stop stops the agent gracefully (once) and returns how long it took.
func (r *running) stop(t *testing.T) time.Duration {
	var took time.Duration
	r.once.Do(func() {
		start := time.Now()
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Fatal("agent did not stop within 15 s")
		}
		took = time.Since(start)
	})
	return took
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// watcher is an operator's client that records everything of one fleet.
type watcher struct {
	t       *testing.T
	c       *mqtt.Client
	schemas *schema.Set
	mu      sync.Mutex
	events  []schema.AgentEvent
	byTopic map[string][][]byte
}

func watch(t *testing.T, b *mqtttest.Broker, clientID string) *watcher {
	t.Helper()
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	o := mqtt.Options{Broker: b.URL, ClientID: clientID}
	if clientID != "" {
		clean := false
		o.CleanSession = &clean
	} else {
		o.ClientID = fmt.Sprintf("watch-%d", time.Now().UnixNano())
	}
	c, err := mqtt.New(o)
	if err != nil {
		t.Fatal(err)
	}
	w := &watcher{t: t, c: c, schemas: s, byTopic: map[string][][]byte{}}
	leafSchema := map[string]string{"events": schema.Event, "status": schema.Status, "metrics": schema.Metrics, "config/reported": schema.Reported}
	for leaf, name := range leafSchema {
		c.Subscribe(schema.Filter("test", "", leaf), 1, func(m mqtt.Message) {
			if err := s.Validate(name, m.Payload); err != nil {
				t.Errorf("%s payload does not match %s schema: %v\n%s", m.Topic, name, err, m.Payload)
			}
			w.mu.Lock()
			defer w.mu.Unlock()
			w.byTopic[leaf] = append(w.byTopic[leaf], m.Payload)
			if leaf == "events" {
				var e schema.AgentEvent
				if err := json.Unmarshal(m.Payload, &e); err != nil {
					t.Errorf("event: %v", err)
				}
				w.events = append(w.events, e)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(time.Second); cancel() })
	return w
}

func (w *watcher) last(leaf string) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	l := w.byTopic[leaf]
	if len(l) == 0 {
		return nil
	}
	return l[len(l)-1]
}

func (w *watcher) count(leaf string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.byTopic[leaf])
}

func (w *watcher) eventList() []schema.AgentEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]schema.AgentEvent(nil), w.events...)
}

func (w *watcher) waitFor(what string, d time.Duration, ok func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (w *watcher) push(t *testing.T, topic, doc string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Publish(ctx, mqtt.Message{Topic: topic, Payload: []byte(doc), QoS: 1, Retained: true}); err != nil {
		t.Fatal(err)
	}
}

// verdict waits for the reported document about version v.
func (w *watcher) verdict(v int64, scope string) Reported {
	var r Reported
	w.waitFor(fmt.Sprintf("verdict on %s version %d", scope, v), 15*time.Second, func() bool {
		b := w.last("config/reported")
		if b == nil || json.Unmarshal(b, &r) != nil {
			return false
		}
		return r.Version == v && r.Scope == scope
	})
	return r
}

func (w *watcher) metricsOf(stream string) (StreamMetrics, bool) {
	var m Metrics
	if b := w.last("metrics"); b == nil || json.Unmarshal(b, &m) != nil {
		return StreamMetrics{}, false
	}
	for _, s := range m.Streams {
		if s.ID == stream {
			return s, true
		}
	}
	return StreamMetrics{}, false
}

// checkEvents asserts what every consumer relies on: unique ids, and every
// raise of a stream's defect followed by its clear.
func checkEvents(t *testing.T, events []schema.AgentEvent) { checkEventsAfterCrash(t, events, false) }

// checkEventsAfterCrash: after a kill -9, the restart may clear an alarm
// whose raise never made it out of the dying process (never the reverse).
func checkEventsAfterCrash(t *testing.T, events []schema.AgentEvent, crashed bool) {
	t.Helper()
	ids := map[string]bool{}
	open := map[string]bool{}
	for _, e := range events {
		if ids[e.ID] {
			continue // a redelivery: consumers dedupe by id
		}
		ids[e.ID] = true
		k := e.Stream + "/" + e.Defect
		switch e.State {
		case "raised":
			if open[k] {
				t.Errorf("%s raised twice without a clear", k)
			}
			open[k] = true
		case "cleared":
			if !open[k] && !(crashed && strings.HasPrefix(e.Reason, "agent restarted")) {
				t.Errorf("%s cleared without a raise", k)
			}
			open[k] = false
		}
	}
	for k, v := range open {
		if v {
			t.Errorf("%s still raised after the agent stopped", k)
		}
	}
}

func TestAgentIntegration(t *testing.T) {
	media := clipDir(t, "black", "clean_quiet")
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watch(t, b, "")
	c := agentConfig(t, b, media)
	a := startAgent(t, c)
	topics := schema.NewTopics("test", "box1")

	w.waitFor("online status", 10*time.Second, func() bool { return strings.Contains(string(w.last("status")), `"online"`) })

	// Version 1: two looping streams.
	w.push(t, topics.Desired, `{"version":1,"publish":{"metrics_interval":1},"streams":[
		{"id":"a","url":"black.mkv","loop":true},
		{"id":"b","url":"clean_quiet.mkv","loop":true}]}`)
	if r := w.verdict(1, "agent"); r.Status != "accepted" || r.AppliedVersion != 1 {
		t.Fatalf("v1: %+v", r)
	}
	w.waitFor("black on a", 30*time.Second, func() bool {
		for _, e := range w.eventList() {
			if e.Stream == "a" && e.Defect == "black" && e.State == "cleared" {
				return true
			}
		}
		return false
	})
	var before StreamMetrics
	w.waitFor("metrics of both streams", 15*time.Second, func() bool {
		var ok bool
		before, ok = w.metricsOf("a")
		bm, ok2 := w.metricsOf("b")
		return ok && ok2 && before.Frames > 0 && bm.Frames > 0 && before.FPS > 0
	})
	if before.Decoder != "cpu" {
		t.Errorf("stream a (hwaccel auto, no GPU here) decodes on %q, want cpu", before.Decoder)
	}

	// Version 2 changes b only: a keeps running, untouched.
	w.push(t, topics.Desired, `{"version":2,"publish":{"metrics_interval":1},"streams":[
		{"id":"a","url":"black.mkv","loop":true},
		{"id":"b","url":"clean_quiet.mkv","loop":true,"detectors":{"silence":{"min_duration":5}}}]}`)
	if r := w.verdict(2, "agent"); r.Status != "accepted" {
		t.Fatalf("v2: %+v", r)
	}

	// Refused documents leave version 2 running.
	for _, c := range []struct {
		version int64
		doc     string
		reason  string
	}{
		{1, `{"version":1,"streams":[]}`, "stale"},
		{3, `{"version":3,"streams":[{"id":"x","url":"concat:black.mkv|/etc/passwd"}]}`, "not allowed"},
		{4, `{"version":4,"streams":[{"id":"x","url":"/etc/passwd"}]}`, "outside media_dir"},
		{5, `{"version":5,"streams":[{"id":"a","url":"black.mkv","detectors":{"black":{"min_duration":-2}}}]}`, "min_duration"},
		{6, `{"version":6,"streams":[{"id":"a"}]}`, "url"},
		{0, `{"version":`, "not JSON"},
	} {
		w.push(t, topics.Desired, c.doc)
		r := w.verdict(c.version, "agent")
		if r.Status != "rejected" || !strings.Contains(r.Reason, c.reason) || r.AppliedVersion != 2 {
			t.Errorf("%s: %+v, want rejected for %q with version 2 running", c.doc, r, c.reason)
		}
	}
	after, _ := w.metricsOf("a")
	if after.Restarts < before.Restarts || after.Frames < before.Frames {
		t.Errorf("stream a was disturbed by other streams' changes: %+v then %+v", before, after)
	}

	// Fleet-wide defaults merge under the agent's own.
	w.push(t, topics.FleetDesired, `{"version":1,"detectors":{"freeze":{"min_duration":4}}}`)
	if r := w.verdict(1, "fleet"); r.Status != "accepted" || r.FleetVersion != 1 {
		t.Fatalf("fleet v1: %+v", r)
	}

	took := a.stop(t)
	if took > 6*time.Second {
		t.Errorf("graceful stop took %s", took)
	}
	w.waitFor("offline status", 5*time.Second, func() bool {
		return strings.Contains(string(w.last("status")), `"offline"`) && strings.Contains(string(w.last("status")), "stopped")
	})
	time.Sleep(200 * time.Millisecond)
	checkEvents(t, w.eventList())

	// The last good config survives a restart without a broker.
	b.Stop()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ag, err := newAgent(Options{Config: c, Version: "test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	ready := make(chan struct{})
	go func() { done <- ag.run(ctx, ready) }()
	<-ready
	st := ag.sup.Status()
	if len(st) != 2 || st[0].ID != "a" || st[1].ID != "b" {
		t.Fatalf("after restart without broker: %+v", st)
	}
	if ag.agentDoc.Version != 2 || ag.fleetDoc == nil || ag.fleetDoc.Version != 1 {
		t.Fatalf("restored versions: agent %d fleet %+v", ag.agentDoc.Version, ag.fleetDoc)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// seqs returns the first-arrival order of event seqs and whether any id came
// with two different seqs.
func firstArrivals(events []schema.AgentEvent) []uint64 {
	seen := map[string]bool{}
	var out []uint64
	for _, e := range events {
		if !seen[e.ID] {
			seen[e.ID] = true
			out = append(out, e.Seq)
		}
	}
	return out
}

func checkComplete(t *testing.T, arrivals []uint64, upTo uint64) {
	t.Helper()
	if !sort.SliceIsSorted(arrivals, func(i, j int) bool { return arrivals[i] < arrivals[j] }) {
		t.Errorf("events arrived out of order: %v", arrivals)
	}
	got := map[uint64]bool{}
	for _, s := range arrivals {
		got[s] = true
	}
	var missing []uint64
	for s := uint64(1); s <= upTo; s++ {
		if !got[s] {
			missing = append(missing, s)
		}
	}
	if len(missing) > 0 {
		t.Errorf("%d of %d events lost: %v", len(missing), upTo, missing)
	}
}

func TestBrokerOutageLosesNothing(t *testing.T) {
	media := clipDir(t, "black", "silence")
	b := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	w := watch(t, b, "durable-consumer")
	c := agentConfig(t, b, media)
	c.Streams = []config.Stream{
		{ID: "a", URL: "black.mkv", Loop: true},
		{ID: "s", URL: "silence.mkv", Loop: true},
	}
	a := startAgent(t, c)
	w.waitFor("first events", 20*time.Second, func() bool { return len(w.eventList()) >= 4 })
	b.Stop()
	time.Sleep(3 * time.Second) // the streams keep looping: events pile up in the spool
	statuses := w.count("status")
	b.Start()
	w.waitFor("the agent back online", 20*time.Second, func() bool {
		return w.count("status") > statuses && strings.Contains(string(w.last("status")), `"online"`)
	})
	time.Sleep(time.Second)
	a.stop(t)
	st := spoolStats(t, c)
	if st.Pending != 0 {
		t.Errorf("%d events left in the spool after a graceful stop with the broker up", st.Pending)
	}
	w.waitFor("every event", 15*time.Second, func() bool {
		return uint64(len(firstArrivals(w.eventList()))) >= st.NextSeq-1
	})
	arr := firstArrivals(w.eventList())
	checkComplete(t, arr, st.NextSeq-1)
	checkEvents(t, w.eventList())
	t.Logf("%d events, %d deliveries (redeliveries after the outage are deduped by id)", len(arr), len(w.eventList()))
}

func spoolStats(t *testing.T, c config.Agent) struct {
	Pending int
	NextSeq uint64
} {
	t.Helper()
	sp, err := openSpool(c, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	s := sp.Stats()
	return struct {
		Pending int
		NextSeq uint64
	}{s.Pending, s.NextSeq}
}

func TestMain(m *testing.M) {
	if os.Getenv("STREAMQC_AGENT_CHILD") != "" {
		os.Exit(childAgent())
	}
	os.Exit(m.Run())
}
