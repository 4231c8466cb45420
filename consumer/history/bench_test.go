package history

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/schema"
)

// BenchmarkStoreEvents: events stored per second, queued as the Recorder
// queues them (it does not wait for each commit) and with 16 goroutines
// that each wait for their event's commit; either way commits are shared.
func BenchmarkStoreEvents(b *testing.B) {
	const agents = 50
	recorderPath := func(b *testing.B, db string) {
		s := openStore(b, db, nil)
		events := makeEvents(agents, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		var wg sync.WaitGroup
		wg.Add(len(events))
		var failed atomic.Int64
		for _, e := range events {
			if err := s.submit(context.Background(), op{kind: opEvent, rec: Record{AgentEvent: e}, done: func(r result) {
				if r.err != nil || !r.stored {
					failed.Add(1)
				}
				wg.Done()
			}}); err != nil {
				b.Fatal(err)
			}
		}
		wg.Wait()
		b.StopTimer()
		if failed.Load() > 0 {
			b.Fatalf("%d events not stored", failed.Load())
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	}
	b.Run("recorder-path", func(b *testing.B) { recorderPath(b, b.TempDir()) })
	if dsn := os.Getenv("STREAMQC_TEST_POSTGRES"); dsn != "" {
		b.Run("recorder-path-postgres", func(b *testing.B) { recorderPath(b, pgSchema(b, dsn)) })
	}
	b.Run("16-waiting-writers", func(b *testing.B) {
		s := openStore(b, b.TempDir(), nil)
		events := makeEvents(agents, b.N)
		b.ReportAllocs()
		b.ResetTimer()
		var next atomic.Int64
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1) - 1; i < int64(len(events)); i = next.Add(1) - 1 {
					if _, err := s.Add(context.Background(), events[i], nil); err != nil {
						b.Error(err)
						return
					}
				}
			}()
		}
		wg.Wait()
		b.StopTimer()
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// makeEvents makes n events spread over agents, each agent's seqs dense.
func makeEvents(agents, n int) []schema.AgentEvent {
	out := make([]schema.AgentEvent, n)
	seq := make([]uint64, agents)
	defects := []string{"black", "freeze", "silence", "loudness"}
	for i := range out {
		a := i % agents
		seq[a]++
		e := ev("bench", fmt.Sprint("agent", a), seq[a], fmt.Sprint("s", i%7), defects[i%len(defects)], []string{"raised", "cleared"}[(i/agents)%2])
		e.Values = map[string]float64{"luma": 16, "ratio": 0.98}
		out[i] = e
	}
	return out
}

// BenchmarkQueries: query latency over a database of 200,000 events of 50
// agents.
func BenchmarkQueries(b *testing.B) {
	const n = 200000
	s := openStore(b, b.TempDir(), nil)
	events := makeEvents(50, n)
	var wg sync.WaitGroup
	wg.Add(n)
	for _, e := range events {
		if err := s.submit(context.Background(), op{kind: opEvent, rec: Record{AgentEvent: e}, done: func(result) { wg.Done() }}); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	ctx := context.Background()
	if _, err := s.Prune(ctx); err != nil { // and the planner's statistics, as every PruneEvery
		b.Fatal(err)
	}
	mid := t0.Add(n / 50 / 2 * time.Second)
	for _, q := range []struct {
		name string
		q    Query
	}{
		{"newest-100", Query{}},
		{"agent-100", Query{Fleet: "bench", Agent: "agent7"}},
		{"agent-stream-100", Query{Fleet: "bench", Agent: "agent7", Stream: "s0"}},
		{"defect-100", Query{Fleet: "bench", Defect: "freeze"}},
		{"agent-defect-state-1000", Query{Fleet: "bench", Agent: "agent4", Defect: "black", State: "raised", Limit: 1000}},
		{"agent-hour-window", Query{Fleet: "bench", Agent: "agent9", Since: mid, Until: mid.Add(time.Hour)}},
		{"page-20-deep", Query{Limit: 100}},
	} {
		b.Run(q.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				qq := q.q
				pages := 1
				if q.name == "page-20-deep" {
					pages = 20
				}
				for range pages {
					rs, err := s.Events(ctx, qq)
					if err != nil || len(rs) == 0 {
						b.Fatalf("%d records, %v", len(rs), err)
					}
					qq.Before = rs[len(rs)-1].Cursor()
				}
			}
		})
	}
	b.Run("open-alarms", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			rs, err := s.OpenAlarms(ctx, "bench")
			if err != nil || len(rs) == 0 {
				b.Fatalf("%d records, %v", len(rs), err)
			}
			b.ReportMetric(float64(len(rs)), "open")
		}
	})
}

// BenchmarkRecorderMQTT: events from 4 agents through a real Mosquitto to
// the database, until every agent's watermark covers all of its events;
// and how many StoredDocs that took (coalesced: at most ~5 a second per
// agent).
func BenchmarkRecorderMQTT(b *testing.B) {
	const agents = 4
	broker := mqtttest.Start(b, mqtttest.Options{})
	st := openStore(b, b.TempDir(), nil)
	durable := false
	var rec *Recorder
	c := newClient(b, mqtt.Options{Broker: broker.URL, ClientID: "recorder", CleanSession: &durable,
		OnConnect: func(ctx context.Context, c *mqtt.Client) { rec.OnConnect(ctx, c) }})
	var err error
	if rec, err = NewRecorder(st, RecorderOptions{Fleet: "bench", Name: "bench", Client: c, Logger: quiet()}); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go rec.Run(ctx)
	start(b, c)
	var docs atomic.Int64
	w := newClient(b, mqtt.Options{Broker: broker.URL, ClientID: "watcher"})
	w.Subscribe(schema.Filter("bench", "", "events/stored"), 1, func(mqtt.Message) { docs.Add(1) })
	start(b, w)
	pubs := make([]*mqtt.Client, agents)
	for i := range pubs {
		pubs[i] = newClient(b, mqtt.Options{Broker: broker.URL, ClientID: fmt.Sprint("agent", i)})
		start(b, pubs[i])
	}
	per := max(b.N/agents, 1)
	payloads := make([][][]byte, agents)
	for a := range agents {
		for n := 1; n <= per; n++ {
			p, _ := json.Marshal(ev("bench", fmt.Sprint("agent", a), uint64(n), "s1", "black", "raised"))
			payloads[a] = append(payloads[a], p)
		}
	}
	docs.Store(0)
	b.ResetTimer()
	var wg sync.WaitGroup
	for a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			topic := schema.NewTopics("bench", fmt.Sprint("agent", a)).Events
			for _, p := range payloads[a] {
				if err := pubs[a].Publish(ctx, mqtt.Message{Topic: topic, Payload: p, QoS: 1}); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for {
		ms, _ := st.Marks(ctx)
		done := len(ms) == agents
		for _, m := range ms {
			done = done && m.Seq == uint64(per)
		}
		if done {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.StopTimer()
	total := agents * per
	b.ReportMetric(float64(total)/b.Elapsed().Seconds(), "events/s")
	time.Sleep(400 * time.Millisecond) // the last StoredDocs
	b.ReportMetric(float64(docs.Load())/agents/max(b.Elapsed().Seconds(), 0.2), "stored-docs/s/agent")
	if s := rec.Stats(); s.Stored != uint64(total) || s.Invalid+s.Forged+s.StoreErrs != 0 {
		b.Fatalf("stats %+v, want %d stored", s, total)
	}
}
