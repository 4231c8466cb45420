package dashboard

import (
	"context"
	"strconv"
	"sync"

	"github.com/streamqc/streamqc/schema"
)

// Query selects events of the timeline, newest first; empty fields match
// everything.
type Query struct {
	Fleet, Agent, Stream, Defect, State string
	// Before is the cursor of the previous page (Page.Next), "" for the
	// newest events.
	Before string
	Limit  int
}

// Page is one page of the timeline.
type Page struct {
	Events []schema.AgentEvent `json:"events"`
	// Next is the cursor of the following (older) page, "" at the end.
	Next string `json:"next,omitempty"`
}

// History is what the dashboard reads from the consumer of record's store:
// the timeline, the alarms open when it starts and the thumbnails it no
// longer holds in memory. cmd/streamqc adapts consumer/history's Store to it.
type History interface {
	Events(ctx context.Context, q Query) (Page, error)
	// OpenAlarms are the raised events without a cleared one after them.
	OpenAlarms(ctx context.Context) ([]schema.AgentEvent, error)
	// Thumbnail returns a stored thumbnail; ok false when there is none.
	Thumbnail(ctx context.Context, id string) (doc schema.ThumbnailDoc, ok bool, err error)
}

// MemHistory is a History of the last events seen, in memory: the
// dashboard's timeline when it records nothing (--no-record), and the
// fake of the tests. Safe for concurrent use.
type MemHistory struct {
	mu     sync.Mutex
	max    int
	first  uint64 // position of events[0]
	events []schema.AgentEvent
	ids    map[string]struct{}
	thumbs map[string]schema.ThumbnailDoc
	order  []string
}

// NewMemHistory keeps the last max events and thumbnails.
func NewMemHistory(max int) *MemHistory {
	if max <= 0 {
		max = 10000
	}
	return &MemHistory{max: max, ids: map[string]struct{}{}, thumbs: map[string]schema.ThumbnailDoc{}}
}

// Add stores an event once (by id).
func (h *MemHistory) Add(e schema.AgentEvent) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.ids[e.ID]; ok {
		return
	}
	h.ids[e.ID] = struct{}{}
	h.events = append(h.events, e)
	if len(h.events) > h.max {
		delete(h.ids, h.events[0].ID)
		h.events = h.events[1:]
		h.first++
	}
}

// AddThumbnail stores a thumbnail.
func (h *MemHistory) AddThumbnail(d schema.ThumbnailDoc) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if _, ok := h.thumbs[d.ID]; !ok {
		h.order = append(h.order, d.ID)
	}
	h.thumbs[d.ID] = d
	if len(h.order) > h.max {
		delete(h.thumbs, h.order[0])
		h.order = h.order[1:]
	}
}

// Events implements History.
func (h *MemHistory) Events(_ context.Context, q Query) (Page, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if q.Limit <= 0 {
		q.Limit = 100
	}
	end := h.first + uint64(len(h.events)) // positions below end
	if q.Before != "" {
		b, err := strconv.ParseUint(q.Before, 10, 64)
		if err != nil {
			return Page{}, ErrBadCursor
		}
		end = min(end, b)
	}
	p := Page{Events: []schema.AgentEvent{}}
	for pos := end; pos > h.first; pos-- {
		e := h.events[pos-1-h.first]
		if !q.match(e) {
			continue
		}
		if len(p.Events) == q.Limit {
			p.Next = strconv.FormatUint(pos, 10)
			break
		}
		p.Events = append(p.Events, e)
	}
	return p, nil
}

// OpenAlarms implements History.
func (h *MemHistory) OpenAlarms(context.Context) ([]schema.AgentEvent, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	open := map[string]schema.AgentEvent{}
	var order []string
	for _, e := range h.events {
		k := alarmKey(e)
		switch e.State {
		case "raised":
			if _, ok := open[k]; !ok {
				order = append(order, k)
			}
			open[k] = e
		case "cleared":
			delete(open, k)
		}
	}
	out := []schema.AgentEvent{}
	for _, k := range order {
		if e, ok := open[k]; ok {
			out = append(out, e)
			delete(open, k)
		}
	}
	return out, nil
}

// Thumbnail implements History.
func (h *MemHistory) Thumbnail(_ context.Context, id string) (schema.ThumbnailDoc, bool, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	d, ok := h.thumbs[id]
	return d, ok, nil
}

func (q Query) match(e schema.AgentEvent) bool {
	return (q.Fleet == "" || q.Fleet == e.Fleet) && (q.Agent == "" || q.Agent == e.Agent) &&
		(q.Stream == "" || q.Stream == e.Stream) && (q.Defect == "" || q.Defect == e.Defect) &&
		(q.State == "" || q.State == e.State)
}

func alarmKey(e schema.AgentEvent) string {
	return e.Fleet + "/" + e.Agent + "/" + e.Stream + "/" + eventKey(e)
}

// eventKey is the alarm an event raises or clears, as the agent counts
// alarms (detectors.Event.Key): the defect, and for tr101290 the indicator
// (its reason) too, since several may be open at once.
func eventKey(e schema.AgentEvent) string {
	if e.Defect == "tr101290" && e.Reason != "" {
		return e.Defect + "/" + e.Reason
	}
	return e.Defect
}
