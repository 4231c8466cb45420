// Package consumer is the operator's side of the broker: it follows the
// alerts of a fleet, lists its agents and reads and writes desired configs
// (`streamqc events` and `streamqc fleet`).
package consumer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/schema"
)

// EventFilter selects events; empty fields match everything.
type EventFilter struct {
	Fleet, Agent, Stream string
}

// EventOptions of Events.
type EventOptions struct {
	Filter EventFilter
	// Follow keeps printing until ctx is done; otherwise Events returns once
	// no event arrived for Idle.
	Follow bool
	Idle   time.Duration
	Format string // text or json
	Color  bool
	// Warn, when set, gets one line per event dropped because its fleet or
	// agent is not the topic's (the first 10; Dropped counts them all).
	Warn io.Writer
}

// Dedup remembers the last ids seen so a redelivered event (after a
// reconnect the agent may send an event twice) is printed once.
type Dedup struct {
	seen  map[string]struct{}
	order []string
	max   int
}

// NewDedup remembers up to n ids.
func NewDedup(n int) *Dedup { return &Dedup{seen: map[string]struct{}{}, max: n} }

// First reports whether id is new, and remembers it.
func (d *Dedup) First(id string) bool {
	if _, ok := d.seen[id]; ok {
		return false
	}
	d.seen[id] = struct{}{}
	d.order = append(d.order, id)
	if len(d.order) > d.max {
		delete(d.seen, d.order[0])
		d.order = d.order[1:]
	}
	return true
}

// EventPrinter prints the events of the filtered agents as they arrive,
// once each, from the client's delivery goroutine: with
// mqtt.Options.AckAfterHandlers an event is acknowledged to the broker only
// once printed, so a durable session loses nothing when interrupted.
type EventPrinter struct {
	o        EventOptions
	w        io.Writer
	dedup    *Dedup
	activity chan struct{}
	mu       sync.Mutex
	n        int
	dropped  int
	err      error
}

// PrintEvents subscribes c to the events; call it before c.Start so that a
// durable session's queued events find their handler.
func PrintEvents(c *mqtt.Client, o EventOptions, w io.Writer) *EventPrinter {
	p := newEventPrinter(o, w)
	c.Subscribe(schema.Filter(o.Filter.Fleet, o.Filter.Agent, "events"), 1, p.handle)
	return p
}

func newEventPrinter(o EventOptions, w io.Writer) *EventPrinter {
	if o.Idle <= 0 {
		o.Idle = 2 * time.Second
	}
	return &EventPrinter{o: o, w: w, dedup: NewDedup(100000), activity: make(chan struct{}, 1)}
}

func (p *EventPrinter) handle(m mqtt.Message) {
	select {
	case p.activity <- struct{}{}:
	default:
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var e schema.AgentEvent
	if err := json.Unmarshal(m.Payload, &e); err != nil || e.ID == "" {
		p.write(fmt.Sprintf("# unreadable event: %.200q\n", m.Payload))
		return
	}
	// Before dedup: a forged event must not take the id of a real one.
	if err := CheckOrigin(m.Topic, e.Fleet, e.Agent); err != nil {
		p.dropped++
		if p.o.Warn != nil && p.dropped <= 10 {
			fmt.Fprintf(p.o.Warn, "dropped: %s\n", clean(err.Error()))
		}
		return
	}
	if p.o.Filter.Stream != "" && e.Stream != p.o.Filter.Stream {
		return
	}
	if !p.dedup.First(e.ID) {
		return
	}
	p.n++
	if p.o.Format == "json" {
		p.write(strings.TrimSpace(string(m.Payload)) + "\n")
		return
	}
	p.write(textLine(e, p.o.Color) + "\n")
}

func (p *EventPrinter) write(s string) {
	if p.err == nil {
		_, p.err = io.WriteString(p.w, s)
	}
}

// Wait returns when ctx is done, or, without Follow, once no event arrived
// for Idle; it says how many events were printed.
func (p *EventPrinter) Wait(ctx context.Context) (int, error) {
	idle := time.NewTimer(p.o.Idle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return p.count()
		case <-p.activity:
			idle.Reset(p.o.Idle)
		case <-idle.C:
			if !p.o.Follow {
				return p.count()
			}
			idle.Reset(p.o.Idle)
		}
	}
}

// Dropped is how many events were dropped because their fleet or agent was
// not the topic's.
func (p *EventPrinter) Dropped() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.dropped
}

func (p *EventPrinter) count() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n, p.err
}

// textLine is one aligned line per raise or clear.
func textLine(e schema.AgentEvent, color bool) string {
	on, off := "", ""
	if color {
		on, off = "\x1b[1;31m", "\x1b[0m"
		if e.State == "cleared" {
			on = "\x1b[32m"
		}
	}
	ts := e.Time
	if t, err := time.Parse(time.RFC3339Nano, e.Time); err == nil {
		ts = t.Local().Format("2006-01-02 15:04:05.000")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %-28s %s%-7s%s %-12s at %9.3fs", clean(ts), clean(e.Fleet+"/"+e.Agent+"/"+e.Stream), on,
		clean(strings.ToUpper(e.State)), off, clean(e.Defect), e.Start)
	if e.End != nil && e.Duration != nil {
		fmt.Fprintf(&b, "  lasted %.3fs", *e.Duration)
	}
	if e.Reason != "" {
		fmt.Fprintf(&b, "  %s", clean(e.Reason))
	}
	for _, k := range slices.Sorted(maps.Keys(e.Values)) {
		fmt.Fprintf(&b, "  %s=%.4g", clean(k), e.Values[k])
	}
	return b.String()
}

// clean keeps a payload's text from driving the terminal: control
// characters (escape sequences among them) become '?'.
func clean(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return '?'
		}
		return r
	}, s)
}

// Agent is what the broker retains about one agent.
type Agent struct {
	Fleet, ID string
	Status    json.RawMessage
	Metrics   json.RawMessage
	Reported  json.RawMessage
}

// Agents collects the retained status, metrics and reported config of the
// agents of a fleet ("" for every fleet), waiting until no retained message
// arrived for settle (live updates that arrive meanwhile are kept, but do
// not extend the wait). A status or metrics document naming another agent
// than its topic is dropped, and said on warn (when not nil).
func Agents(ctx context.Context, c *mqtt.Client, fleetName string, settle time.Duration, warn io.Writer) ([]Agent, error) {
	var mu sync.Mutex
	byID := map[string]*Agent{}
	dropped := 0
	got := make(chan struct{}, 1)
	add := func(leaf string) func(mqtt.Message) {
		return func(m mqtt.Message) {
			parts := strings.Split(m.Topic, "/")
			if len(parts) < 5 || len(m.Payload) == 0 {
				return
			}
			f, id := parts[2], parts[3]
			if leaf != "config/reported" { // the only one that does not name its agent
				var who struct{ Fleet, Agent string }
				_ = json.Unmarshal(m.Payload, &who)
				if err := CheckOrigin(m.Topic, who.Fleet, who.Agent); err != nil {
					mu.Lock()
					if dropped++; warn != nil && dropped <= 10 {
						fmt.Fprintf(warn, "dropped: %s\n", clean(err.Error()))
					}
					mu.Unlock()
					return
				}
			}
			mu.Lock()
			a := byID[f+"/"+id]
			if a == nil {
				a = &Agent{Fleet: f, ID: id}
				byID[f+"/"+id] = a
			}
			switch leaf {
			case "status":
				a.Status = m.Payload
			case "metrics":
				a.Metrics = m.Payload
			case "config/reported":
				a.Reported = m.Payload
			}
			mu.Unlock()
			if m.Retained {
				select {
				case got <- struct{}{}:
				default:
				}
			}
		}
	}
	for _, leaf := range []string{"status", "metrics", "config/reported"} {
		c.Subscribe(schema.Filter(fleetName, "", leaf), 1, add(leaf))
	}
	t := time.NewTimer(settle)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-got:
			t.Reset(settle)
		case <-t.C:
			done = true
		}
	}
	mu.Lock()
	defer mu.Unlock()
	out := make([]Agent, 0, len(byID))
	for _, a := range byID {
		out = append(out, *a)
	}
	slices.SortFunc(out, func(a, b Agent) int { return strings.Compare(a.Fleet+"/"+a.ID, b.Fleet+"/"+b.ID) })
	return out, nil
}

// PrintAgents writes one aligned line per agent.
func PrintAgents(w io.Writer, list []Agent) {
	fmt.Fprintf(w, "%-12s %-20s %-8s %-16s %-9s %-16s %6s %8s %8s  %-11s  %s\n",
		"FLEET", "AGENT", "STATE", "VERSION", "STREAMS", "CONFIG", "CPU%", "RSS MB", "SPOOLED", "METRICS AGE", "DECODERS")
	for _, a := range list {
		var st struct{ State, Version string }
		var m struct {
			Time    time.Time `json:"time"`
			Process struct {
				CPU float64 `json:"cpu_percent"`
				RSS int64   `json:"rss_bytes"`
			} `json:"process"`
			Spool struct {
				Pending int `json:"pending"`
			} `json:"spool"`
			Streams []struct {
				State   string `json:"state"`
				Decoder string `json:"decoder"`
			} `json:"streams"`
		}
		var r struct {
			Status         string `json:"status"`
			Version        int64  `json:"version"`
			AppliedVersion int64  `json:"applied_version"`
		}
		_ = json.Unmarshal(a.Status, &st)
		_ = json.Unmarshal(a.Metrics, &m)
		_ = json.Unmarshal(a.Reported, &r)
		running := 0
		decoders := map[string]int{}
		for _, s := range m.Streams {
			if s.State == "running" {
				running++
			}
			if s.Decoder != "" {
				decoders[s.Decoder]++
			}
		}
		cfg, age := "-", "-"
		if a.Reported != nil {
			cfg = fmt.Sprintf("v%d", r.AppliedVersion)
			if r.Status == "rejected" {
				cfg += fmt.Sprintf(" (v%d refused)", r.Version)
			}
		}
		if !m.Time.IsZero() {
			age = time.Since(m.Time).Round(time.Second).String()
		}
		fmt.Fprintf(w, "%-12s %-20s %-8s %-16s %-9s %-16s %6.1f %8.1f %8d  %-11s  %s\n",
			a.Fleet, a.ID, orDash(st.State), orDash(st.Version), fmt.Sprintf("%d/%d", running, len(m.Streams)), cfg,
			m.Process.CPU, float64(m.Process.RSS)/(1<<20), m.Spool.Pending, age, decoderCounts(decoders))
	}
}

// decoderCounts says how many streams decode where: "cpu 2, nvdec:0 3".
func decoderCounts(c map[string]int) string {
	if len(c) == 0 {
		return "-"
	}
	names := slices.Sorted(maps.Keys(c))
	for i, k := range names {
		names[i] = fmt.Sprintf("%s %d", k, c[k])
	}
	return strings.Join(names, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Retained reads the retained message of one topic (nil when there is none
// within wait).
func Retained(ctx context.Context, c *mqtt.Client, topic string, wait time.Duration) ([]byte, error) {
	ch := make(chan []byte, 1)
	c.Subscribe(topic, 1, func(m mqtt.Message) {
		select {
		case ch <- m.Payload:
		default:
		}
	})
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case p := <-ch:
		return p, nil
	case <-time.After(wait):
		return nil, nil
	}
}

// Verdict is an agent's answer to a pushed config.
type Verdict struct {
	Version        int64  `json:"version"`
	Status         string `json:"status"`
	Reason         string `json:"reason"`
	Scope          string `json:"scope"`
	AppliedVersion int64  `json:"applied_version"`
	Streams        []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Error string `json:"error"`
	} `json:"streams"`
}

// Push publishes a desired config (retained, QoS 1) for one agent and waits
// for the agent's verdict on that version.
func Push(ctx context.Context, c *mqtt.Client, fleetName, agent string, doc []byte) (Verdict, error) {
	version := schema.PeekVersion(doc)
	t := schema.NewTopics(fleetName, agent)
	verdicts := make(chan Verdict, 16)
	c.Subscribe(t.Reported, 1, func(m mqtt.Message) {
		if m.Retained {
			return // an earlier verdict, kept by the broker: not about this push
		}
		var v Verdict
		if json.Unmarshal(m.Payload, &v) == nil {
			select {
			case verdicts <- v:
			default:
			}
		}
	})
	if err := c.WaitConnected(ctx); err != nil {
		return Verdict{}, err
	}
	if err := c.Publish(ctx, mqtt.Message{Topic: t.Desired, Payload: doc, QoS: 1, Retained: true}); err != nil {
		return Verdict{}, fmt.Errorf("publish %s: %w", t.Desired, err)
	}
	for {
		select {
		case <-ctx.Done():
			return Verdict{}, fmt.Errorf("no verdict on version %d from agent %s/%s: %w", version, fleetName, agent, ctx.Err())
		case v := <-verdicts:
			if v.Version == version && v.Scope != "fleet" {
				return v, nil
			}
		}
	}
}

// PushFleet publishes fleet-wide defaults (retained, QoS 1).
func PushFleet(ctx context.Context, c *mqtt.Client, fleetName string, doc []byte) error {
	t := schema.NewTopics(fleetName, "_")
	if err := c.Publish(ctx, mqtt.Message{Topic: t.FleetDesired, Payload: doc, QoS: 1, Retained: true}); err != nil {
		return fmt.Errorf("publish %s: %w", t.FleetDesired, err)
	}
	return nil
}
