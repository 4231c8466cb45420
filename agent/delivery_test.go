package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/schema"
)

// recorder is a minimal consumer of record (README "Delivery end to end"):
// a persistent session on the fleet's events and missing declarations,
// events stored by id, per agent a watermark W that advances while W+1 is
// stored or declared missing, and a retained StoredDoc published when W
// changes (Gap while it holds seqs above W) and for every known agent after
// each connection.
type recorder struct {
	t       *testing.T
	url     string
	schemas *schema.Set

	mu      sync.Mutex
	c       *mqtt.Client
	ids     map[string]bool            // event ids stored
	bySeq   map[uint64]string          // box1's seq -> id stored
	seqs    map[string]map[uint64]bool // agent -> seqs stored or declared missing above W
	w       map[string]uint64          // agent -> watermark
	lost    map[string]uint64
	missing []schema.MissingDoc
	publish chan string // agents whose StoredDoc is due
	stop    context.CancelFunc
	done    chan struct{}
}

func newRecorder(t *testing.T, b *mqtttest.Broker) *recorder {
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	return &recorder{t: t, url: b.URL, schemas: s, ids: map[string]bool{}, bySeq: map[uint64]string{}, seqs: map[string]map[uint64]bool{},
		w: map[string]uint64{}, lost: map[string]uint64{}}
}

// know makes agent known (a StoredDoc with W 0 goes out on the next connect).
func (r *recorder) know(agent string) {
	r.mu.Lock()
	r.w[agent] += 0
	r.mu.Unlock()
}

// start connects the recorder (its persistent session) and waits for it.
func (r *recorder) start() {
	r.t.Helper()
	clean := false
	ctx, cancel := context.WithCancel(context.Background())
	pub := make(chan string, 64)
	o := mqtt.Options{Broker: r.url, ClientID: "recorder", CleanSession: &clean, MaxReconnectInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler),
		OnConnect: func(ctx context.Context, _ *mqtt.Client) {
			r.mu.Lock()
			agents := make([]string, 0, len(r.w))
			for a := range r.w {
				agents = append(agents, a)
			}
			r.mu.Unlock()
			for _, a := range agents {
				select {
				case pub <- a:
				case <-ctx.Done():
				}
			}
		}}
	c, err := mqtt.New(o)
	if err != nil {
		r.t.Fatal(err)
	}
	c.Subscribe(schema.Filter("test", "", "events"), 1, func(m mqtt.Message) { r.onEvent(ctx, m, pub) })
	c.Subscribe(schema.Filter("test", "", "events/missing"), 1, func(m mqtt.Message) { r.onMissing(ctx, m, pub) })
	r.mu.Lock()
	r.c, r.publish, r.stop, r.done = c, pub, cancel, make(chan struct{})
	r.mu.Unlock()
	go r.publisher(ctx, c, pub, r.done)
	c.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(r.offline)
}

// offline disconnects the recorder gracefully (its session stays on the broker).
func (r *recorder) offline() {
	r.mu.Lock()
	c, stop, done := r.c, r.stop, r.done
	r.c = nil
	r.mu.Unlock()
	if c == nil {
		return
	}
	stop()
	<-done
	c.Close(time.Second)
}

func (r *recorder) onEvent(ctx context.Context, m mqtt.Message, pub chan<- string) {
	if err := r.schemas.Validate(schema.Event, m.Payload); err != nil {
		r.t.Errorf("event does not match its schema: %v", err)
		return
	}
	var e schema.AgentEvent
	if err := json.Unmarshal(m.Payload, &e); err != nil {
		r.t.Errorf("event: %v", err)
		return
	}
	r.mu.Lock()
	r.ids[e.ID] = true // stored ("committed") before W may cover it
	if e.Agent == "box1" {
		if id, ok := r.bySeq[e.Seq]; ok && id != e.ID {
			r.t.Errorf("seq %d: ids %s and %s", e.Seq, id, e.ID)
		}
		r.bySeq[e.Seq] = e.ID
	}
	r.markLocked(e.Agent, e.Seq, e.Seq)
	r.mu.Unlock()
	select {
	case pub <- e.Agent:
	case <-ctx.Done():
	}
}

func (r *recorder) onMissing(ctx context.Context, m mqtt.Message, pub chan<- string) {
	if err := r.schemas.Validate(schema.Missing, m.Payload); err != nil {
		r.t.Errorf("missing declaration does not match its schema: %v\n%s", err, m.Payload)
		return
	}
	var d schema.MissingDoc
	if err := json.Unmarshal(m.Payload, &d); err != nil || d.From > d.To {
		r.t.Errorf("missing declaration %s: %v", m.Payload, err)
		return
	}
	agent := topicAgent(m.Topic)
	r.mu.Lock()
	r.missing = append(r.missing, d)
	r.lost[agent] += d.To - d.From + 1
	r.markLocked(agent, d.From, d.To)
	r.mu.Unlock()
	select {
	case pub <- agent:
	case <-ctx.Done():
	}
}

// topicAgent is the agent of streamqc/v1/{fleet}/{agent}/...
func topicAgent(topic string) string {
	var parts []string
	for i, p := 0, 0; i <= len(topic); i++ {
		if i == len(topic) || topic[i] == '/' {
			parts = append(parts, topic[p:i])
			p = i + 1
		}
	}
	if len(parts) < 4 {
		return ""
	}
	return parts[3]
}

func (r *recorder) markLocked(agent string, from, to uint64) {
	if r.seqs[agent] == nil {
		r.seqs[agent] = map[uint64]bool{}
	}
	w := r.w[agent]
	for s := max(from, w+1); s <= to; s++ {
		r.seqs[agent][s] = true
	}
	for r.seqs[agent][w+1] {
		delete(r.seqs[agent], w+1)
		w++
	}
	r.w[agent] = w
}

// publisher publishes the StoredDoc of the agents named on pub, off the
// message handlers (never publish-and-wait in a handler).
func (r *recorder) publisher(ctx context.Context, c *mqtt.Client, pub <-chan string, done chan<- struct{}) {
	defer close(done)
	for {
		var agent string
		select {
		case <-ctx.Done():
			return
		case agent = <-pub:
		}
		r.mu.Lock()
		doc := schema.StoredDoc{Type: "stored", Consumer: "test-recorder", Seq: r.w[agent], Gap: len(r.seqs[agent]) > 0,
			Lost: r.lost[agent], Time: time.Now().UTC().Format(time.RFC3339Nano)}
		r.mu.Unlock()
		b, _ := json.Marshal(doc)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_ = c.Publish(pctx, mqtt.Message{Topic: schema.NewTopics("test", agent).Stored, Payload: b, QoS: 1, Retained: true})
		cancel()
	}
}

// storedSeqs counts the seqs 1..n of box1 stored.
func (r *recorder) storedSeqs(n uint64) (k int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for s := uint64(1); s <= n; s++ {
		if _, ok := r.bySeq[s]; ok {
			k++
		}
	}
	return k
}

func (r *recorder) watermark(agent string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.w[agent]
}

// testAgent runs an agent (newAgent + run) whose events the test emits.
type testAgent struct {
	*Agent
	stop func()
}

func runTestAgent(t *testing.T, c config.Agent) *testAgent {
	t.Helper()
	a, err := newAgent(Options{Config: c, Version: "test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- a.run(ctx, ready) }()
	<-ready
	ta := &testAgent{Agent: a}
	var once sync.Once
	ta.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("agent: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("agent did not stop")
			}
		})
	}
	t.Cleanup(ta.stop)
	waitUntil(t, "the agent connected", 20*time.Second, a.client.Connected)
	return ta
}

// emitPairs emits n raise/clear pairs (seqs dense from NextSeq) and
// returns the highest seq.
func (a *testAgent) emitPairs(t *testing.T, n int) uint64 {
	t.Helper()
	first := a.spool.Stats().NextSeq
	for i := range n {
		start := float64(first) + float64(i)
		a.emit("s1", detectors.Event{Defect: "black", State: detectors.Raised, Start: start, Values: map[string]float64{"ratio": 1}}, nil)
		a.emit("s1", detectors.Event{Defect: "black", State: detectors.Cleared, Start: start, End: start + 0.5, Cause: "recovered"}, nil)
	}
	last := a.spool.Stats().NextSeq - 1
	if last != first+uint64(2*n)-1 || a.appendErr != 0 {
		t.Fatalf("seqs %d..%d for %d events (%d append errors)", first, last, 2*n, a.appendErr)
	}
	return last
}

func deliveryConfig(t *testing.T, b *mqtttest.Broker, keepUntil string) config.Agent {
	c := agentConfig(t, b, t.TempDir())
	c.Spool.KeepUntil = keepUntil
	c.Spool.ResendAfter = config.Duration(time.Second)
	c.Broker.KeepAlive = config.Duration(2 * time.Second)
	return c
}

// TestBrokerKillLosesNothing is issue 15's test: the broker acknowledges
// events while the consumer of record is away, and is SIGKILLed before it
// saves them. Kept until stored, every event reaches the consumer when it
// comes back and the spool empties once it has stored them. Kept until the
// broker's PUBACK (today's behaviour), they are lost: the same scenario
// shows the loss this protocol removes.
func TestBrokerKillLosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("restarts brokers: skipped with -short")
	}
	tests := []struct {
		keepUntil string
		wantLost  bool
	}{
		{config.KeepStored, false},
		{config.KeepAuto, false}, // stored mode from the recorder's first watermark
		{config.KeepBroker, true},
	}
	for _, tc := range tests {
		t.Run(tc.keepUntil, func(t *testing.T) {
			const before, during = 3, 4 // event pairs emitted with the recorder online, then away
			b := mqtttest.Start(t, mqtttest.Options{Persistence: true})
			rec := newRecorder(t, b)
			rec.know("box1")
			rec.start()
			a := runTestAgent(t, deliveryConfig(t, b, tc.keepUntil))
			if tc.keepUntil == config.KeepAuto {
				waitUntil(t, "auto switching to stored mode", 10*time.Second, a.dlv.storedMode)
			}

			last := a.emitPairs(t, before)
			waitUntil(t, "the first events stored", 10*time.Second, func() bool { return rec.storedSeqs(last) == int(last) })
			waitUntil(t, "the spool emptied by the watermark", 10*time.Second, func() bool { return a.spool.Stats().Pending == 0 })
			if w := rec.watermark("box1"); w != 2*before {
				t.Fatalf("watermark %d, want %d", w, 2*before)
			}

			// The recorder goes away; its session (subscriptions) was saved
			// by a clean broker restart, as a long-running broker's autosave
			// would have done.
			rec.offline()
			b.Stop()
			b.Start()
			waitUntil(t, "the agent reconnected", 20*time.Second, a.client.Connected)

			last = a.emitPairs(t, during)
			waitUntil(t, "the broker's PUBACKs", 10*time.Second, func() bool {
				st := a.spool.Stats()
				return st.Pending == st.Sent
			})
			st := a.spool.Stats()
			t.Logf("acknowledged by the broker, before its SIGKILL: spool pending %d, sent %d", st.Pending, st.Sent)
			b.Kill()
			b.Start()
			rec.start()

			if tc.wantLost {
				// Nothing comes: what the broker had acknowledged died with
				// it. A later event marks the end: the drain publishes in
				// seq order, so a resend of the lost ones would come first.
				waitUntil(t, "the agent reconnected", 20*time.Second, a.client.Connected)
				marker := a.emitPairs(t, 1)
				waitUntil(t, "the marker events", 20*time.Second, func() bool { return rec.storedSeqs(marker) == int(marker-last)+2*before })
				if n := rec.storedSeqs(last); n != 2*before {
					t.Fatalf("broker mode: %d of %d events stored; expected the %d sent while the consumer was away to be lost",
						n, last, 2*during)
				}
				t.Logf("broker mode: %d events lost to the broker's SIGKILL", 2*during)
				return
			}
			waitUntil(t, "every event stored", 30*time.Second, func() bool { return rec.storedSeqs(last) == int(last) })
			waitUntil(t, "the spool emptied once stored", 10*time.Second, func() bool { return a.spool.Stats().Pending == 0 })
			if w := rec.watermark("box1"); w != last {
				t.Fatalf("watermark %d, want %d", w, last)
			}
			rec.mu.Lock()
			ids := len(rec.ids)
			rec.mu.Unlock()
			if ids != int(last) {
				t.Fatalf("%d distinct ids stored for %d events", ids, last)
			}
			rec.mu.Lock()
			missing := slices.Clone(rec.missing)
			rec.mu.Unlock()
			if len(missing) != 0 {
				t.Fatalf("missing declared: %+v", missing)
			}
			t.Logf("%d events, %d sent while the consumer was away and lost by the broker: all stored", last, 2*during)
		})
	}
}

// publishRetained publishes payload retained (QoS 1) as an operator would.
func publishRetained(t *testing.T, c *mqtt.Client, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, mqtt.Message{Topic: topic, Payload: payload, QoS: 1, Retained: true}); err != nil {
		t.Fatal(err)
	}
}

func storedDoc(seq uint64, gap bool) []byte {
	b, _ := json.Marshal(schema.StoredDoc{Type: "stored", Consumer: "test", Seq: seq, Gap: gap, Time: time.Now().UTC().Format(time.RFC3339Nano)})
	return b
}

// seqCounter counts the arrivals of each event seq of box1, and keeps the
// missing declarations (validated).
type seqCounter struct {
	mu      sync.Mutex
	n       map[uint64]int
	missing []schema.MissingDoc
	order   []string // "e5", "m3-3": arrivals in order
}

func countSeqs(t *testing.T, b *mqtttest.Broker) (*seqCounter, *mqtt.Client) {
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	sc := &seqCounter{n: map[uint64]int{}}
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: fmt.Sprintf("counter-%d", time.Now().UnixNano()), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	top := schema.NewTopics("test", "box1")
	// One subscription for both topics: one handler sees them in arrival order.
	c.Subscribe(top.Events+"/#", 1, func(m mqtt.Message) {
		switch m.Topic {
		case top.Events:
			var e schema.AgentEvent
			_ = json.Unmarshal(m.Payload, &e)
			sc.mu.Lock()
			sc.n[e.Seq]++
			sc.order = append(sc.order, fmt.Sprintf("e%d", e.Seq))
			sc.mu.Unlock()
		case top.Missing:
			if err := s.Validate(schema.Missing, m.Payload); err != nil {
				t.Errorf("missing declaration does not match missing.schema.json: %v\n%s", err, m.Payload)
			}
			var d schema.MissingDoc
			_ = json.Unmarshal(m.Payload, &d)
			sc.mu.Lock()
			sc.missing = append(sc.missing, d)
			sc.order = append(sc.order, fmt.Sprintf("m%d-%d", d.From, d.To))
			sc.mu.Unlock()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(time.Second); cancel() })
	return sc, c
}

func (s *seqCounter) count(seq uint64) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[seq]
}

func (s *seqCounter) snapshot() (map[uint64]int, []schema.MissingDoc, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := make(map[uint64]int, len(s.n))
	for k, v := range s.n {
		n[k] = v
	}
	return n, slices.Clone(s.missing), slices.Clone(s.order)
}

// TestDeliveryGapAndMissing: a gap report has the agent send again from the
// watermark, after declaring (validated MissingDoc, published first) the
// seqs its spool no longer holds; a watermark deletes.
func TestDeliveryGapAndMissing(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sc, op := countSeqs(t, b)
	c := deliveryConfig(t, b, config.KeepStored)
	c.Spool.ResendAfter = config.Duration(time.Hour) // only gaps resend here
	a := runTestAgent(t, c)
	top := a.topics
	a.emitPairs(t, 4) // seqs 1..8
	waitUntil(t, "8 events sent", 10*time.Second, func() bool { return sc.count(8) == 1 && a.spool.Stats().Sent == 8 })

	// Gap: the consumer has 1..2 and something above. Seq 4 is gone from
	// the spool (as if dropped): declared missing, then 3, 5..8 again.
	if err := a.spool.Ack(4); err != nil {
		t.Fatal(err)
	}
	publishRetained(t, op, top.Stored, storedDoc(2, true))
	waitUntil(t, "3 and 5..8 sent again", 10*time.Second, func() bool { return sc.count(3) == 2 && sc.count(8) == 2 })
	n, missing, order := sc.snapshot()
	if n[1] != 1 || n[2] != 1 {
		t.Fatalf("stored events sent again: %v", n)
	}
	if len(missing) != 0 {
		t.Fatalf("declared missing %+v although 3 is in the spool", missing)
	}
	// Now the consumer reports 3 stored and a gap: the resend is being
	// stored (its watermark moved); 4, which it cannot send, is declared
	// missing (dropped) at once, and nothing is sent again.
	publishRetained(t, op, top.Stored, storedDoc(3, true))
	waitUntil(t, "4 declared missing", 10*time.Second, func() bool { _, m, _ := sc.snapshot(); return len(m) == 1 })
	n, missing, _ = sc.snapshot()
	if len(missing) != 1 || missing[0].From != 4 || missing[0].To != 4 || missing[0].Reason != "dropped" {
		t.Fatalf("missing declarations %+v, want 4..4 dropped", missing)
	}
	// The same report again (the consumer republishes a gap that does not
	// move): 4 is declared missing again before 5..8 are sent again.
	publishRetained(t, op, top.Stored, storedDoc(3, true))
	waitUntil(t, "5..8 sent a third time", 10*time.Second, func() bool { return sc.count(5) == 3 && sc.count(8) == 3 })
	n, missing, order = sc.snapshot()
	if len(missing) != 2 || missing[1].From != 4 || missing[1].To != 4 || missing[1].Reason != "dropped" {
		t.Fatalf("missing declarations %+v, want 4..4 dropped twice", missing)
	}
	// In arrival order: the second declaration, then the third 5.
	var decl, fives int
	for _, o := range order {
		switch {
		case o == "m4-4":
			decl++
		case o == "e5":
			fives++
			if fives == 3 && decl != 2 {
				t.Fatalf("5 was sent a third time before the second missing declaration: %v", order)
			}
		}
	}
	if n[3] != 2 {
		t.Fatalf("3 (stored) sent again: %d times", n[3])
	}
	if st := a.spool.Stats(); st.Pending != 4 || st.Stored != 3 {
		t.Fatalf("spool %+v: want 5..8 pending, watermark 3", st)
	}

	// Behind without a gap: the watermark deletes what it covers, nothing
	// is sent at once.
	publishRetained(t, op, top.Stored, storedDoc(6, false))
	waitUntil(t, "1..6 deleted", 10*time.Second, func() bool { st := a.spool.Stats(); return st.Pending == 2 && st.Stored == 6 })
	publishRetained(t, op, top.Stored, storedDoc(8, false))
	waitUntil(t, "the spool emptied", 10*time.Second, func() bool { return a.spool.Stats().Pending == 0 })
	if n, _, _ := sc.snapshot(); n[7] != 3 || n[8] != 3 {
		t.Fatalf("7, 8 sent %d, %d times; want 3 (no resend without a gap here)", n[7], n[8])
	}
	f := a.dlv.figures()
	if f.missing != 2 || f.stored != 8 || f.resends != 2 || f.keepUntil != config.KeepStored {
		t.Fatalf("delivery figures %+v", f)
	}
	m := a.collect(newCPUMeter(), time.Second)
	raw, _ := json.Marshal(m)
	if err := a.schemas.Validate(schema.Metrics, raw); err != nil {
		t.Fatalf("metrics: %v\n%s", err, raw)
	}
	if m.Spool.Stored != 8 || m.Spool.Missing != 2 || m.Spool.KeepUntil != "stored" || m.Spool.Sent != 0 {
		t.Fatalf("spool metrics %+v", m.Spool)
	}
}

// TestDeliveryResendAfter: a watermark that stays below what was sent when
// it arrived has the agent send again from it after resend_after, not
// before; one that caught up in time sends nothing again.
func TestDeliveryResendAfter(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sc, op := countSeqs(t, b)
	c := deliveryConfig(t, b, config.KeepStored)
	c.Spool.ResendAfter = config.Duration(2 * time.Second)
	a := runTestAgent(t, c)
	top := a.topics
	a.emitPairs(t, 4) // 1..8
	waitUntil(t, "8 events sent", 10*time.Second, func() bool { return sc.count(8) == 1 && a.spool.Stats().Sent == 8 })

	// Caught up before the timer: nothing again.
	publishRetained(t, op, top.Stored, storedDoc(2, false)) // arms the timer (2 < 8)
	publishRetained(t, op, top.Stored, storedDoc(8, false))
	waitUntil(t, "the spool emptied", 10*time.Second, func() bool { return a.spool.Stats().Pending == 0 })

	a.emitPairs(t, 2) // 9..12
	waitUntil(t, "12 events sent", 10*time.Second, func() bool { return sc.count(12) == 1 && a.spool.Stats().Sent == 4 })
	sentAt := time.Now()
	// The timer armed by the first watermark fires meanwhile: 8 was stored
	// in time, nothing is sent again (it arms itself again for 9..12).
	time.Sleep(time.Duration(c.Spool.ResendAfter) + time.Second) // no signal for "the timer did nothing"
	for seq := uint64(1); seq <= 12; seq++ {
		if n := sc.count(seq); n != 1 {
			t.Fatalf("event %d sent %d times although the watermark caught up in time", seq, n)
		}
	}

	// Behind: 11..12 again after resend_after, from the watermark (the
	// watermark does not arm it again if it is armed: at most 2 periods).
	publishRetained(t, op, top.Stored, storedDoc(10, false))
	waitUntil(t, "11..12 sent again", 10*time.Second, func() bool { return sc.count(11) == 2 && sc.count(12) == 2 })
	if d := time.Since(sentAt); d < time.Duration(c.Spool.ResendAfter) {
		t.Fatalf("sent again %s after they were sent, before resend_after %s", d, time.Duration(c.Spool.ResendAfter))
	}
	if n := sc.count(10); n != 1 {
		t.Fatalf("stored event 10 sent again (%d times)", n)
	}
	if st := a.spool.Stats(); st.Pending != 2 || st.Stored != 10 {
		t.Fatalf("spool %+v", st)
	}
	if f := a.dlv.figures(); f.resends != 1 || f.missing != 0 {
		t.Fatalf("figures %+v", f)
	}
}

// TestDeliveryAutoAndBadWatermarks: in auto mode the agent deletes on
// PUBACK until a valid StoredDoc for it arrives; garbage on its stored
// topic and watermarks of other agents change nothing (and panic nothing).
func TestDeliveryAutoAndBadWatermarks(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sc, op := countSeqs(t, b)
	a := runTestAgent(t, deliveryConfig(t, b, config.KeepAuto))
	top := a.topics

	garbage := [][]byte{
		[]byte("{"),
		[]byte("null"),
		[]byte(`"stored"`),
		[]byte(`{"type":"stored"}`),
		[]byte(`{"type":"stored","consumer":"x","seq":-1,"time":"2026-12-04T00:00:00Z"}`),
		[]byte(`{"type":"stored","consumer":"x","seq":1e30,"time":"2026-12-04T00:00:00Z"}`),
		[]byte(`{"type":"thumbnail","consumer":"x","seq":1,"time":"2026-12-04T00:00:00Z"}`),
		[]byte(`{"type":"stored","consumer":"","seq":1,"time":"2026-12-04T00:00:00Z"}`),
		[]byte(`{"type":"stored","consumer":"x","seq":1,"gap":"yes","time":"2026-12-04T00:00:00Z"}`),
		[]byte(`{"type":"stored","consumer":"x","seq":1,"time":"2026-12-04T00:00:00Z","extra":1}`),
		make([]byte, 64<<10),
	}
	for _, g := range garbage {
		publishRetained(t, op, top.Stored, g)
	}
	// Another agent's watermark, valid, with a gap.
	publishRetained(t, op, schema.NewTopics("test", "box2").Stored, storedDoc(1000, true))
	publishRetained(t, op, schema.NewTopics("other", "box1").Stored, storedDoc(1000, true))
	// A marker the agent does see after all that: an empty retained
	// payload (a cleared watermark), then events.
	publishRetained(t, op, top.Stored, nil)
	a.emitPairs(t, 2)
	waitUntil(t, "events deleted on PUBACK (broker mode)", 10*time.Second, func() bool {
		return sc.count(4) == 1 && a.spool.Stats().Pending == 0
	})
	waitUntil(t, "the garbage handled", 10*time.Second, func() bool { return len(a.dlv.docs) == 0 })
	if a.dlv.storedMode() {
		t.Fatal("garbage or another agent's watermark switched auto to stored mode")
	}
	if f := a.dlv.figures(); f.stored != 0 || f.resends != 0 || f.keepUntil != config.KeepBroker {
		t.Fatalf("figures after garbage: %+v", f)
	}

	// A valid watermark: stored mode from now on.
	publishRetained(t, op, top.Stored, storedDoc(4, false))
	waitUntil(t, "auto switching to stored mode", 10*time.Second, a.dlv.storedMode)
	a.emitPairs(t, 1) // 5, 6
	waitUntil(t, "5..6 sent and kept", 10*time.Second, func() bool {
		st := a.spool.Stats()
		return sc.count(6) == 1 && st.Sent == 2 && st.Pending == 2
	})
	publishRetained(t, op, top.Stored, storedDoc(6, false))
	waitUntil(t, "5..6 deleted once stored", 10*time.Second, func() bool { return a.spool.Stats().Pending == 0 })
	if n, m, _ := sc.snapshot(); len(m) != 0 || n[1] != 1 || n[5] != 1 {
		t.Fatalf("arrivals %v, missing %+v", n, m)
	}

	// Remembered across a restart: stored mode from the start, before the
	// retained watermark arrives.
	a.stop()
	c := a.cfg
	a2, err := newAgent(Options{Config: c, Version: "test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.spool.Close()
	if !a2.dlv.storedMode() {
		t.Fatal("auto mode forgot the consumer of record across a restart")
	}
	c.StateDir = t.TempDir()
	a3, err := newAgent(Options{Config: c, Version: "test", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a3.spool.Close()
	if a3.dlv.storedMode() {
		t.Fatal("a fresh agent in auto mode starts in stored mode")
	}
}

// TestOnStoredUnit: a StoredDoc on a topic that is not the agent's is
// ignored even if delivered (defence in depth below the subscription).
func TestOnStoredUnit(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	a := runTestAgent(t, deliveryConfig(t, b, config.KeepStored))
	a.emitPairs(t, 1)
	// Both acknowledged by the broker first: a watermark over events not
	// yet sent counts only the sent ones (TestDeliveryWipedBelowWatermark).
	waitUntil(t, "2 events sent", 10*time.Second, func() bool { return a.spool.Stats().Sent == 2 })
	if arm := a.dlv.onStored(context.Background(), storedMsg{topic: schema.NewTopics("test", "box2").Stored, payload: storedDoc(2, false)}); arm {
		t.Fatal("foreign watermark armed the timer")
	}
	if st := a.spool.Stats(); st.Stored != 0 {
		t.Fatalf("foreign watermark applied: %+v", st)
	}
	a.dlv.onStored(context.Background(), storedMsg{topic: a.topics.Stored, payload: storedDoc(2, false)})
	if st := a.spool.Stats(); st.Stored != 2 || st.Pending != 0 {
		t.Fatalf("own watermark not applied: %+v", st)
	}
}

// TestDeliveryGapResendOncePerGap: a gap report has the agent send again
// from the watermark; the reports that follow while that resend is being
// stored (the watermark moving up, below what was sent again) do not send
// it again; a report that did not move (the consumer's republication while
// the gap lasts), or a gap above what was sent again, does.
func TestDeliveryGapResendOncePerGap(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sc, _ := countSeqs(t, b)
	c := deliveryConfig(t, b, config.KeepStored)
	c.Spool.ResendAfter = config.Duration(time.Hour) // only gaps resend here
	a := runTestAgent(t, c)
	a.emitPairs(t, 4) // 1..8
	waitUntil(t, "8 events sent", 10*time.Second, func() bool { return sc.count(8) == 1 && a.spool.Stats().Sent == 8 })
	ctx := context.Background()
	report := func(seq uint64, gap bool, wantResends uint64) {
		t.Helper()
		a.dlv.onStored(ctx, storedMsg{topic: a.topics.Stored, payload: storedDoc(seq, gap)})
		if f := a.dlv.figures(); f.resends != wantResends {
			t.Fatalf("after the report of %d (gap %v): %d resends, want %d", seq, gap, f.resends, wantResends)
		}
	}
	report(2, true, 1) // a gap: 3..8 again
	waitUntil(t, "3..8 sent again", 10*time.Second, func() bool { return sc.count(8) == 2 })
	report(4, true, 1) // 3, 4 of that resend stored: it goes on
	report(6, true, 1)
	report(6, true, 2) // no move since (republished): 7, 8 again
	waitUntil(t, "7..8 sent a third time", 10*time.Second, func() bool { return sc.count(8) == 3 })
	a.emitPairs(t, 1) // 9, 10
	waitUntil(t, "9, 10 sent", 10*time.Second, func() bool { return sc.count(10) == 1 })
	report(8, true, 3) // a gap above what was sent again: 9, 10 again
	waitUntil(t, "9..10 sent again", 10*time.Second, func() bool { return sc.count(10) == 2 })
	report(10, false, 3)
	report(10, true, 4) // closed, then a new gap at the same watermark
	n, _, _ := sc.snapshot()
	for seq, want := range map[uint64]int{1: 1, 2: 1, 3: 2, 4: 2, 5: 2, 6: 2, 7: 3, 8: 3, 9: 2} {
		if n[seq] != want {
			t.Errorf("event %d sent %d times, want %d (all: %v)", seq, n[seq], want, n)
		}
	}
	if st := a.spool.Stats(); st.Stored != 10 || st.Pending != 0 {
		t.Fatalf("spool %+v", st)
	}
}

// TestDeliveryResendAfterWhileStoring: the resend timer does not send again
// what the consumer is storing (its watermark moved up since the timer was
// armed, still below what was sent); once the watermark stops moving for a
// period, it does.
func TestDeliveryResendAfterWhileStoring(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	sc, _ := countSeqs(t, b)
	c := deliveryConfig(t, b, config.KeepStored)
	c.Spool.ResendAfter = config.Duration(time.Hour) // the test fires the timer itself
	a := runTestAgent(t, c)
	a.emitPairs(t, 4) // 1..8
	waitUntil(t, "8 events sent", 10*time.Second, func() bool { return sc.count(8) == 1 && a.spool.Stats().Sent == 8 })
	ctx := context.Background()
	report := func(seq uint64) bool {
		return a.dlv.onStored(ctx, storedMsg{topic: a.topics.Stored, payload: storedDoc(seq, false)})
	}
	fire := func(wantRearm bool, wantResends uint64) {
		t.Helper()
		if rearm := a.dlv.resendTimer(ctx); rearm != wantRearm {
			t.Fatalf("timer: rearm %v, want %v", rearm, wantRearm)
		}
		if f := a.dlv.figures(); f.resends != wantResends {
			t.Fatalf("timer: %d resends, want %d", f.resends, wantResends)
		}
	}
	if !report(2) { // behind: arms the timer
		t.Fatal("a watermark behind what was sent did not arm the timer")
	}
	report(5)      // the consumer is storing them
	fire(true, 0)  // moved since armed: another period
	fire(false, 1) // did not move for a period: 6..8 again
	waitUntil(t, "6..8 sent again", 10*time.Second, func() bool { return sc.count(8) == 2 })
	if !report(6) {
		t.Fatal("a watermark behind what was sent did not arm the timer after a resend")
	}
	report(8)
	fire(false, 1) // caught up, nothing sent since: done
	n, _, _ := sc.snapshot()
	for seq, want := range map[uint64]int{1: 1, 5: 1, 6: 2, 8: 2} {
		if n[seq] != want {
			t.Errorf("event %d sent %d times, want %d (all: %v)", seq, n[seq], want, n)
		}
	}
	if st := a.spool.Stats(); st.Pending != 0 {
		t.Fatalf("spool %+v", st)
	}
}

// TestDeliveryWipedBelowWatermark: an agent whose state directory was wiped
// hands out seqs 1, 2... again; here it has handed out more (6) than the
// watermark the consumer kept from before (4) by the time that watermark
// arrives, none sent yet (the broker away). The watermark is not about these
// events: they are not deleted unsent; each is deleted once the broker has
// acknowledged it (the only proof it left), those above the watermark once
// stored.
func TestDeliveryWipedBelowWatermark(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	c := deliveryConfig(t, b, config.KeepStored)
	c.Spool.ResendAfter = config.Duration(time.Hour)
	a := runTestAgent(t, c) // a fresh state directory
	b.Stop()
	waitUntil(t, "the agent disconnected", 10*time.Second, func() bool { return !a.client.Connected() })
	a.emitPairs(t, 3) // 1..6, not sent
	a.dlv.onStored(context.Background(), storedMsg{topic: a.topics.Stored, payload: storedDoc(4, false)})
	if st := a.spool.Stats(); st.Pending != 6 {
		t.Fatalf("after a watermark of 4 from before the wipe: spool %+v; want the 6 unsent events kept", st)
	}
	b.Start()
	waitUntil(t, "1..4 deleted on their PUBACK, 5..6 kept until stored", 20*time.Second, func() bool {
		st := a.spool.Stats()
		return st.Pending == 2 && st.Sent == 2
	})
	a.dlv.onStored(context.Background(), storedMsg{topic: a.topics.Stored, payload: storedDoc(6, false)})
	if st := a.spool.Stats(); st.Pending != 0 {
		t.Fatalf("spool %+v after the watermark 6", st)
	}
}
