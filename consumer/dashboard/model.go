package dashboard

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streamqc/streamqc/consumer"
	"github.com/streamqc/streamqc/schema"
)

// AgentView is what the page shows of an agent.
type AgentView struct {
	Key        string  `json:"key"` // fleet/agent
	Fleet      string  `json:"fleet"`
	Agent      string  `json:"agent"`
	State      string  `json:"state"` // online, offline, unknown
	Reason     string  `json:"reason,omitempty"`
	Version    string  `json:"version,omitempty"`
	Hostname   string  `json:"hostname,omitempty"`
	Connected  bool    `json:"connected"`
	CPU        float64 `json:"cpu"`
	RSS        int64   `json:"rss"`
	Spool      int     `json:"spool"`       // events waiting in the spool
	SpoolBytes int64   `json:"spool_bytes"` // their size
	Dropped    uint64  `json:"dropped"`
	Streams    int     `json:"streams"`
	Running    int     `json:"running"`
	Alarms     int     `json:"alarms"`
	Metrics    string  `json:"metrics_time,omitempty"` // agent clock
}

// AlarmView is one open alarm of a stream.
type AlarmView struct {
	// Key is the alarm as the agent counts it: the defect, and for
	// tr101290 the indicator too ("tr101290/2.3a pcr_repetition_error").
	Key       string  `json:"key"`
	Defect    string  `json:"defect"`
	Reason    string  `json:"reason,omitempty"`
	Since     string  `json:"since,omitempty"` // the raised event's time
	Start     float64 `json:"start"`
	Event     string  `json:"event,omitempty"`
	Thumbnail string  `json:"thumbnail,omitempty"` // set once the picture is here
}

// StreamView is what the page shows of a stream (a tile of the mosaic).
type StreamView struct {
	Key     string      `json:"key"` // fleet/agent/stream
	Fleet   string      `json:"fleet"`
	Agent   string      `json:"agent"`
	Stream  string      `json:"stream"`
	State   string      `json:"state"`
	FPS     float64     `json:"fps"`
	Decoder string      `json:"decoder,omitempty"`
	Lag     *float64    `json:"lag,omitempty"`
	Error   string      `json:"error,omitempty"`
	Offline bool        `json:"offline,omitempty"` // its agent is offline: stale
	Alarms  []AlarmView `json:"alarms"`
	// Thumb is the picture of the tile: the newest open alarm's, else the
	// latest live one; ThumbKind says which.
	Thumb     string `json:"thumb,omitempty"`
	ThumbKind string `json:"thumb_kind,omitempty"`
}

// Snapshot is the whole fleet, sent to a page when it connects (the
// timeline comes from /api/events).
type Snapshot struct {
	Agents  []AgentView  `json:"agents"`
	Streams []StreamView `json:"streams"`
	Time    int64        `json:"time"` // server clock, Unix ms
}

// Delta is what changed since the last one.
type Delta struct {
	Agents  []AgentView  `json:"agents,omitempty"`
	Streams []StreamView `json:"streams,omitempty"`
	Removed []string     `json:"removed,omitempty"` // stream keys
}

// LiveEvent is an event pushed as it arrives; Recv is when the dashboard
// got it (Unix ms), for the page's latency figure.
type LiveEvent struct {
	schema.AgentEvent
	Recv int64 `json:"recv"`
}

// metricsTrust: an alarm list in the retained metrics overrides what
// events said only when the metrics were taken this long after the last
// event of that defect (an event and the metrics collected just after it
// may disagree for a moment).
const metricsTrust = 2 * time.Second

type alarmState struct {
	AlarmView
	at time.Time // agent clock of the raise, or of the metrics that said so
}

type streamState struct {
	view       StreamView             // without Alarms, Thumb
	alarms     map[string]*alarmState // by alarm key
	lastEvent  map[string]time.Time   // alarm key -> agent time of its last event
	live       string                 // latest live thumbnail id
	alarmThumb schema.ThumbnailDoc    // latest retained alarm thumbnail (no data)
}

type agentState struct {
	view    AgentView
	statusT time.Time
	metricT time.Time
	streams map[string]bool // stream ids in the last metrics
}

// model is the fleet as the broker shows it; every method is safe for
// concurrent use. Changes are collected as dirty keys that flush turns
// into one Delta.
type model struct {
	mu      sync.Mutex
	agents  map[string]*agentState
	streams map[string]*streamState
	dirtyA  map[string]struct{}
	dirtyS  map[string]struct{}
	removed map[string]struct{}
	thumbs  *thumbCache
	dedup   *consumer.Dedup
}

func newModel(thumbs int) *model {
	return &model{
		agents: map[string]*agentState{}, streams: map[string]*streamState{},
		dirtyA: map[string]struct{}{}, dirtyS: map[string]struct{}{}, removed: map[string]struct{}{},
		thumbs: newThumbCache(thumbs), dedup: consumer.NewDedup(100000),
	}
}

func parseTime(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// topicAgent returns the fleet and agent of an agent topic.
func topicAgent(topic string) (fleet, agent string, ok bool) {
	p := strings.Split(topic, "/")
	if len(p) < 5 || p[0]+"/"+p[1] != schema.Root {
		return "", "", false
	}
	return p[2], p[3], true
}

func (m *model) agentLocked(fleet, agent string) *agentState {
	k := fleet + "/" + agent
	a := m.agents[k]
	if a == nil {
		a = &agentState{view: AgentView{Key: k, Fleet: fleet, Agent: agent, State: "unknown"}, streams: map[string]bool{}}
		m.agents[k] = a
	}
	return a
}

func (m *model) streamLocked(fleet, agent, stream string) *streamState {
	k := fleet + "/" + agent + "/" + stream
	s := m.streams[k]
	if s == nil {
		s = &streamState{view: StreamView{Key: k, Fleet: fleet, Agent: agent, Stream: stream, State: "unknown"},
			alarms: map[string]*alarmState{}, lastEvent: map[string]time.Time{}}
		m.streams[k] = s
		delete(m.removed, k)
		m.agentLocked(fleet, agent).streams[stream] = true
	}
	return s
}

// status takes a retained status document.
func (m *model) status(topic string, payload []byte) error {
	if len(payload) == 0 {
		return nil // a cleared retained message
	}
	var st struct {
		State, Fleet, Agent, Version, Hostname, Time, Reason string
	}
	if err := json.Unmarshal(payload, &st); err != nil {
		return fmt.Errorf("status %s: %w", topic, err)
	}
	if err := consumer.CheckOrigin(topic, st.Fleet, st.Agent); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agentLocked(st.Fleet, st.Agent)
	a.view.State, a.view.Version, a.view.Hostname, a.view.Reason = st.State, st.Version, st.Hostname, st.Reason
	if st.State != "online" {
		a.view.Connected = false
	}
	a.statusT = parseTime(st.Time)
	m.dirtyA[a.view.Key] = struct{}{}
	for id := range a.streams {
		s := m.streams[a.view.Key+"/"+id]
		if s != nil && s.view.Offline != (st.State != "online") {
			s.view.Offline = st.State != "online"
			m.dirtyS[s.view.Key] = struct{}{}
		}
	}
	return nil
}

type metricsDoc struct {
	Time      string `json:"time"`
	Fleet     string `json:"fleet"`
	Agent     string `json:"agent"`
	Version   string `json:"version"`
	Connected bool   `json:"broker_connected"`
	Process   struct {
		CPU float64 `json:"cpu_percent"`
		RSS int64   `json:"rss_bytes"`
	} `json:"process"`
	Spool struct {
		Pending int    `json:"pending"`
		Bytes   int64  `json:"bytes"`
		Dropped uint64 `json:"dropped"`
	} `json:"spool"`
	Streams []struct {
		ID      string   `json:"id"`
		State   string   `json:"state"`
		FPS     float64  `json:"fps"`
		Lag     *float64 `json:"decode_lag"`
		Decoder string   `json:"decoder"`
		Alarms  []string `json:"alarms"`
		Error   string   `json:"error"`
	} `json:"streams"`
}

// metrics takes a metrics document: the agent's figures, its streams and
// their open alarms (which fill in alarms raised before the dashboard
// started).
func (m *model) metrics(topic string, payload []byte) error {
	if len(payload) == 0 {
		return nil
	}
	var d metricsDoc
	if err := json.Unmarshal(payload, &d); err != nil {
		return fmt.Errorf("metrics %s: %w", topic, err)
	}
	if err := consumer.CheckOrigin(topic, d.Fleet, d.Agent); err != nil {
		return err
	}
	t := parseTime(d.Time)
	m.mu.Lock()
	defer m.mu.Unlock()
	a := m.agentLocked(d.Fleet, d.Agent)
	if !t.IsZero() && t.Before(a.metricT) {
		return nil // older than what we have
	}
	a.metricT = t
	prev := a.view
	v := &a.view
	if d.Version != "" {
		v.Version = d.Version
	}
	v.Connected = d.Connected && v.State != "offline"
	v.CPU = math.Round(d.Process.CPU*10) / 10
	v.RSS, v.Spool, v.SpoolBytes, v.Dropped = d.Process.RSS, d.Spool.Pending, d.Spool.Bytes, d.Spool.Dropped
	v.Streams, v.Running, v.Metrics = len(d.Streams), 0, d.Time
	seen := map[string]bool{}
	for _, sm := range d.Streams {
		if sm.ID == "" || seen[sm.ID] {
			continue
		}
		seen[sm.ID] = true
		if sm.State == "running" {
			v.Running++
		}
		s := m.streamLocked(d.Fleet, d.Agent, sm.ID)
		before := s.view
		s.view.State, s.view.FPS, s.view.Decoder, s.view.Error = sm.State, math.Round(sm.FPS*10)/10, sm.Decoder, sm.Error
		s.view.Lag = nil
		if sm.Lag != nil {
			l := math.Round(*sm.Lag*100) / 100
			s.view.Lag = &l
		}
		s.view.Offline = v.State == "offline"
		changed := !sameStream(before, s.view)
		if m.reconcileLocked(s, sm.Alarms, t) {
			changed = true
		}
		if changed {
			m.dirtyS[s.view.Key] = struct{}{}
		}
	}
	// Streams no longer in the agent's metrics are gone (removed by a config).
	for id := range a.streams {
		if !seen[id] {
			k := a.view.Key + "/" + id
			if s := m.streams[k]; s != nil {
				m.thumbs.unpin(s.live)
				m.thumbs.unpin(s.alarmThumb.ID)
			}
			delete(a.streams, id)
			delete(m.streams, k)
			delete(m.dirtyS, k)
			m.removed[k] = struct{}{}
		}
	}
	m.countAlarmsLocked(a)
	if *v != prev {
		m.dirtyA[v.Key] = struct{}{}
	}
	return nil
}

func sameStream(a, b StreamView) bool {
	la, lb := -1.0, -1.0
	if a.Lag != nil {
		la = *a.Lag
	}
	if b.Lag != nil {
		lb = *b.Lag
	}
	return a.State == b.State && a.FPS == b.FPS && a.Decoder == b.Decoder && a.Error == b.Error &&
		a.Offline == b.Offline && la == lb
}

// reconcileLocked makes a stream's alarms the metrics' where the metrics
// are newer than the events of that defect; it reports a change.
func (m *model) reconcileLocked(s *streamState, alarms []string, t time.Time) bool {
	if t.IsZero() {
		return false
	}
	changed := false
	for _, k := range alarms {
		if _, ok := s.alarms[k]; ok || t.Sub(s.lastEvent[k]) < metricsTrust {
			continue
		}
		defect, reason, _ := strings.Cut(k, "/")
		al := &alarmState{AlarmView: AlarmView{Key: k, Defect: defect, Reason: reason}, at: t}
		if s.alarmThumb.ID != "" && s.alarmThumb.Defect == defect {
			al.Thumbnail, al.Event = s.alarmThumb.ID, s.alarmThumb.Event
		}
		s.alarms[k] = al
		changed = true
	}
	for k, al := range s.alarms {
		if slices.Contains(alarms, k) || t.Sub(al.at) < metricsTrust || t.Sub(s.lastEvent[k]) < metricsTrust {
			continue
		}
		delete(s.alarms, k)
		changed = true
	}
	return changed
}

func (m *model) countAlarmsLocked(a *agentState) {
	n := 0
	for id := range a.streams {
		if s := m.streams[a.view.Key+"/"+id]; s != nil {
			n += len(s.alarms)
		}
	}
	if n != a.view.Alarms {
		a.view.Alarms = n
		m.dirtyA[a.view.Key] = struct{}{}
	}
}

// event takes a defect event; it reports whether it is new (not a
// redelivery) and so to be pushed.
func (m *model) event(topic string, payload []byte) (schema.AgentEvent, bool, error) {
	var e schema.AgentEvent
	if err := json.Unmarshal(payload, &e); err != nil || e.ID == "" {
		return e, false, fmt.Errorf("unreadable event on %s: %.200q", topic, payload)
	}
	if err := consumer.CheckOrigin(topic, e.Fleet, e.Agent); err != nil {
		return e, false, err
	}
	return e, m.addEvent(e), nil
}

// addEvent applies an event (from the broker or the store's open alarms).
func (m *model) addEvent(e schema.AgentEvent) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dedup.First(e.ID) {
		return false
	}
	if e.Stream == "" || e.Defect == "" {
		return true
	}
	s := m.streamLocked(e.Fleet, e.Agent, e.Stream)
	t := parseTime(e.Time)
	k := eventKey(e)
	if t.Before(s.lastEvent[k]) {
		return true // an older event delivered late: it is in the timeline, not the state
	}
	s.lastEvent[k] = t
	switch e.State {
	case "raised":
		al := &alarmState{AlarmView: AlarmView{Key: k, Defect: e.Defect, Reason: e.Reason, Since: e.Time, Start: e.Start, Event: e.ID}, at: t}
		if e.Thumbnail != "" && m.thumbs.has(e.Thumbnail) {
			al.Thumbnail = e.Thumbnail
		} else if s.alarmThumb.Event == e.ID && s.alarmThumb.ID != "" {
			al.Thumbnail = s.alarmThumb.ID
		}
		s.alarms[k] = al
	case "cleared":
		delete(s.alarms, k)
	}
	m.dirtyS[s.view.Key] = struct{}{}
	m.countAlarmsLocked(m.agentLocked(e.Fleet, e.Agent))
	return true
}

// thumbnail takes a thumbnail document; it reports whether the tile of its
// stream changes.
func (m *model) thumbnail(topic string, payload []byte) (schema.ThumbnailDoc, error) {
	var d schema.ThumbnailDoc
	if len(payload) == 0 {
		return d, nil
	}
	if err := json.Unmarshal(payload, &d); err != nil {
		return d, fmt.Errorf("thumbnail %s: %w", topic, err)
	}
	if err := consumer.CheckOrigin(topic, d.Fleet, d.Agent); err != nil {
		return d, err
	}
	if d.ID == "" || d.Stream == "" || len(d.Data) == 0 || (d.ContentType != "" && d.ContentType != "image/jpeg") {
		return d, fmt.Errorf("thumbnail %s: incomplete", topic)
	}
	m.addThumbnail(d)
	return d, nil
}

func (m *model) addThumbnail(d schema.ThumbnailDoc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.thumbs.put(d)
	s := m.streamLocked(d.Fleet, d.Agent, d.Stream)
	switch d.Kind {
	case schema.ThumbLive:
		m.thumbs.pin(s.live, d)
		s.live = d.ID
	case schema.ThumbAlarm:
		m.thumbs.pin(s.alarmThumb.ID, d)
		meta := d
		meta.Data = nil
		s.alarmThumb = meta
		for _, al := range s.alarms {
			// The alarm it illustrates, or one the metrics told of (no event).
			if al.Thumbnail == "" && ((d.Event != "" && al.Event == d.Event) || (al.Event == "" && al.Defect == d.Defect)) {
				al.Thumbnail = d.ID
			}
		}
	default:
		return
	}
	m.dirtyS[s.view.Key] = struct{}{}
}

// viewLocked is a stream as the page shows it.
func (m *model) viewLocked(s *streamState) StreamView {
	v := s.view
	v.Alarms = make([]AlarmView, 0, len(s.alarms))
	var newest *alarmState
	for _, al := range s.alarms {
		v.Alarms = append(v.Alarms, al.AlarmView)
		if al.Thumbnail != "" && (newest == nil || al.at.After(newest.at)) {
			newest = al
		}
	}
	slices.SortFunc(v.Alarms, func(a, b AlarmView) int { return strings.Compare(a.Key, b.Key) })
	switch {
	case newest != nil:
		v.Thumb, v.ThumbKind = newest.Thumbnail, schema.ThumbAlarm
	case s.live != "" && m.thumbs.has(s.live):
		v.Thumb, v.ThumbKind = s.live, schema.ThumbLive
	}
	return v
}

// snapshot is the whole fleet; it resets nothing.
func (m *model) snapshot() Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	sn := Snapshot{Agents: make([]AgentView, 0, len(m.agents)), Streams: make([]StreamView, 0, len(m.streams)),
		Time: time.Now().UnixMilli()}
	for _, a := range m.agents {
		sn.Agents = append(sn.Agents, a.view)
	}
	for _, s := range m.streams {
		sn.Streams = append(sn.Streams, m.viewLocked(s))
	}
	slices.SortFunc(sn.Agents, func(a, b AgentView) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(sn.Streams, func(a, b StreamView) int { return strings.Compare(a.Key, b.Key) })
	return sn
}

// flush returns what changed since the last flush (ok false: nothing).
func (m *model) flush() (Delta, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.dirtyA) == 0 && len(m.dirtyS) == 0 && len(m.removed) == 0 {
		return Delta{}, false
	}
	var d Delta
	for k := range m.dirtyA {
		if a := m.agents[k]; a != nil {
			d.Agents = append(d.Agents, a.view)
		}
	}
	for k := range m.dirtyS {
		if s := m.streams[k]; s != nil {
			d.Streams = append(d.Streams, m.viewLocked(s))
		}
	}
	for k := range m.removed {
		d.Removed = append(d.Removed, k)
	}
	clear(m.dirtyA)
	clear(m.dirtyS)
	clear(m.removed)
	slices.SortFunc(d.Agents, func(a, b AgentView) int { return strings.Compare(a.Key, b.Key) })
	slices.SortFunc(d.Streams, func(a, b StreamView) int { return strings.Compare(a.Key, b.Key) })
	slices.Sort(d.Removed)
	return d, true
}

// thumbCache holds the last thumbnails by id (bounded, oldest out) and,
// pinned apart from that bound, every stream's current live and alarm
// pictures, so that 1,000 tiles never lose theirs.
type thumbCache struct {
	max    int
	docs   map[string]schema.ThumbnailDoc
	order  []string
	pinned map[string]schema.ThumbnailDoc
}

func newThumbCache(max int) *thumbCache {
	return &thumbCache{max: max, docs: map[string]schema.ThumbnailDoc{}, pinned: map[string]schema.ThumbnailDoc{}}
}

func (c *thumbCache) has(id string) bool {
	_, ok := c.get(id)
	return ok
}

func (c *thumbCache) get(id string) (schema.ThumbnailDoc, bool) {
	if d, ok := c.pinned[id]; ok {
		return d, true
	}
	d, ok := c.docs[id]
	return d, ok
}

func (c *thumbCache) put(d schema.ThumbnailDoc) {
	if _, ok := c.docs[d.ID]; !ok {
		c.order = append(c.order, d.ID)
	}
	c.docs[d.ID] = d
	for len(c.order) > c.max {
		delete(c.docs, c.order[0])
		c.order = c.order[1:]
	}
}

// pin holds d in place of the stream's previous picture old.
func (c *thumbCache) pin(old string, d schema.ThumbnailDoc) {
	if old != "" && old != d.ID {
		delete(c.pinned, old)
	}
	c.pinned[d.ID] = d
}

// unpin leaves a removed stream's picture to the bound (still served while
// it is among the last ones).
func (c *thumbCache) unpin(id string) {
	if id != "" {
		delete(c.pinned, id)
	}
}

// thumb returns a cached thumbnail.
func (m *model) thumb(id string) (schema.ThumbnailDoc, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.thumbs.get(id)
}
