package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/agent/spool"
	"github.com/streamqc/streamqc/consumer/history"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/testdata/clips"
)

// Delivery end to end (issue 15 item 3), with the real pieces together: a
// Mosquitto with persistence on and no autosave (what it acknowledged since
// its last save dies with a SIGKILL), a real agent (agent.Run) decoding a
// clip with a black section (2 events a run: raised, cleared), and the
// dashboard as the consumer of record, run through `streamqc dashboard`'s
// own wiring (dashboardCmd: its durable session, OnConnect, Recorder,
// SQLite file). A watcher (its own durable session) follows the agent's
// metrics, its stored watermark and its events.

const e2eFleet, e2eAgent = "test", "box1"

// e2eWatch is the test's view of the broker: the agent's metrics, the
// consumer of record's watermark of the agent, the events seen.
type e2eWatch struct {
	t       *testing.T
	top     schema.Topics
	c       *mqtt.Client
	changed chan struct{}

	mu      sync.Mutex
	metrics agent.Metrics
	mseen   int // metrics documents received
	stored  schema.StoredDoc
	ids     map[string]uint64 // event id -> seq
	arrived map[uint64]int    // seq -> arrivals since reset
}

// watch connects the watcher: a durable session (clean session false, a
// fixed id) so that what the agent publishes while it reconnects after a
// broker restart is queued for it as long as its session was saved.
func watch(t *testing.T, b *mqtttest.Broker) *e2eWatch { t.Helper(); return watchAs(t, b, "", "") }

// watchAs is watch with a broker account.
func watchAs(t *testing.T, b *mqtttest.Broker, user, password string) *e2eWatch {
	t.Helper()
	w := &e2eWatch{t: t, top: schema.NewTopics(e2eFleet, e2eAgent), changed: make(chan struct{}, 1),
		ids: map[string]uint64{}, arrived: map[uint64]int{}}
	durable := false
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "e2e-watch", CleanSession: &durable, Username: user, Password: password,
		MaxReconnectInterval: 200 * time.Millisecond, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	c.Subscribe(w.top.Metrics, 1, func(m mqtt.Message) {
		var mt agent.Metrics
		if err := json.Unmarshal(m.Payload, &mt); err != nil {
			t.Errorf("metrics: %v", err)
			return
		}
		w.update(func() { w.metrics, w.mseen = mt, w.mseen+1 })
	})
	c.Subscribe(w.top.Stored, 1, func(m mqtt.Message) {
		if len(m.Payload) == 0 {
			return
		}
		var d schema.StoredDoc
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Errorf("stored: %v", err)
			return
		}
		w.update(func() { w.stored = d })
	})
	c.Subscribe(w.top.Events, 1, func(m mqtt.Message) {
		var e schema.AgentEvent
		if err := json.Unmarshal(m.Payload, &e); err != nil {
			t.Errorf("event: %v", err)
			return
		}
		w.update(func() {
			if s, ok := w.ids[e.ID]; ok && s != e.Seq {
				t.Errorf("event %s with seqs %d and %d", e.ID, s, e.Seq)
			}
			w.ids[e.ID] = e.Seq
			w.arrived[e.Seq]++
		})
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	w.c = c
	t.Cleanup(func() { c.Close(time.Second); cancel() })
	return w
}

func (w *e2eWatch) update(f func()) {
	w.mu.Lock()
	f()
	w.mu.Unlock()
	select {
	case w.changed <- struct{}{}:
	default:
	}
}

// wait waits until ok holds on the watcher's state, checked at every
// message it receives.
func (w *e2eWatch) wait(what string, d time.Duration, ok func(m agent.Metrics, stored schema.StoredDoc) bool) {
	w.t.Helper()
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		w.mu.Lock()
		m, s := w.metrics, w.stored
		w.mu.Unlock()
		if ok(m, s) {
			return
		}
		select {
		case <-w.changed:
		case <-deadline.C:
			w.t.Fatalf("timed out after %s waiting for %s; agent spool %+v, streams %+v; stored watermark %+v",
				d, what, m.Spool, m.Streams, s)
		}
	}
}

// nextMetrics waits for a metrics document published after the call.
func (w *e2eWatch) nextMetrics(d time.Duration) agent.Metrics {
	w.t.Helper()
	w.mu.Lock()
	n := w.mseen
	w.mu.Unlock()
	var got agent.Metrics
	w.wait("new metrics", d, func(m agent.Metrics, _ schema.StoredDoc) bool {
		w.mu.Lock()
		defer w.mu.Unlock()
		got = m
		return w.mseen > n
	})
	return got
}

// resetArrivals forgets which seqs arrived.
func (w *e2eWatch) resetArrivals() {
	w.mu.Lock()
	clear(w.arrived)
	w.mu.Unlock()
}

func (w *e2eWatch) arrivedAll(from, to uint64) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	for s := from; s <= to; s++ {
		if w.arrived[s] == 0 {
			return false
		}
	}
	return true
}

func (w *e2eWatch) seenIDs() map[string]uint64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]uint64, len(w.ids))
	for k, v := range w.ids {
		out[k] = v
	}
	return out
}

// desired publishes the agent's desired config (retained), as an operator.
func (w *e2eWatch) desired(version int, streams ...string) {
	w.t.Helper()
	var list []string
	for _, s := range streams {
		list = append(list, fmt.Sprintf(`{"id":%q,"url":"black.mkv"}`, s))
	}
	payload := fmt.Sprintf(`{"version":%d,"streams":[%s]}`, version, strings.Join(list, ","))
	if streams == nil {
		payload = "" // clears the retained document
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Publish(ctx, mqtt.Message{Topic: w.top.Desired, Payload: []byte(payload), QoS: 1, Retained: true}); err != nil {
		w.t.Fatal(err)
	}
}

// streamEnded: the metrics show stream id at the end of its file.
func streamEnded(m agent.Metrics, id string) bool {
	for _, s := range m.Streams {
		if s.ID == id {
			return s.State == "ended"
		}
	}
	return false
}

// e2eDashboard runs `streamqc dashboard` recording into db; stop ends it
// (a graceful disconnect: its durable session stays on the broker).
func e2eDashboard(t *testing.T, b *mqtttest.Broker, db string, flags ...string) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{make(chan string, 16)}
	errb := &syncBuffer{}
	code := make(chan int, 1)
	args := append([]string{"--broker", b.URL, "--fleet", e2eFleet, "--listen", "127.0.0.1:0", "--db", db}, flags...)
	go func() { code <- dashboardCmd(ctx, args, out, errb) }()
	select {
	case <-out.lines:
	case c := <-code:
		cancel()
		t.Fatalf("dashboard: exit %d: %s", c, errb.String())
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("dashboard: no URL within 20 s")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case c := <-code:
				if c != 0 {
					t.Errorf("dashboard: exit %d: %s", c, errb.String())
				}
			case <-time.After(15 * time.Second):
				t.Error("dashboard: did not stop within 15 s")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tWriter sends log lines to t.Log.
type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// e2eAgentConfig is a real agent's config: keep_until left at its default
// (auto) unless keepUntil says otherwise; resend_after 2 s to keep the test
// short (default 10 s).
func e2eAgentConfig(t *testing.T, b *mqtttest.Broker, media, keepUntil string, streams ...string) config.Agent {
	c := config.DefaultAgent()
	c.Fleet, c.ID = e2eFleet, e2eAgent
	c.StateDir = t.TempDir()
	c.MediaDir = media
	c.Broker.URL = b.URL
	c.MetricsInterval = config.Duration(time.Second)
	c.StopTimeout = config.Duration(5 * time.Second)
	c.Spool.ResendAfter = config.Duration(2 * time.Second)
	if keepUntil != "" {
		c.Spool.KeepUntil = keepUntil
	}
	for _, s := range streams {
		c.Streams = append(c.Streams, config.Stream{ID: s, URL: "black.mkv"})
	}
	return c
}

// e2eRunAgent runs agent.Run; stop ends it gracefully.
func e2eRunAgent(t *testing.T, c config.Agent) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- agent.Run(ctx, agent.Options{Config: c, Version: "test", Logger: logger, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("agent did not start")
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil && !errors.Is(err, context.Canceled) {
					t.Errorf("agent: %v", err)
				}
			case <-time.After(20 * time.Second):
				t.Error("agent did not stop")
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// e2eHistory is what the consumer of record's database holds of box1 (read
// once the dashboard stopped): its events by seq, its mark, and which of
// its raised events have their alarm thumbnail stored (by event id).
type e2eHistory struct {
	bySeq  map[uint64][]history.Record
	mark   history.Mark
	thumbs map[string]bool // raised event id -> its thumbnail is stored, naming it
}

func readHistory(t *testing.T, db string) e2eHistory {
	t.Helper()
	ctx := context.Background()
	st, err := history.Open(ctx, history.Options{Path: db, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h := e2eHistory{bySeq: map[uint64][]history.Record{}, thumbs: map[string]bool{}}
	q := history.Query{Fleet: e2eFleet, Agent: e2eAgent, Limit: history.MaxLimit}
	for {
		page, err := st.Events(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page {
			h.bySeq[r.Seq] = append(h.bySeq[r.Seq], r)
			if r.State == "raised" && r.Thumbnail != "" {
				d, err := st.Thumbnail(ctx, r.Thumbnail)
				switch {
				case errors.Is(err, history.ErrNotFound):
					h.thumbs[r.ID] = false
				case err != nil:
					t.Fatal(err)
				default:
					h.thumbs[r.ID] = d.Event == r.ID && d.Kind == schema.ThumbAlarm && d.Stream == r.Stream && len(d.Data) > 0
				}
			}
		}
		if len(page) < q.Limit {
			break
		}
		q.Before = page[len(page)-1].Cursor()
	}
	marks, err := st.Marks(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range marks {
		if m.Fleet == e2eFleet && m.Agent == e2eAgent {
			h.mark = m
			return h
		}
	}
	t.Fatalf("no mark for %s/%s in %+v", e2eFleet, e2eAgent, marks)
	return h
}

// thumbsOf reports, of the raised events of stream, how many name a
// thumbnail and how many of those are stored.
func (h e2eHistory) thumbsOf(stream string) (named, stored int) {
	for _, recs := range h.bySeq {
		for _, r := range recs {
			if ok, has := h.thumbs[r.ID]; has && r.Stream == stream {
				named++
				if ok {
					stored++
				}
			}
		}
	}
	return named, stored
}

// pendingInSpool opens the stopped agent's spool.
func pendingInSpool(t *testing.T, c config.Agent) spool.Stats {
	t.Helper()
	sp, err := spool.Open(filepath.Join(c.StateDir, "spool"), spool.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	return sp.Stats()
}

func e2eMedia(t *testing.T) string {
	t.Helper()
	tr, err := clips.Ensure(context.Background(), clips.Black)
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(tr[0].File)
}

// TestDeliveryEndToEnd is issue 15's test with the real pieces: the
// consumer of record stores the first events (the agent, keep_until auto,
// switches to stored mode), goes away; the agent emits more, which the
// broker acknowledges; the broker is SIGKILLed (its consumer's session and
// the queued events die with it) and restarted on the same port and
// persistence file; the agent's reconnection resend finds no subscriber;
// the consumer comes back, publishes its watermark (no gap: it lacks the
// newer events altogether), the agent sends them again after resend_after.
// Then: every event the agent emitted is in the database, under its id, the
// watermark is the agent's last seq, none was declared lost, the spool is
// empty. Then the agent restarts with its state directory wiped while the
// database holds that watermark: it moves its seqs past it, and what it
// emits afterwards stays in its spool while the consumer is away and is
// stored when it is back.
func TestDeliveryEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts brokers, decodes clips: skipped with -short")
	}
	// STREAMQC_E2E_KEEP_UNTIL=broker runs it with the agent deleting on
	// PUBACK (the behaviour before issue 15): it fails, events lost.
	keepUntil := os.Getenv("STREAMQC_E2E_KEEP_UNTIL")
	mode := "stored"
	if keepUntil == config.KeepBroker {
		mode = config.KeepBroker
	}
	media := e2eMedia(t)
	b := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	w := watch(t, b)
	// Saved: the watcher's session. Not saved: the dashboard's, made later.
	b.Stop()
	b.Start()
	db := filepath.Join(t.TempDir(), "state", "history.db")
	stopDash := e2eDashboard(t, b, db)
	ac := e2eAgentConfig(t, b, media, keepUntil, "a")
	stopAgent := e2eRunAgent(t, ac)

	// 1. The consumer of record stores the first run's events; the agent
	// switches to stored mode and its watermark empties the spool.
	w.wait("stream a at its end, its events stored, the agent in stored mode", 60*time.Second,
		func(m agent.Metrics, s schema.StoredDoc) bool {
			return streamEnded(m, "a") && m.Spool.Appended >= 2 && s.Seq == m.Spool.Appended &&
				m.Spool.KeepUntil == mode && m.Spool.Pending == 0 &&
				(mode == config.KeepBroker || m.Spool.Stored == s.Seq)
		})
	last1 := w.nextMetrics(5 * time.Second).Spool.Appended
	t.Logf("phase 1: %d events stored, watermark %d, agent in %s mode", last1, last1, mode)

	// 2. The consumer goes away; the agent emits more (stream b), which the
	// broker acknowledges: the spool keeps them.
	stopDash()
	w.desired(1, "b")
	w.wait("stream b at its end, its events acknowledged by the broker", 60*time.Second,
		func(m agent.Metrics, _ schema.StoredDoc) bool {
			return streamEnded(m, "b") && m.Spool.Appended > last1 && m.Spool.Sent == m.Spool.Pending
		})
	m := w.nextMetrics(5 * time.Second)
	last2 := m.Spool.Appended
	if want := int(last2 - last1); m.Spool.Pending != want || m.Spool.Sent != want {
		t.Errorf("with the consumer away: spool pending %d, sent %d; want the %d events emitted meanwhile kept, all acknowledged by the broker",
			m.Spool.Pending, m.Spool.Sent, want)
	}
	if !w.arrivedAll(last1+1, last2) {
		t.Fatalf("the broker did not pass on events %d..%d", last1+1, last2)
	}

	// 3. SIGKILL: what the broker acknowledged since its last save is gone.
	// The agent reconnects and sends its unstored events again; only the
	// watcher (its session saved) is there to get them.
	w.resetArrivals()
	b.Kill()
	b.Start()
	if mode != config.KeepBroker { // (in broker mode there is nothing left to send)
		w.wait("the agent's resend after its reconnection", 30*time.Second, func(agent.Metrics, schema.StoredDoc) bool {
			return w.arrivedAll(last1+1, last2)
		})
	}

	// 4. The consumer of record comes back (a new session: the broker lost
	// its own). It publishes its watermark, which has the agent send the
	// rest again.
	start := time.Now()
	stopDash = e2eDashboard(t, b, db)
	w.wait("every event stored and the spool emptied", 30*time.Second, func(m agent.Metrics, s schema.StoredDoc) bool {
		return s.Seq == last2 && !s.Gap && m.Spool.Pending == 0 && m.Spool.Stored == last2
	})
	m = w.nextMetrics(5 * time.Second)
	t.Logf("phase 4: %d events lost by the broker stored %s after the consumer came back (resend_after %s); agent resends %d, missing %d",
		last2-last1, time.Since(start).Round(100*time.Millisecond), time.Duration(ac.Spool.ResendAfter), m.Spool.Resends, m.Spool.Missing)
	if m.Spool.Missing != 0 || m.Spool.Dropped != 0 {
		t.Errorf("agent declared %d missing, dropped %d", m.Spool.Missing, m.Spool.Dropped)
	}

	// 5. The agent restarts with its state directory wiped: its seqs start
	// at 1 again while the database's watermark is last2. No stream until
	// the watermark arrived (the retained desired config is cleared).
	stopAgent()
	if st := pendingInSpool(t, ac); st.Pending != 0 {
		t.Errorf("the stopped agent's spool holds %d events", st.Pending)
	}
	w.desired(0)
	ac2 := e2eAgentConfig(t, b, media, keepUntil)
	stopAgent = e2eRunAgent(t, ac2)
	w.wait("the wiped agent in stored mode with the database's watermark", 30*time.Second,
		func(m agent.Metrics, _ schema.StoredDoc) bool {
			return m.Spool.KeepUntil == "stored" && m.Spool.Stored == last2 && m.Process.Uptime < 30 && m.Spool.Appended == 0
		})
	// The consumer away, the wiped agent emits (stream c): kept until stored.
	stopDash()
	w.desired(2, "c")
	w.wait("stream c at its end, its events acknowledged by the broker", 60*time.Second,
		func(m agent.Metrics, _ schema.StoredDoc) bool {
			return streamEnded(m, "c") && m.Spool.Appended >= 2 && m.Spool.Sent == m.Spool.Pending
		})
	m = w.nextMetrics(5 * time.Second)
	n3 := m.Spool.Appended
	if m.Spool.Pending != int(n3) || m.Spool.Stored != last2 {
		t.Fatalf("the wiped agent with the consumer away: spool %+v; want its %d events kept", m.Spool, n3)
	}
	stopDash = e2eDashboard(t, b, db)
	last3 := last2 + n3
	w.wait("the wiped agent's events stored above the old watermark, its spool emptied", 30*time.Second,
		func(m agent.Metrics, s schema.StoredDoc) bool {
			return s.Seq == last3 && !s.Gap && m.Spool.Pending == 0 && m.Spool.Stored == last3
		})
	stopAgent()
	stopDash()

	// What the database holds: seqs 1..last3, each under one id, every id
	// the watcher saw among them; the watermark last3, nothing lost.
	h := readHistory(t, db)
	mark := h.mark
	if mark.Seq != last3 || mark.Gap || mark.Lost != 0 || mark.Above != 0 {
		t.Errorf("mark %+v, want watermark %d, no gap, nothing lost", mark, last3)
	}
	stored := map[string]uint64{}
	for seq := uint64(1); seq <= last3; seq++ {
		recs := h.bySeq[seq]
		if len(recs) != 1 {
			t.Errorf("seq %d stored %d times: %v", seq, len(recs), recs)
		}
		for _, r := range recs {
			stored[r.ID] = seq
		}
	}
	if len(h.bySeq) != int(last3) {
		t.Errorf("%d seqs stored, want %d: %v", len(h.bySeq), last3, slices.Sorted(maps.Keys(h.bySeq)))
	}
	// Alarm thumbnails (not spooled, never sent again: best effort): those
	// published with the consumer online (a) or away with its durable
	// session kept (c: this shows the dashboard's session is durable) are
	// stored; those of b died with the broker, the session with them.
	for _, stream := range []string{"a", "b", "c"} {
		named, kept := h.thumbsOf(stream)
		t.Logf("stream %s: %d raised events name a thumbnail, %d of them stored", stream, named, kept)
		if stream != "b" && kept != named {
			t.Errorf("stream %s: %d of the %d alarm thumbnails stored", stream, kept, named)
		}
	}
	if named, _ := h.thumbsOf("a"); named == 0 {
		t.Error("no raised event of stream a names a thumbnail")
	}
	seen := w.seenIDs()
	for id, seq := range seen {
		if got, ok := stored[id]; !ok || got != seq {
			t.Errorf("event %s (seq %d) seen on the broker is not in the database", id, seq)
		}
	}
	if len(seen) != int(last3) {
		t.Errorf("the watcher saw %d distinct events, the agents emitted %d", len(seen), last3)
	}
	t.Logf("%d events in the database (%d before the consumer went away, %d acknowledged then lost by the broker, %d from the wiped agent), watermark %d",
		len(stored), last1, last2-last1, n3, mark.Seq)
}

// seedSpool appends n events of the agent to its spool (the agent
// stopped), as if it had emitted them with the broker out of reach, and
// returns the spool's figures after it: the last seq, and how many
// unacknowledged records the spool dropped to stay within max_bytes.
func seedSpool(t *testing.T, c config.Agent, n int) spool.Stats {
	t.Helper()
	sp, err := spool.Open(filepath.Join(c.StateDir, "spool"), spool.Options{MaxBytes: c.Spool.MaxBytes,
		SegmentBytes: c.Spool.SegmentBytes, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	now := time.Now().UTC().Format(time.RFC3339Nano)
	for range n {
		_, err := sp.AppendFunc(func(seq uint64) ([]byte, error) {
			return fmt.Appendf(nil, `{"type":"defect","id":"%032x","seq":%d,"fleet":%q,"agent":%q,"stream":"seeded","defect":"freeze","state":"raised","start":%d,"time":%q}`,
				seq, seq, e2eFleet, e2eAgent, seq, now), nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return sp.Stats()
}

// shmDir is a directory on tmpfs when there is one (the seeded spool's
// fsyncs cost nothing there), else t.TempDir().
func shmDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("/dev/shm", "streamqc-e2e-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// arrivals counts the arrivals of seqs from..to since the last reset.
func (w *e2eWatch) arrivals(from, to uint64) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for s := from; s <= to; s++ {
		n += w.arrived[s]
	}
	return n
}

// TestDeliveryGapResendBacklog: a backlog the broker lost (SIGKILL, the
// consumer's session with it). The consumer back reports its watermark
// (no gap). Then, either newer events reach it first: it reports a gap, and
// keeps reporting it, W moving, while the agent sends the backlog again; or
// nothing new comes, and the agent's resend timer (resend_after, 1 s here)
// has it sent again, the watermark moving below it meanwhile. Either way the
// backlog is to be sent again about once, not once per StoredDoc or timer
// period while the consumer stores it.
func TestDeliveryGapResendBacklog(t *testing.T) {
	if testing.Short() {
		t.Skip("kills and restarts brokers: skipped with -short")
	}
	t.Run("gap", func(t *testing.T) { backlogResend(t, true) })
	t.Run("resend_after", func(t *testing.T) { backlogResend(t, false) })
}

func backlogResend(t *testing.T, gap bool) {
	const backlog = 3000
	media := e2eMedia(t)
	b := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	w := watch(t, b)
	b.Stop()
	b.Start()
	db := filepath.Join(t.TempDir(), "history.db")
	stopDash := e2eDashboard(t, b, db)
	ac := e2eAgentConfig(t, b, media, config.KeepStored)
	ac.StateDir = shmDir(t)
	ac.Spool.ResendAfter = config.Duration(time.Minute) // only the gap resends
	if !gap {
		ac.Spool.ResendAfter = config.Duration(time.Second) // only the timer resends
	}
	seedSpool(t, ac, 2)
	stopAgent := e2eRunAgent(t, ac)
	w.wait("the first 2 events stored", 30*time.Second, func(m agent.Metrics, s schema.StoredDoc) bool {
		return s.Seq == 2 && m.Spool.Pending == 0 && m.Spool.Stored == 2
	})

	// The consumer away, a backlog reaches the broker, which dies with it.
	stopDash()
	stopAgent()
	last := seedSpool(t, ac, backlog).NextSeq - 1
	stopAgent = e2eRunAgent(t, ac)
	w.wait("the backlog acknowledged by the broker", 60*time.Second, func(m agent.Metrics, _ schema.StoredDoc) bool {
		return m.Spool.Pending == backlog && m.Spool.Sent == backlog
	})
	w.resetArrivals()
	b.Kill()
	b.Start()
	w.wait("the agent's resend after its reconnection", 60*time.Second, func(agent.Metrics, schema.StoredDoc) bool {
		return w.arrivedAll(3, last)
	})
	w.resetArrivals()

	// The consumer back (no gap: W 2, nothing above), then 2 newer events
	// (stream c): a gap.
	start := time.Now()
	stopDash = e2eDashboard(t, b, db)
	w.wait("the consumer's watermark after its reconnection", 30*time.Second, func(_ agent.Metrics, s schema.StoredDoc) bool {
		return s.Seq == 2
	})
	want := last
	if gap {
		w.desired(1, "c")
		want += 2
	}
	w.wait("every event stored, the spool emptied", 90*time.Second, func(m agent.Metrics, s schema.StoredDoc) bool {
		return s.Seq >= want && !s.Gap && m.Spool.Pending == 0
	})
	m := w.nextMetrics(5 * time.Second)
	sent := w.arrivals(3, last)
	t.Logf("gap %v: backlog of %d lost by the broker: stored %s after the consumer came back; sent %d times over (%.1f per event), agent resends %d",
		gap, backlog, time.Since(start).Round(100*time.Millisecond), sent, float64(sent)/backlog, m.Spool.Resends)
	if sent > 2*backlog {
		t.Errorf("the backlog of %d was sent %d times over once the consumer was back (%.1f per event)",
			backlog, sent, float64(sent)/backlog)
	}
	stopAgent()
	stopDash()
}

// TestDeliveryOverflowWithACL: the shipped Mosquitto ACL, every piece on
// its own account (the agent box1, the dashboard recording as
// streamqc-recorder, the watcher as streamqc-operator). While the consumer
// of record is away, the agent's spool (its smallest size, 1 MiB) overflows
// and drops its oldest unstored events. When it is back, the agent declares
// them missing (events/missing), the consumer counts them lost and moves
// its watermark past them (events/stored reaches the agent: its spool
// empties); an alarm's thumbnail is stored.
func TestDeliveryOverflowWithACL(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short")
	}
	const recorderUser, operatorUser = "streamqc-recorder", "streamqc-operator"
	users := map[string]string{e2eAgent: "pw-box1", recorderUser: "pw-recorder", operatorUser: "pw-operator"}
	media := e2eMedia(t)
	b := mqtttest.Start(t, mqtttest.Options{Users: users, ACLFile: "../../packaging/mosquitto/streamqc.acl"})
	w := watchAs(t, b, operatorUser, users[operatorUser])
	db := filepath.Join(t.TempDir(), "history.db")
	dashFlags := []string{"--username", recorderUser, "--password", users[recorderUser]}
	stopDash := e2eDashboard(t, b, db, dashFlags...)
	ac := e2eAgentConfig(t, b, media, "")
	ac.Broker.Username, ac.Broker.Password = e2eAgent, users[e2eAgent]
	ac.StateDir = shmDir(t)
	ac.Spool.MaxBytes, ac.Spool.SegmentBytes = 1<<20, 64<<10 // the smallest the config allows
	seedSpool(t, ac, 2)
	stopAgent := e2eRunAgent(t, ac)
	w.wait("the first 2 events stored, the agent in stored mode", 30*time.Second, func(m agent.Metrics, s schema.StoredDoc) bool {
		return s.Seq == 2 && m.Spool.KeepUntil == "stored" && m.Spool.Pending == 0 && m.Spool.Stored == 2
	})

	// The consumer away, the spool overflows (the agent stopped meanwhile:
	// the events are written as it writes them, by the spool).
	stopDash()
	stopAgent()
	st := seedSpool(t, ac, 6000)
	last, dropped := st.NextSeq-1, st.Dropped
	if dropped == 0 {
		t.Fatalf("the spool did not overflow: %+v", st)
	}
	stopAgent = e2eRunAgent(t, ac)
	stopDash = e2eDashboard(t, b, db, dashFlags...)
	w.wait("the dropped events declared missing, the rest stored, the spool emptied", 60*time.Second,
		func(m agent.Metrics, s schema.StoredDoc) bool {
			return s.Seq == last && !s.Gap && s.Lost == dropped && m.Spool.Pending == 0 && m.Spool.Missing >= dropped
		})

	// An alarm with its picture (stream c) after that.
	w.desired(1, "c")
	w.wait("stream c's events stored", 60*time.Second, func(m agent.Metrics, s schema.StoredDoc) bool {
		return streamEnded(m, "c") && m.Spool.Appended >= 2 && s.Seq == last+m.Spool.Appended && m.Spool.Pending == 0
	})
	stopAgent()
	stopDash()
	h := readHistory(t, db)
	if h.mark.Lost != dropped || h.mark.Gap || h.mark.Seq <= last {
		t.Errorf("mark %+v: want %d lost, the watermark past %d", h.mark, dropped, last)
	}
	for seq := uint64(1); seq <= h.mark.Seq; seq++ {
		gone := seq > 2 && seq < 3+dropped
		if n := len(h.bySeq[seq]); (n == 1) == gone || n > 1 {
			t.Errorf("seq %d stored %d times (dropped from the spool: %v)", seq, n, gone)
		}
	}
	named, kept := h.thumbsOf("c")
	if named == 0 || kept != named {
		t.Errorf("stream c: %d of %d alarm thumbnails stored", kept, named)
	}
	t.Logf("spool overflow with the consumer away: %d of %d events dropped, declared missing, counted lost (%d); watermark %d; alarm thumbnails stored %d/%d",
		dropped, last-2, h.mark.Lost, h.mark.Seq, kept, named)
}
