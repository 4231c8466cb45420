package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamqc/streamqc/schema"
)

// DefaultLimit and MaxLimit bound a page of Events.
const (
	DefaultLimit = 100
	MaxLimit     = 10000
)

// Query selects events; empty fields match everything.
type Query struct {
	Fleet, Agent, Stream, Defect string
	State                        string // "raised" or "cleared"
	// Since (inclusive) and Until (exclusive) bound the agent's event time.
	Since, Until time.Time
	// Limit is the page size (default DefaultLimit, at most MaxLimit).
	Limit int
	// Before continues a listing: the Cursor of the last record of the
	// previous page.
	Before Cursor
}

// Cursor is an opaque position in the newest-first order of events (the
// event time and id), safe in a URL.
type Cursor string

// Cursor is the position of r, for Query.Before.
func (r Record) Cursor() Cursor {
	return Cursor(strconv.FormatInt(eventTime(r.Time, r.Received).UnixNano(), 10) + "_" + r.ID)
}

func (c Cursor) parse() (int64, string, error) {
	ns, id, ok := strings.Cut(string(c), "_")
	t, err := strconv.ParseInt(ns, 10, 64)
	if !ok || err != nil || id == "" {
		return 0, "", fmt.Errorf("%w %.80q", ErrBadCursor, string(c))
	}
	return t, id, nil
}

const recordColumns = `e.raw, e.received_ns`

// Events lists events newest first (by the agent's time, then id), a page
// at a time.
func (s *Store) Events(ctx context.Context, q Query) ([]Record, error) {
	sqlq, args, err := eventsSQL(q)
	if err != nil {
		return nil, err
	}
	return s.records(ctx, sqlq, args...)
}

// eventsSQL is the query of Events.
func eventsSQL(q Query) (string, []any, error) {
	var where []string
	var args []any
	for _, f := range []struct{ col, v string }{
		{"e.fleet", q.Fleet}, {"e.agent", q.Agent}, {"e.stream", q.Stream}, {"e.defect", q.Defect}, {"e.state", q.State},
	} {
		if f.v != "" {
			where = append(where, f.col+" = ?")
			args = append(args, f.v)
		}
	}
	if !q.Since.IsZero() {
		where = append(where, "e.time_ns >= ?")
		args = append(args, q.Since.UnixNano())
	}
	if !q.Until.IsZero() {
		where = append(where, "e.time_ns < ?")
		args = append(args, q.Until.UnixNano())
	}
	if q.Before != "" {
		t, id, err := q.Before.parse()
		if err != nil {
			return "", nil, err
		}
		// The same as (time_ns, id) < (t, id), written so that the time is a
		// plain range on the indexes.
		where = append(where, "e.time_ns <= ? AND (e.time_ns < ? OR e.id < ?)")
		args = append(args, t, t, id)
	}
	limit := q.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	sqlq := "SELECT " + recordColumns + " FROM events e"
	if len(where) > 0 {
		sqlq += " WHERE " + strings.Join(where, " AND ")
	}
	sqlq += " ORDER BY e.time_ns DESC, e.id DESC LIMIT ?"
	args = append(args, limit)
	return sqlq, args, nil
}

// OpenAlarms lists the alarms raised and not cleared since, per agent,
// stream and defect (the latest event of each is a raise), newest first;
// fleet "" for every fleet.
func (s *Store) OpenAlarms(ctx context.Context, fleet string) ([]Record, error) {
	q := "SELECT " + recordColumns + " FROM alarms a JOIN events e ON e.id = a.event WHERE a.state = 'raised'"
	var args []any
	if fleet != "" {
		q += " AND a.fleet = ?"
		args = append(args, fleet)
	}
	q += " ORDER BY e.time_ns DESC, e.id DESC"
	return s.records(ctx, q, args...)
}

func (s *Store) records(ctx context.Context, q string, args ...any) ([]Record, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(q), args...)
	if err != nil {
		return nil, fmt.Errorf("history: query events: %w", err)
	}
	defer rows.Close()
	var out []Record
	for rows.Next() {
		var raw string
		var received int64
		if err := rows.Scan(&raw, &received); err != nil {
			return nil, fmt.Errorf("history: read events: %w", err)
		}
		var r Record
		if err := json.Unmarshal([]byte(raw), &r.AgentEvent); err != nil {
			return nil, fmt.Errorf("history: stored event: %w", err)
		}
		r.Received = time.Unix(0, received)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("history: read events: %w", err)
	}
	return out, nil
}

// Thumbnail returns a kept thumbnail by id (ErrNotFound when it is not).
func (s *Store) Thumbnail(ctx context.Context, id string) (*schema.ThumbnailDoc, error) {
	d := &schema.ThumbnailDoc{Type: "thumbnail", ID: id}
	var t int64
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT fleet, agent, stream, kind, event, defect, pts, time_ns, width, height,
		content_type, data FROM thumbnails WHERE id = ?`), id).Scan(&d.Fleet, &d.Agent, &d.Stream, &d.Kind, &d.Event,
		&d.Defect, &d.PTS, &t, &d.Width, &d.Height, &d.ContentType, &d.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("thumbnail %.64q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("history: thumbnail %.64q: %w", id, err)
	}
	d.Time = time.Unix(0, t).UTC().Format(time.RFC3339Nano)
	return d, nil
}

func sortMarks(m []Mark) {
	slices.SortFunc(m, func(a, b Mark) int {
		if c := strings.Compare(a.Fleet, b.Fleet); c != 0 {
			return c
		}
		return strings.Compare(a.Agent, b.Agent)
	})
}
