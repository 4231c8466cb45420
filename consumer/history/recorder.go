package history

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/consumer"
	"github.com/streamqc/streamqc/schema"
)

// Broker is what the Recorder needs of an MQTT session; *mqtt.Client has it.
type Broker interface {
	Subscribe(filter string, qos byte, h func(mqtt.Message))
	Publish(ctx context.Context, m mqtt.Message) error
}

// RecorderOptions of NewRecorder.
type RecorderOptions struct {
	// Fleet is the fleet recorded ("" for every fleet the broker lets us
	// read).
	Fleet string
	// Name is the consumer of record's name, in every StoredDoc (required).
	Name string
	// Client is the MQTT session: a durable one (mqtt.Options CleanSession
	// false and a fixed ClientID) so that the broker queues events while
	// the recorder is away, whose Options.OnConnect calls
	// Recorder.OnConnect. See the package doc.
	Client Broker
	Logger *slog.Logger
	// OnEvent is called with every new event once it is durably stored
	// (not for duplicates), in commit order, from Run's goroutine.
	OnEvent func(Record)
	// OnThumbnail is called with every alarm thumbnail once stored, and
	// with live thumbnails as they arrive (not stored) when
	// LiveThumbnails is set; from Run's goroutine.
	OnThumbnail    func(schema.ThumbnailDoc)
	LiveThumbnails bool
}

// Timing of the StoredDoc publications (protocol.md, consumer of record 4).
const (
	// minRepublish: at most ~5 StoredDocs per second per agent.
	minRepublish = 200 * time.Millisecond
	// gapRepublish: while a gap lasts, the StoredDoc is sent again this
	// often, so the agent resends from W+1.
	gapRepublish = 5 * time.Second
	tick         = 100 * time.Millisecond
	// maxEventBytes bounds an event payload (an event is a few hundred bytes).
	maxEventBytes = 64 << 10
	publishWait   = 10 * time.Second
)

// RecorderStats counts what the Recorder saw since it was made.
type RecorderStats struct {
	Events     uint64 `json:"events"`     // event payloads received
	Stored     uint64 `json:"stored"`     // new events stored
	Duplicates uint64 `json:"duplicates"` // events already stored (resent)
	Invalid    uint64 `json:"invalid"`    // payloads refused by the schema (or too big)
	// Nonconforming: events that failed this build's schema but carried
	// what the history needs (an agent newer than the dashboard: a new
	// defect, a new field), stored as they are.
	Nonconforming uint64 `json:"nonconforming"`
	// PassedOver: seqs of events refused although their agent was known,
	// recorded as lost so that its watermark does not stop at them.
	PassedOver uint64 `json:"passed_over"`
	Forged     uint64 `json:"forged"`     // payloads naming another fleet/agent than their topic, or id collisions
	Missing    uint64 `json:"missing"`    // MissingDocs applied
	Thumbnails uint64 `json:"thumbnails"` // alarm thumbnails stored (duplicates included)
	StoreErrs  uint64 `json:"store_errors"`
	Published  uint64 `json:"published"`      // StoredDocs published
	PubErrs    uint64 `json:"publish_errors"` // failed while connected
}

// Recorder is the fleet's consumer of record: it stores every event it
// receives and publishes, per agent, the watermark of what it stored.
type Recorder struct {
	st  *Store
	o   RecorderOptions
	log *slog.Logger
	sch *schema.Set

	stats struct {
		events, stored, dups, invalid, forged, missing, thumbs, storeErrs, published, pubErrs atomic.Uint64
		nonconforming, passedOver                                                             atomic.Uint64
	}

	// deliveries carries stored events and thumbnails to Run's callbacks.
	deliveries chan delivery
	runDone    chan struct{}
	runOnce    sync.Once

	wake      chan struct{}
	mu        sync.Mutex
	reconnect bool // publish every agent's state
	pending   map[agentKey]*pubState
}

type delivery struct {
	rec   *Record
	thumb *schema.ThumbnailDoc
}

// pubState is what was last published for an agent and what is to be.
type pubState struct {
	mark   Mark
	dirty  bool // mark differs from what was published
	force  bool // publish even if unchanged (after a reconnection)
	last   time.Time
	sent   schema.StoredDoc
	hasPub bool
}

// NewRecorder subscribes the client to the fleet's events, missing
// declarations and alarm thumbnails; call it before the client's Start so
// that a durable session's queued messages find their handlers. One
// Recorder per Store. Run publishes the watermarks.
func NewRecorder(st *Store, o RecorderOptions) (*Recorder, error) {
	if st == nil || o.Client == nil {
		return nil, errors.New("history recorder: a Store and a Client are required")
	}
	if o.Name == "" || len(o.Name) > 128 {
		return nil, fmt.Errorf("history recorder: Name %.140q: want 1 to 128 bytes", o.Name)
	}
	if strings.ContainsAny(o.Fleet, "+#/") {
		return nil, fmt.Errorf("history recorder: Fleet %q: not a fleet name", o.Fleet)
	}
	sch, err := schema.Load()
	if err != nil {
		return nil, fmt.Errorf("history recorder: %w", err)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	r := &Recorder{
		st:         st,
		o:          o,
		log:        o.Logger,
		sch:        sch,
		deliveries: make(chan delivery, 8192),
		runDone:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		pending:    map[agentKey]*pubState{},
	}
	st.mu.Lock()
	taken := st.observe != nil
	if !taken {
		st.observe = r.committed
	}
	st.mu.Unlock()
	if taken {
		return nil, errors.New("history recorder: the store has a recorder already")
	}
	o.Client.Subscribe(schema.Filter(o.Fleet, "", "events"), 1, r.onEvent)
	o.Client.Subscribe(schema.Filter(o.Fleet, "", "events/missing"), 1, r.onMissing)
	o.Client.Subscribe(schema.Filter(o.Fleet, "", "thumbnails/+/"+schema.ThumbAlarm), 1, r.onThumbnail)
	if o.LiveThumbnails {
		o.Client.Subscribe(schema.Filter(o.Fleet, "", "thumbnails/+/"+schema.ThumbLive), 0, r.onThumbnail)
	}
	return r, nil
}

// OnConnect is for mqtt.Options.OnConnect: after every (re)connection the
// Recorder publishes every known agent's watermark again (a broker that
// restarted may have lost the retained ones).
func (r *Recorder) OnConnect(context.Context, *mqtt.Client) {
	r.mu.Lock()
	r.reconnect = true
	r.mu.Unlock()
	r.poke()
}

// Stats counts what the Recorder saw.
func (r *Recorder) Stats() RecorderStats {
	s := &r.stats
	return RecorderStats{Events: s.events.Load(), Stored: s.stored.Load(), Duplicates: s.dups.Load(),
		Invalid: s.invalid.Load(), Forged: s.forged.Load(), Missing: s.missing.Load(), Thumbnails: s.thumbs.Load(),
		StoreErrs: s.storeErrs.Load(), Published: s.published.Load(), PubErrs: s.pubErrs.Load(),
		Nonconforming: s.nonconforming.Load(), PassedOver: s.passedOver.Load()}
}

func (r *Recorder) poke() {
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// refuse counts and logs a payload not stored (the first 10 of a kind, then
// every 1000th).
func (r *Recorder) refuse(c *atomic.Uint64, what string, m mqtt.Message, err error) {
	n := c.Add(1)
	if n <= 10 || n%1000 == 0 {
		r.log.Warn("history: payload refused", "what", what, "topic", clip(m.Topic), "count", n, "err", err)
	}
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func (r *Recorder) onEvent(m mqtt.Message) {
	r.stats.events.Add(1)
	if len(m.Payload) > maxEventBytes {
		r.refuse(&r.stats.invalid, "event", m, fmt.Errorf("%d bytes, more than %d", len(m.Payload), maxEventBytes))
		return
	}
	var e schema.AgentEvent
	if verr := r.sch.Validate(schema.Event, m.Payload); verr != nil {
		// An agent newer than this dashboard (a new defect, a new field)
		// must not stall its own delivery: an event that still carries
		// what the history needs is stored as it is; one that does not is
		// refused and, when its agent and seq are known, passed over
		// (counted lost, logged with its content) so that the agent's
		// watermark does not stop at it and the agent does not resend it
		// until its spool drops it.
		if err := json.Unmarshal(m.Payload, &e); err == nil && usable(e) && consumer.CheckOrigin(m.Topic, e.Fleet, e.Agent) == nil {
			if n := r.stats.nonconforming.Add(1); n <= 10 || n%1000 == 0 {
				r.log.Warn("history: event does not match this build's schema (an agent newer than the dashboard?): stored as it is",
					"topic", clip(m.Topic), "seq", e.Seq, "count", n, "err", verr)
			}
		} else {
			r.refuse(&r.stats.invalid, "event", m, verr)
			r.passOver(m)
			return
		}
	} else if err := json.Unmarshal(m.Payload, &e); err != nil {
		r.refuse(&r.stats.invalid, "event", m, err)
		return
	}
	if err := consumer.CheckOrigin(m.Topic, e.Fleet, e.Agent); err != nil {
		r.refuse(&r.stats.forged, "event", m, err)
		return
	}
	raw := append([]byte(nil), m.Payload...) // the payload is shared with other subscriptions
	err := r.st.submit(context.Background(), op{kind: opEvent, rec: Record{AgentEvent: e}, raw: raw, done: func(res result) {
		switch {
		case errors.Is(res.err, ErrIDCollision):
			r.refuse(&r.stats.forged, "event", m, res.err)
		case errors.Is(res.err, ErrInvalid): // a seq over 2^63-1
			r.refuse(&r.stats.invalid, "event", m, res.err)
		case res.err != nil:
			r.stats.storeErrs.Add(1) // logged by the store; the agent resends after the gap
		case res.stored:
			r.stats.stored.Add(1)
		default:
			r.stats.dups.Add(1)
		}
	}})
	if err != nil {
		r.stats.storeErrs.Add(1)
		r.log.Error("history: event not stored", "topic", clip(m.Topic), "err", err)
	}
}

func (r *Recorder) onMissing(m mqtt.Message) {
	if err := r.sch.Validate(schema.Missing, m.Payload); err != nil {
		r.refuse(&r.stats.invalid, "missing", m, err)
		return
	}
	var d schema.MissingDoc
	if err := json.Unmarshal(m.Payload, &d); err != nil {
		r.refuse(&r.stats.invalid, "missing", m, err)
		return
	}
	if d.To < d.From {
		r.refuse(&r.stats.invalid, "missing", m, fmt.Errorf("from %d after to %d", d.From, d.To))
		return
	}
	parts := strings.Split(m.Topic, "/")
	if len(parts) != 6 {
		r.refuse(&r.stats.invalid, "missing", m, errors.New("not an agent's events/missing topic"))
		return
	}
	r.addMissing(m, agentKey{parts[2], parts[3]}, Range{d.From, d.To}, &r.stats.missing, "history: missing declaration not stored")
}

// addMissing records seqs of an agent as missing (lost), counting it in
// applied once stored; failures are counted and logged with failMsg.
func (r *Recorder) addMissing(m mqtt.Message, k agentKey, rng Range, applied *atomic.Uint64, failMsg string) {
	err := r.st.submit(context.Background(), op{kind: opMissing, key: k, rng: rng, done: func(res result) {
		if res.err != nil {
			r.stats.storeErrs.Add(1)
			return
		}
		applied.Add(1)
	}})
	if err != nil {
		r.stats.storeErrs.Add(1)
		r.log.Error(failMsg, "topic", clip(m.Topic), "err", err)
	}
}

func (r *Recorder) onThumbnail(m mqtt.Message) {
	if len(m.Payload) == 0 {
		return // a retained thumbnail cleared
	}
	if err := r.sch.Validate(schema.Thumbnail, m.Payload); err != nil {
		r.refuse(&r.stats.invalid, "thumbnail", m, err)
		return
	}
	var d schema.ThumbnailDoc
	if err := json.Unmarshal(m.Payload, &d); err != nil {
		r.refuse(&r.stats.invalid, "thumbnail", m, err)
		return
	}
	err := consumer.CheckOrigin(m.Topic, d.Fleet, d.Agent)
	if err == nil && !strings.HasSuffix(m.Topic, "/thumbnails/"+d.Stream+"/"+d.Kind) {
		err = fmt.Errorf("%s: its payload is of stream %.64q kind %q", clip(m.Topic), d.Stream, d.Kind)
	}
	if err != nil {
		r.refuse(&r.stats.forged, "thumbnail", m, err)
		return
	}
	if d.Kind != schema.ThumbAlarm {
		r.deliver(delivery{thumb: &d})
		return
	}
	err = r.st.submit(context.Background(), op{kind: opThumbnail, thumb: &d, done: func(res result) {
		if res.err != nil {
			r.stats.storeErrs.Add(1)
			return
		}
		r.stats.thumbs.Add(1)
		r.deliver(delivery{thumb: &d})
	}})
	if err != nil {
		r.stats.storeErrs.Add(1)
		r.log.Error("history: thumbnail not stored", "topic", clip(m.Topic), "err", err)
	}
}

// committed is the store's observer (on its writer goroutine): new events
// go to OnEvent, changed marks to the publisher.
func (r *Recorder) committed(c commit) {
	if r.o.OnEvent != nil {
		for i := range c.events {
			r.deliver(delivery{rec: &c.events[i]})
		}
	}
	if len(c.marks) == 0 {
		return
	}
	r.mu.Lock()
	for _, mk := range c.marks {
		if r.o.Fleet != "" && mk.Fleet != r.o.Fleet {
			continue
		}
		k := agentKey{mk.Fleet, mk.Agent}
		ps := r.pending[k]
		if ps == nil {
			ps = &pubState{}
			r.pending[k] = ps
		}
		ps.mark = mk
		if !ps.hasPub || ps.sent.Seq != mk.Seq || ps.sent.Gap != mk.Gap || ps.sent.Lost != mk.Lost {
			ps.dirty = true
		}
	}
	r.mu.Unlock()
	r.poke()
}

// deliver hands a stored event or thumbnail to Run's callbacks; it waits
// while they are behind (holding back the writer) unless Run has returned.
func (r *Recorder) deliver(d delivery) {
	if (d.rec != nil && r.o.OnEvent == nil) || (d.thumb != nil && r.o.OnThumbnail == nil) {
		return
	}
	select {
	case r.deliveries <- d:
	case <-r.runDone:
	}
}

// Run publishes the watermarks and runs the callbacks until ctx is done; it
// returns ctx's error. Call it once.
func (r *Recorder) Run(ctx context.Context) error {
	defer r.runOnce.Do(func() { close(r.runDone) })
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case d := <-r.deliveries:
				if d.rec != nil {
					r.o.OnEvent(*d.rec)
				} else {
					r.o.OnThumbnail(*d.thumb)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-r.wake:
		case <-t.C:
		}
		if err := r.publishDue(ctx); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// publishDue publishes the StoredDocs that are due: changed ones at most
// every minRepublish, gaps every gapRepublish, everyone after a
// reconnection.
func (r *Recorder) publishDue(ctx context.Context) error {
	r.mu.Lock()
	all := r.reconnect
	r.reconnect = false
	r.mu.Unlock()
	if all {
		marks, err := r.st.Marks(ctx)
		if err != nil {
			return err
		}
		r.mu.Lock()
		for _, mk := range marks {
			if r.o.Fleet != "" && mk.Fleet != r.o.Fleet {
				continue
			}
			k := agentKey{mk.Fleet, mk.Agent}
			ps := r.pending[k]
			if ps == nil {
				ps = &pubState{mark: mk}
				r.pending[k] = ps
			}
			ps.force = true
		}
		r.mu.Unlock()
	}
	now := time.Now()
	type due struct {
		k   agentKey
		doc schema.StoredDoc
	}
	var list []due
	r.mu.Lock()
	for k, ps := range r.pending {
		since := now.Sub(ps.last)
		if ps.force || (ps.dirty && since >= minRepublish) || (ps.mark.Gap && since >= gapRepublish) {
			list = append(list, due{k, schema.StoredDoc{Type: "stored", Consumer: r.o.Name, Seq: ps.mark.Seq,
				Gap: ps.mark.Gap, Lost: ps.mark.Lost}})
		}
	}
	r.mu.Unlock()
	for _, d := range list {
		d.doc.Time = now.UTC().Format(time.RFC3339Nano)
		err := r.publish(ctx, d.k, d.doc)
		if err != nil {
			if errors.Is(err, mqtt.ErrNotConnected) || ctx.Err() != nil {
				return err // the next connection publishes everyone
			}
			r.stats.pubErrs.Add(1)
			r.log.Warn("history: stored watermark not published", "fleet", d.k.fleet, "agent", d.k.agent, "err", err)
			continue
		}
		r.stats.published.Add(1)
		r.mu.Lock()
		ps := r.pending[d.k]
		ps.last, ps.sent, ps.hasPub, ps.force = now, d.doc, true, false
		ps.dirty = ps.mark.Seq != d.doc.Seq || ps.mark.Gap != d.doc.Gap || ps.mark.Lost != d.doc.Lost
		r.mu.Unlock()
	}
	return nil
}

func (r *Recorder) publish(ctx context.Context, k agentKey, doc schema.StoredDoc) error {
	b, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("encode stored: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, publishWait)
	defer cancel()
	return r.o.Client.Publish(pctx, mqtt.Message{Topic: schema.NewTopics(k.fleet, k.agent).Stored, Payload: b, QoS: 1, Retained: true})
}

// usable says whether an event that failed the schema still has what the
// history stores and queries by.
func usable(e schema.AgentEvent) bool {
	if !isEventID(e.ID) || e.Seq == 0 || e.Seq > math.MaxInt64 || e.Stream == "" || e.Defect == "" || e.State == "" {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, e.Time)
	return err == nil
}

// passOver records the seq of a refused event as lost when its payload
// names the agent of its topic and a seq: the watermark moves past it.
func (r *Recorder) passOver(m mqtt.Message) {
	var h struct {
		Seq   uint64 `json:"seq"`
		Fleet string `json:"fleet"`
		Agent string `json:"agent"`
	}
	if json.Unmarshal(m.Payload, &h) != nil || h.Seq == 0 || h.Seq > math.MaxInt64 || consumer.CheckOrigin(m.Topic, h.Fleet, h.Agent) != nil {
		return
	}
	r.log.Error("history: event refused and passed over (counted lost)", "topic", clip(m.Topic), "seq", h.Seq, "payload", clip(string(m.Payload)))
	r.addMissing(m, agentKey{h.Fleet, h.Agent}, Range{h.Seq, h.Seq}, &r.stats.passedOver, "history: passing over a refused event failed")
}

// isEventID says whether id has the form of an event id (event.schema.json:
// 32 lowercase hex digits).
func isEventID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for _, c := range id {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
