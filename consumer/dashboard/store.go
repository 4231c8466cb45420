package dashboard

import (
	"context"
	"errors"
	"fmt"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/consumer/history"
	"github.com/streamqc/streamqc/schema"
)

// StoreHistory is the consumer of record's store as the dashboard reads it
// (fleet "" for every fleet).
func StoreHistory(st *history.Store, fleet string) History { return storeHistory{st: st, fleet: fleet} }

type storeHistory struct {
	st    *history.Store
	fleet string
}

func (h storeHistory) Events(ctx context.Context, q Query) (Page, error) {
	fleet := h.fleet
	if fleet == "" {
		fleet = q.Fleet
	}
	recs, err := h.st.Events(ctx, history.Query{Fleet: fleet, Agent: q.Agent, Stream: q.Stream, Defect: q.Defect,
		State: q.State, Limit: q.Limit, Before: history.Cursor(q.Before)})
	if err != nil {
		if errors.Is(err, history.ErrBadCursor) {
			return Page{}, fmt.Errorf("%w: %w", ErrBadCursor, err)
		}
		return Page{}, err
	}
	p := Page{Events: make([]schema.AgentEvent, 0, len(recs))}
	for _, r := range recs {
		p.Events = append(p.Events, r.AgentEvent)
	}
	if len(recs) > 0 && len(recs) == q.Limit {
		p.Next = string(recs[len(recs)-1].Cursor())
	}
	return p, nil
}

func (h storeHistory) OpenAlarms(ctx context.Context) ([]schema.AgentEvent, error) {
	recs, err := h.st.OpenAlarms(ctx, h.fleet)
	if err != nil {
		return nil, err
	}
	out := make([]schema.AgentEvent, 0, len(recs))
	for i := len(recs) - 1; i >= 0; i-- { // oldest first, as they happened
		out = append(out, recs[i].AgentEvent)
	}
	return out, nil
}

func (h storeHistory) Thumbnail(ctx context.Context, id string) (schema.ThumbnailDoc, bool, error) {
	d, err := h.st.Thumbnail(ctx, id)
	if errors.Is(err, history.ErrNotFound) {
		return schema.ThumbnailDoc{}, false, nil
	}
	if err != nil {
		return schema.ThumbnailDoc{}, false, err
	}
	return *d, true, nil
}

// Record makes the server the fleet's consumer of record on session c: a
// history.Recorder stores every event and alarm thumbnail in st and hands
// them to the pages once stored; the server itself follows the status and
// metrics. Call it before c.Start, have c's Options.OnConnect call the
// Recorder's OnConnect, and run the Recorder (Run) beside the server.
func (s *Server) Record(ctx context.Context, st *history.Store, c *mqtt.Client, fleet, name string) (*history.Recorder, error) {
	rec, err := history.NewRecorder(st, history.RecorderOptions{Fleet: fleet, Name: name, Client: c, Logger: s.log,
		OnEvent: func(r history.Record) { s.AddEvent(r.AgentEvent) }, OnThumbnail: s.AddThumbnail, LiveThumbnails: true})
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	s.SubscribeState(c, fleet)
	if err := s.Seed(ctx); err != nil {
		return nil, err
	}
	return rec, nil
}
