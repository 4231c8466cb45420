// Package agent is `streamqc run`: the long-running process of one box. It
// supervises the configured streams, turns their defects into events that
// go to an on-disk spool before they go to the broker, publishes status and
// metrics, and takes its config from the fleet over MQTT.
//
//	streams (supervisor) -> events -> spool (fsync) -> MQTT (QoS 1) -> removed on PUBACK,
//	  or once the consumer of record has stored them (keep_until; delivery.go)
//	config/desired (MQTT) -> validate -> persist -> apply as a diff -> config/reported
package agent

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/fleet"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/placement"
	"github.com/streamqc/streamqc/agent/spool"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/analyze"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/thumbnail"
)

// Options of one agent process.
type Options struct {
	Config  config.Agent
	Version string
	Logger  *slog.Logger
	// Ready, when set, is closed once the agent runs its streams (before the
	// broker is necessarily reached).
	Ready chan<- struct{}
	// Accel, when set (the cuda build), measures NVDEC streams on the GPU.
	Accel detectors.Accelerator
}

// Agent is one running `streamqc run`.
type Agent struct {
	cfg     config.Agent
	version string
	log     *slog.Logger
	schemas *schema.Set
	topics  schema.Topics
	policy  fleet.Policy
	store   fleet.Store
	spool   *spool.Spool
	client  *mqtt.Client
	sup     *supervisor.Supervisor
	accel   detectors.Accelerator
	thumbs  *thumbnail.Service // nil: thumbnails off
	// thumbPub orders the thumbnail worker's publishes with the clearing of
	// the retained thumbnails of removed streams; thumbMu guards thumbGone
	// (the main loop takes only thumbMu: a slow broker never holds it up).
	thumbPub  sync.Mutex
	thumbMu   sync.Mutex
	thumbGone map[string]bool
	upd       *updater
	dlv       *delivery
	cfgKeys   *firmware.Keyring // config.trusted_keys; empty: unsigned documents apply
	started   time.Time
	host      string

	desired chan desiredMsg
	report  chan struct{} // the reported document changed
	metrics chan time.Duration
	restart chan string // an update or a rollback asks for a restart

	mu       sync.Mutex
	agentDoc fleet.Desired
	agentRaw []byte
	fleetDoc *fleet.FleetDesired
	fleetRaw []byte
	verdict  verdict
	// cfgProblem is, per scope (agent, fleet), why the newest document of
	// that scope does not run: refused at load or when it arrived (not
	// stale or repeated ones). The health check of an update reads it.
	cfgProblem map[string]string
	interval   time.Duration
	pending    map[string]int       // stream -> events in the spool
	seqStream  map[uint64]string    // seq -> stream of events in the spool
	open       map[string]openAlarm // stream/defect -> raised alarm
	alarmsMu   sync.Mutex           // orders the writes of the open alarms
	stopping   atomic.Bool          // set when the graceful stop begins
	loopAlive  atomic.Int64         // unix ns of the main loop's last turn
	appendErr  uint64
	events     eventCounts // spooled events by defect and state (Prometheus)
}

type desiredMsg struct {
	fleetWide bool
	payload   []byte
}

// verdict is the last decision on a desired document.
type verdict struct {
	Version int64
	Status  string
	Reason  string
	Scope   string
}

// Run runs the agent until ctx is done, then stops gracefully: streams stop
// and clear their alarms, the spool is flushed to the broker as far as
// Config.StopTimeout allows, and the retained status says offline. After
// installing an update or rolling one back it stops the same way and
// returns an error wrapping firmware.ErrRestart: the caller starts the
// current firmware slot.
func Run(ctx context.Context, o Options) error {
	a, err := newAgent(o)
	if err != nil {
		return err
	}
	return a.run(ctx, o.Ready)
}

func newAgent(o Options) (*Agent, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	cfg := o.Config
	if err := preflightError(startProblems(cfg)); err != nil {
		return nil, err
	}
	cfgKeys, err := loadConfigKeys(cfg)
	if err != nil {
		return nil, err
	}
	schemas, err := schema.Load()
	if err != nil {
		return nil, err
	}
	detDefaults, err := cfg.DetectorDefaults()
	if err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	a := &Agent{
		cfg: cfg, version: o.Version, log: o.Logger, schemas: schemas, accel: o.Accel, cfgKeys: cfgKeys,
		topics: schema.NewTopics(cfg.Fleet, cfg.ID),
		policy: fleet.Policy{
			MediaDir: cfg.MediaDir, Schemes: cfg.Schemes, Detectors: detDefaults, AllowLocalHosts: cfg.AllowLocalHosts,
			MetricsInterval: time.Duration(cfg.MetricsInterval),
		},
		store:      fleet.Store{Dir: filepath.Join(cfg.StateDir, "config")},
		started:    time.Now(),
		host:       host,
		desired:    make(chan desiredMsg, 16),
		report:     make(chan struct{}, 1),
		metrics:    make(chan time.Duration, 1),
		restart:    make(chan string, 1),
		interval:   time.Duration(cfg.MetricsInterval),
		pending:    map[string]int{},
		seqStream:  map[uint64]string{},
		open:       map[string]openAlarm{},
		cfgProblem: map[string]string{},
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	a.spool, err = openSpool(cfg, o.Logger)
	if err != nil {
		return nil, err
	}
	a.recountSpool()
	a.clearStaleAlarms()
	will, _ := json.Marshal(a.status("offline", "connection lost"))
	clientID := defaultClientID(cfg)
	mo := ClientOptions(cfg.Broker, clientID, o.Logger)
	mo.Will = &mqtt.Message{Topic: a.topics.Status, Payload: will, QoS: 1, Retained: true}
	mo.OnConnect = a.onConnect
	a.client, err = mqtt.New(mo)
	if err != nil {
		a.spool.Close()
		return nil, fmt.Errorf("broker: %w", err)
	}
	a.upd = newUpdater(a)
	a.dlv = newDelivery(a)
	a.thumbs = a.newThumbnails()
	return a, nil
}

// ClientOptions are the MQTT connection settings of a broker section (the
// agent's and the consumer commands').
func ClientOptions(b config.Broker, clientID string, logger *slog.Logger) mqtt.Options {
	return mqtt.Options{
		Broker: b.URL, ClientID: clientID, Username: b.Username, Password: b.Password,
		CAFile: b.CAFile, CertFile: b.CertFile, KeyFile: b.KeyFile, ServerName: b.ServerName,
		KeepAlive: time.Duration(b.KeepAlive), Logger: logger,
	}
}

func openSpool(cfg config.Agent, logger *slog.Logger) (*spool.Spool, error) {
	sp, err := spool.Open(filepath.Join(cfg.StateDir, "spool"), spool.Options{
		MaxBytes: cfg.Spool.MaxBytes, SegmentBytes: cfg.Spool.SegmentBytes, Logger: logger,
	})
	if err != nil {
		return nil, fmt.Errorf("spool: %w", err)
	}
	return sp, nil
}

// recountSpool rebuilds the per-stream count of unsent events after a restart.
func (a *Agent) recountSpool() {
	var buf []spool.Record
	after := uint64(0)
	for {
		buf = a.spool.Read(after, 256, buf)
		if len(buf) == 0 {
			return
		}
		for _, r := range buf {
			var e struct {
				Stream string `json:"stream"`
			}
			_ = json.Unmarshal(r.Data, &e)
			a.pending[e.Stream]++
			a.seqStream[r.Seq] = e.Stream
			after = r.Seq
		}
	}
}

func (a *Agent) run(ctx context.Context, ready chan<- struct{}) error {
	defer a.spool.Close()
	streamsCtx, stopStreams := context.WithCancel(context.Background())
	defer stopStreams()
	probe, closeProbe := newBoxProbe(a.log)
	defer closeProbe()
	a.sup = supervisor.New(streamsCtx, supervisor.Options{
		Logger: a.log, Emit: a.emit, Thumbnails: a.thumbs,
		OnState: func(string, supervisor.State) { a.reportChanged() },
		Placer:  placement.New(probe, placement.Config{Logger: a.log}),
		Accel:   a.accel,
	})
	servePrometheus, stopPrometheus, err := a.startPrometheus()
	if err != nil {
		return err
	}
	defer stopPrometheus()
	a.upd.start()
	a.loadConfig()
	servePrometheus()
	if ready != nil {
		close(ready)
	}
	a.log.Info("agent running", "fleet", a.cfg.Fleet, "agent", a.cfg.ID, "version", a.version,
		"broker", a.cfg.Broker.URL, "streams", len(a.sup.Status()), "spooled", a.spool.Stats().Pending)

	netCtx, stopNet := context.WithCancel(context.Background())
	defer stopNet()
	a.client.Subscribe(a.topics.Desired, 1, func(m mqtt.Message) { a.onDesired(ctx, false, m.Payload) })
	a.client.Subscribe(a.topics.FleetDesired, 1, func(m mqtt.Message) { a.onDesired(ctx, true, m.Payload) })
	a.upd.subscribe(a.client)
	a.dlv.subscribe(ctx, a.client)
	a.client.Start(netCtx)
	var wg sync.WaitGroup
	drainCtx, stopDrain := context.WithCancel(netCtx)
	jobsCtx, stopJobs := context.WithCancel(netCtx)
	wg.Add(5)
	go func() { defer wg.Done(); a.upd.run(jobsCtx) }()
	go func() { defer wg.Done(); a.dlv.run(netCtx) }()
	go func() { defer wg.Done(); a.client.Drain(drainCtx, a.topics.Events, outbox{a}, 32) }()
	go func() { defer wg.Done(); a.reporter(netCtx) }()
	go func() { defer wg.Done(); a.publishMetrics(netCtx) }()
	if a.thumbs != nil {
		wg.Add(1)
		go func() { defer wg.Done(); a.thumbs.Run(netCtx) }()
	}

	a.notify(daemon.SdNotifyReady)
	go a.watchdog(netCtx)
	alive := time.NewTicker(time.Second)
	defer alive.Stop()
	restart := ""
	for ctx.Err() == nil && restart == "" {
		a.loopAlive.Store(time.Now().UnixNano())
		select {
		case <-ctx.Done():
		case <-alive.C:
		case m := <-a.desired:
			a.applyDesired(m)
		case restart = <-a.restart:
		}
	}

	// Graceful stop: clears first, then the spool to the broker, then offline.
	a.log.Info("stopping", "restart", restart)
	a.stopping.Store(true)
	stopJobs()
	if restart == "" && os.Getenv(firmware.EnvSlot) == "" {
		// Not when the launcher starts the next version in this same
		// service (STOPPING=1 would have systemd take the service as
		// ending), nor from a slot's child: its launcher says it, once.
		a.notify(daemon.SdNotifyStopping)
	}
	deadline := time.Now().Add(time.Duration(a.cfg.StopTimeout))
	stopCtx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	if err := a.sup.Stop(stopCtx); err != nil {
		a.log.Warn("stop", "err", err)
	}
	stopStreams()
	// PUBACKs, not storage: unstored events are sent again after the restart.
	unsent := func() int { st := a.spool.Stats(); return st.Pending - st.Sent }
	for unsent() > 0 && a.client.Connected() && time.Until(deadline) > 500*time.Millisecond {
		time.Sleep(20 * time.Millisecond)
	}
	if st := a.spool.Stats(); st.Pending > 0 {
		a.log.Warn("events left in the spool for the next start", "events", st.Pending, "unsent", st.Pending-st.Sent)
	}
	stopDrain()
	if a.client.Connected() {
		why := "stopped"
		if restart != "" {
			why = "restarting: " + restart
		}
		b, _ := json.Marshal(a.status("offline", why))
		pctx, pcancel := context.WithTimeout(context.Background(), max(time.Until(deadline), time.Second))
		if err := a.client.Publish(pctx, mqtt.Message{Topic: a.topics.Status, Payload: b, QoS: 1, Retained: true}); err != nil {
			a.log.Warn("offline status not published", "err", err)
		}
		pcancel()
	}
	stopNet()
	a.client.Close(time.Second)
	wg.Wait()
	if restart != "" {
		a.log.Info("stopped; restarting", "why", restart)
		return fmt.Errorf("%s: %w", restart, firmware.ErrRestart)
	}
	a.log.Info("stopped")
	return nil
}

// requestRestart asks the main loop to stop gracefully and return
// firmware.ErrRestart.
func (a *Agent) requestRestart(reason string) {
	select {
	case a.restart <- reason:
	default: // one is already asked for
	}
}

// status is the retained status document (the offline form is also the will).
type statusDoc struct {
	State    string `json:"state"`
	Fleet    string `json:"fleet"`
	Agent    string `json:"agent"`
	Version  string `json:"version"`
	Hostname string `json:"hostname,omitempty"`
	Started  string `json:"started,omitempty"`
	Time     string `json:"time,omitempty"`
	Reason   string `json:"reason,omitempty"`
}

func (a *Agent) status(state, reason string) statusDoc {
	s := statusDoc{State: state, Fleet: a.cfg.Fleet, Agent: a.cfg.ID, Version: a.version, Hostname: a.host,
		Started: a.started.UTC().Format(time.RFC3339Nano), Reason: reason}
	if reason != "connection lost" {
		// The will is fixed when the session opens: a time in it would lie.
		s.Time = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return s
}

// onConnect runs after every (re)connect, on its own goroutine.
func (a *Agent) onConnect(ctx context.Context, c *mqtt.Client) {
	if a.stopping.Load() {
		return // an online status now could land after the offline one
	}
	b, _ := json.Marshal(a.status("online", ""))
	if err := c.Publish(ctx, mqtt.Message{Topic: a.topics.Status, Payload: b, QoS: 1, Retained: true}); err != nil {
		a.log.Warn("online status not published", "err", err)
	}
	a.reportChanged()
	select {
	case a.metrics <- 0:
	default:
	}
	a.upd.onConnect(ctx)
}

// emit makes one event durable in the spool; the drain goroutine publishes
// it. A raised alarm's event names its thumbnail (shot), which learns the
// event's id once the event is spooled.
func (a *Agent) emit(stream string, e detectors.Event, shot *thumbnail.Shot) {
	for k, v := range e.Values {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(e.Values, k)
		}
	}
	ev := schema.AgentEvent{DefectEvent: analyze.NewJSONEvent(stream, e), ID: newID(), Fleet: a.cfg.Fleet, Agent: a.cfg.ID,
		Time: time.Now().UTC().Format(time.RFC3339Nano)}
	if shot != nil {
		ev.Thumbnail = shot.ID
	}
	if e.State == detectors.Raised {
		a.trackAlarm(stream, e)
	}
	// The payload carries its spool seq, so it is built inside the append;
	// appends of concurrent streams share one fsync.
	seq, err := a.spool.AppendFunc(func(seq uint64) ([]byte, error) {
		ev.Seq = seq
		b, err := json.Marshal(ev)
		if err == nil {
			a.mu.Lock()
			a.pending[stream]++
			a.seqStream[seq] = stream
			a.mu.Unlock()
		}
		return b, err
	})
	if shot != nil && err == nil {
		shot.Event = ev.ID
	}
	if e.State == detectors.Cleared && err == nil {
		// A clear that is not in the spool must stay open for the next start.
		a.trackAlarm(stream, e)
	}
	if err == nil {
		a.events.add(e.Defect, e.State)
	}
	if err != nil {
		// Not durable and not sent: say so loudly with the whole event, and count it.
		a.mu.Lock()
		a.appendErr++
		if _, ok := a.seqStream[seq]; ok && seq != 0 {
			delete(a.seqStream, seq)
			a.pending[stream]--
		}
		a.mu.Unlock()
		a.log.Error("event could not be spooled", "err", err, "stream", stream, "defect", e.Defect,
			"state", e.State, "start", e.Start, "id", ev.ID)
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// outbox is the spool as the drain sees it, keeping the per-stream counts.
type outbox struct{ a *Agent }

func (o outbox) Read(after uint64, max int, buf []spool.Record) []spool.Record {
	return o.a.spool.Read(after, max, buf)
}

func (o outbox) Notify() <-chan struct{} { return o.a.spool.Notify() }

func (o outbox) Ack(seq uint64) error {
	deleted, err := o.a.dlv.sent(seq)
	if err != nil || !deleted {
		return err // in stored mode, collect forgets the counts below the oldest pending
	}
	o.a.mu.Lock()
	if s, ok := o.a.seqStream[seq]; ok {
		delete(o.a.seqStream, seq)
		if o.a.pending[s]--; o.a.pending[s] <= 0 {
			delete(o.a.pending, s)
		}
	}
	o.a.mu.Unlock()
	return nil
}

func (a *Agent) reportChanged() {
	select {
	case a.report <- struct{}{}:
	default:
	}
}

// reporter publishes the reported document when it changes (and after every
// connect); stream state changes are batched over 200 ms.
func (a *Agent) reporter(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-a.report:
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
		if !a.client.Connected() {
			continue // onConnect asks again
		}
		b, err := json.Marshal(a.reported())
		if err != nil {
			a.log.Error("reported config", "err", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = a.client.Publish(pctx, mqtt.Message{Topic: a.topics.Reported, Payload: b, QoS: 1, Retained: true})
		cancel()
		if err != nil && ctx.Err() == nil {
			a.log.Warn("reported config not published", "err", err)
			a.reportChanged()
		}
	}
}

// Reported is the agent's answer on config/reported.
type Reported struct {
	Version        int64            `json:"version"`
	Status         string           `json:"status"`
	Reason         string           `json:"reason,omitempty"`
	Scope          string           `json:"scope,omitempty"`
	AppliedVersion int64            `json:"applied_version"`
	FleetVersion   int64            `json:"fleet_version"`
	Time           string           `json:"time"`
	Streams        []ReportedStream `json:"streams"`
}

// ReportedStream is one stream's state in the reported document.
type ReportedStream struct {
	ID    string `json:"id"`
	State string `json:"state"`
	Error string `json:"error,omitempty"`
}

func (a *Agent) reported() Reported {
	a.mu.Lock()
	r := Reported{Version: a.verdict.Version, Status: a.verdict.Status, Reason: a.verdict.Reason, Scope: a.verdict.Scope,
		AppliedVersion: a.agentDoc.Version, Time: time.Now().UTC().Format(time.RFC3339Nano), Streams: []ReportedStream{}}
	if r.Status == "" {
		r.Status, r.Version, r.Scope = "accepted", a.agentDoc.Version, "agent"
	}
	if a.fleetDoc != nil {
		r.FleetVersion = a.fleetDoc.Version
	}
	a.mu.Unlock()
	for _, s := range a.sup.Status() {
		r.Streams = append(r.Streams, ReportedStream{ID: s.ID, State: string(s.State), Error: s.Error})
	}
	return r
}

// onDesired hands a desired document to the main loop; it runs on the MQTT
// dispatch goroutine and must not block for long.
func (a *Agent) onDesired(ctx context.Context, fleetWide bool, payload []byte) {
	select {
	case a.desired <- desiredMsg{fleetWide: fleetWide, payload: payload}:
	case <-ctx.Done():
	}
}

// loadConfig starts what was last accepted, or the local file's streams.
func (a *Agent) loadConfig() {
	agentRaw, fleetRaw, err := a.store.Load()
	if err != nil {
		a.log.Error("stored config unreadable; starting from the local file", "err", err)
	}
	a.agentDoc = fleet.Desired{Version: 0, Streams: a.cfg.Streams}
	if fleetRaw != nil {
		if f, doc, err := a.openFleet(fleetRaw); err != nil {
			a.log.Error("stored fleet config refused", "err", err)
			a.cfgProblem["fleet"] = "stored fleet config refused: " + err.Error()
		} else {
			a.fleetDoc, a.fleetRaw = &f, doc
		}
	}
	if agentRaw != nil {
		if d, doc, err := a.openAgent(agentRaw); err != nil {
			a.log.Error("stored desired config refused; starting from the local file", "err", err)
			a.cfgProblem["agent"] = "stored desired config refused: " + err.Error()
		} else {
			a.agentDoc, a.agentRaw = d, doc
		}
	}
	eff, err := fleet.Resolve(a.policy, a.fleetDoc, &a.agentDoc)
	if err != nil {
		a.log.Error("config does not apply; no stream runs until a valid one arrives", "version", a.agentDoc.Version, "err", err)
		a.verdict = verdict{Version: a.agentDoc.Version, Status: "rejected", Reason: err.Error(), Scope: "agent"}
		a.cfgProblem["agent"] = err.Error()
		return
	}
	a.interval = eff.MetricsInterval
	d := a.sup.Apply(eff.Streams)
	a.log.Info("config applied", "version", a.agentDoc.Version, "started", d.Started)
}

// applyDesired validates a desired document and applies it as a diff, or
// rejects it and keeps the running config. Either way the verdict is reported.
func (a *Agent) applyDesired(m desiredMsg) {
	scope := "agent"
	if m.fleetWide {
		scope = "fleet"
	}
	if len(bytes.TrimSpace(m.payload)) == 0 {
		a.log.Info("desired config deleted on the broker; keeping the running config", "scope", scope)
		return
	}
	// reject refuses the document; a problem (not a stale or repeated
	// version) means the newest config of this scope does not run.
	reject := func(version int64, err error, problem bool) {
		a.log.Warn("desired config rejected", "scope", scope, "version", version, "err", err)
		a.mu.Lock()
		a.verdict = verdict{Version: version, Status: "rejected", Reason: fleet.Shorten(err.Error(), 4096), Scope: scope}
		if problem {
			a.cfgProblem[scope] = fmt.Sprintf("version %d rejected: %v", version, err)
		}
		a.mu.Unlock()
		a.reportChanged()
	}
	version := schema.PeekVersion(m.payload)
	// Signature first: a document not signed as config.trusted_keys wants
	// is not the operators', so it is no problem of the running config.
	doc, oerr := a.openDesired(m.fleetWide, m.payload)
	if oerr != nil {
		reject(version, oerr, false)
		return
	}
	a.mu.Lock()
	agentDoc, fleetDoc, agentRaw, fleetRaw := a.agentDoc, a.fleetDoc, a.agentRaw, a.fleetRaw
	a.mu.Unlock()
	var (
		eff     fleet.Effective
		err     error
		newDoc  fleet.Desired
		newFlt  *fleet.FleetDesired
		current = agentDoc.Version
		curRaw  = agentRaw
	)
	if m.fleetWide {
		current, curRaw = 0, fleetRaw
		if fleetDoc != nil {
			current = fleetDoc.Version
		}
		f, perr := fleet.ParseFleet(a.schemas, doc)
		if perr != nil {
			reject(version, perr, true)
			return
		}
		newFlt, newDoc = &f, agentDoc
	} else {
		d, perr := fleet.ParseDesired(a.schemas, doc)
		if perr != nil {
			reject(version, perr, true)
			return
		}
		newDoc, newFlt = d, fleetDoc
	}
	a.mu.Lock()
	lastRejected := a.verdict.Status == "rejected" && a.verdict.Version == version && a.verdict.Scope == scope
	a.mu.Unlock()
	switch {
	case version == current && sameJSON(doc, curRaw) && !lastRejected:
		return // the retained document again, after a reconnect
	case version == current && !sameJSON(doc, curRaw):
		reject(version, fmt.Errorf("version %d is already applied with other content: raise the version", version), false)
		return
	case version < current:
		reject(version, fmt.Errorf("stale version %d: version %d is applied", version, current), false)
		return
	}
	eff, err = fleet.Resolve(a.policy, newFlt, &newDoc)
	if err != nil {
		reject(version, err, true)
		return
	}
	if m.fleetWide {
		err = a.store.SaveFleet(m.payload)
	} else {
		err = a.store.SaveAgent(m.payload)
	}
	if err != nil {
		reject(version, fmt.Errorf("not persisted, not applied: %w", err), true)
		return
	}
	a.keepThumbnails(eff.Streams)
	d := a.sup.Apply(eff.Streams)
	a.clearThumbnails(d.Stopped)
	a.mu.Lock()
	if m.fleetWide {
		a.fleetDoc, a.fleetRaw = newFlt, doc
	} else {
		a.agentDoc, a.agentRaw = newDoc, doc
	}
	a.verdict = verdict{Version: version, Status: "accepted", Scope: scope}
	delete(a.cfgProblem, scope)
	changed := a.interval != eff.MetricsInterval
	a.interval = eff.MetricsInterval
	a.mu.Unlock()
	if changed {
		select {
		case a.metrics <- eff.MetricsInterval:
		default:
		}
	}
	a.log.Info("desired config applied", "scope", scope, "version", version,
		"started", d.Started, "stopped", d.Stopped, "restarted", d.Restarted, "unchanged", len(d.Unchanged))
	a.reportChanged()
}

func sameJSON(a, b []byte) bool {
	if b == nil {
		return false
	}
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}
