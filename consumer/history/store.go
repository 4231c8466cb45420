package history

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/streamqc/streamqc/schema"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver (PostgreSQL)
	_ "modernc.org/sqlite"             // the "sqlite" database/sql driver, pure Go
)

// DefaultFile is the database's file name in the state directory.
const DefaultFile = "history.db"

// Defaults of Options.
const (
	DefaultRetention           = 90 * 24 * time.Hour
	DefaultPruneEvery          = time.Hour
	DefaultThumbnailsPerStream = 200
	DefaultBatch               = 1000
)

var (
	// ErrNotFound: no such thumbnail.
	ErrNotFound = errors.New("history: not found")
	// ErrBadCursor: Query.Before is not a Cursor the store made.
	ErrBadCursor = errors.New("history: bad cursor")
	// ErrClosed: the store was closed.
	ErrClosed = errors.New("history: store closed")
	// ErrIDCollision: an event's id is stored already for another agent or
	// seq: the new one is not stored (ids are 128 random bits; a collision
	// is a forgery or a bug).
	ErrIDCollision = errors.New("history: event id already stored for another agent or seq")
	// ErrInvalid: an event the store cannot keep (no id, fleet or agent;
	// seq 0 or over 2^63-1).
	ErrInvalid = errors.New("history: invalid event")
)

// Options of Open.
type Options struct {
	// StateDir is the directory of the default database file (DefaultFile);
	// the command passes its state directory.
	StateDir string
	// Path is the SQLite file (default StateDir/history.db).
	Path string
	// DSN, when set, replaces Path: a PostgreSQL URL (postgres://user@host/db,
	// see README.md), or a modernc.org/sqlite data source
	// ("file:/var/lib/streamqc/history.db"; the store adds its pragmas).
	DSN string
	// Retention is how long events are kept, by the time they were received
	// (default DefaultRetention; negative: forever). PruneEvery is how often
	// older ones are deleted (default DefaultPruneEvery).
	Retention  time.Duration
	PruneEvery time.Duration
	// ThumbnailsPerStream caps the alarm thumbnails kept per stream (oldest
	// deleted first; default DefaultThumbnailsPerStream).
	ThumbnailsPerStream int
	// Batch caps the writes committed in one transaction (default
	// DefaultBatch).
	Batch  int
	Logger *slog.Logger
	// now is the clock, pruneChunk the events one prune deletes (tests).
	now        func() time.Time
	pruneChunk int
}

// Record is a stored event: the agent's event and when we received it.
type Record struct {
	schema.AgentEvent
	Received time.Time `json:"received"`
}

// Store is the event history: one SQLite database written by one goroutine
// that commits what is queued in batches (group commit) and read by any.
type Store struct {
	o   Options
	db  *sql.DB
	d   dialect
	log *slog.Logger

	ops     chan op
	closing chan struct{} // closed by Close: the writer commits what is queued and stops
	done    chan struct{} // closed when the writer has stopped
	// subMu: submit sends under the read lock, Close marks closed under the
	// write lock, so nothing is queued once the writer drains for the last time.
	subMu    sync.RWMutex
	closed   bool
	closeErr error

	// Written by the writer goroutine only; read under mu.
	mu    sync.Mutex
	marks map[agentKey]*agentMark
	// observe gets every committed batch (the Recorder); set before the
	// first write.
	observe func(commit)
}

type agentKey struct{ fleet, agent string }

// agentMark is an agent's delivery state; wm is the writer's.
type agentMark struct {
	wm      *watermark
	stored  uint64 // events stored, all time
	updated time.Time
	snap    Mark // what Marks returns, refreshed after each commit
}

// Mark is the delivery state of one agent.
type Mark struct {
	Fleet string `json:"fleet"`
	Agent string `json:"agent"`
	// Seq is the watermark: every seq 1..Seq is stored or was declared
	// missing. Gap: seqs over Seq are stored (Above of them).
	Seq   uint64 `json:"seq"`
	Gap   bool   `json:"gap"`
	Above int    `json:"above"`
	// Lost counts the seqs the agent declared missing; Stored the events
	// stored for this agent since the database was made (pruning does not
	// lower it).
	Lost    uint64    `json:"lost"`
	Stored  uint64    `json:"stored"`
	Updated time.Time `json:"updated"`
}

// commit is what one committed batch changed.
type commit struct {
	events []Record // newly stored
	marks  []Mark   // agents whose state changed
}

type opKind int

const (
	opEvent opKind = iota
	opMissing
	opThumbnail
	opPrune
)

// op is one queued write; done (if set) is called after its batch
// committed or failed.
type op struct {
	kind     opKind
	rec      Record
	raw      []byte
	key      agentKey
	rng      Range
	thumb    *schema.ThumbnailDoc
	received time.Time
	done     func(result)
}

type result struct {
	stored bool  // opEvent: new (not a duplicate)
	pruned int64 // opPrune
	err    error
}

// Open opens (creating and migrating it as needed) the history database and
// starts its writer. Close stops it.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Retention == 0 {
		o.Retention = DefaultRetention
	}
	if o.PruneEvery <= 0 {
		o.PruneEvery = DefaultPruneEvery
	}
	if o.ThumbnailsPerStream <= 0 {
		o.ThumbnailsPerStream = DefaultThumbnailsPerStream
	}
	if o.Batch <= 0 {
		o.Batch = DefaultBatch
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.pruneChunk <= 0 {
		o.pruneChunk = pruneChunk
	}
	driver, dsn, where, d, err := dataSource(o)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("history: open %s: %w", where, err)
	}
	// Readers run beside the writer; a few connections are enough.
	db.SetMaxOpenConns(4)
	db.SetMaxIdleConns(4)
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %s: %w", where, err)
	}
	if err := d.optimize(ctx, db, true); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %s: optimize: %w", where, err)
	}
	s := &Store{
		o:       o,
		db:      db,
		d:       d,
		log:     o.Logger.With("history", where),
		ops:     make(chan op, 4*o.Batch),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		marks:   map[agentKey]*agentMark{},
	}
	if err := s.loadMarks(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("history: %s: %w", where, err)
	}
	go s.writer()
	return s, nil
}

// dataSource picks the driver and builds its data source, with a name for
// logs (no password).
func dataSource(o Options) (driver, dsn, where string, d dialect, err error) {
	if strings.HasPrefix(o.DSN, "postgres://") || strings.HasPrefix(o.DSN, "postgresql://") {
		u, err := url.Parse(o.DSN)
		if err != nil {
			return "", "", "", d, fmt.Errorf("history: PostgreSQL DSN: %w", err)
		}
		u.User, u.RawQuery = nil, ""
		return "pgx", o.DSN, u.String(), dialect{postgres: true}, nil
	}
	dsn, where, err = sqliteDSN(o)
	return "sqlite", dsn, where, d, err
}

// sqliteDSN builds the SQLite data source: WAL, synchronous=FULL (see the
// package doc), a busy timeout, write transactions that take the lock at
// BEGIN.
func sqliteDSN(o Options) (dsn, where string, err error) {
	const pragmas = "_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_txlock=immediate"
	if o.DSN != "" {
		sep := "?"
		if strings.Contains(o.DSN, "?") {
			sep = "&"
		}
		where, _, _ = strings.Cut(o.DSN, "?")
		return o.DSN + sep + pragmas, where, nil
	}
	path := o.Path
	if path == "" {
		if o.StateDir == "" {
			return "", "", errors.New("history: no database: set Options.Path, StateDir or DSN")
		}
		path = filepath.Join(o.StateDir, DefaultFile)
	}
	if strings.ContainsAny(path, "?#") {
		return "", "", fmt.Errorf("history: database path %q: ? and # are not allowed", path)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return "", "", fmt.Errorf("history: %w", err)
	}
	return "file:" + path + "?" + pragmas, path, nil
}

// Close stops the writer (what is queued is committed first) and closes the
// database.
func (s *Store) Close() error {
	s.subMu.Lock()
	first := !s.closed
	s.closed = true
	s.subMu.Unlock()
	if first {
		close(s.closing)
		<-s.done
		s.closeErr = s.db.Close()
	}
	<-s.done
	return s.closeErr
}

// Add stores an event (raw is its payload as received; nil: re-encoded)
// and waits for the commit. It reports false for a duplicate id (same
// agent and seq); an id stored for another agent or seq is ErrIDCollision.
// The payload is trusted: the Recorder validates it first.
func (s *Store) Add(ctx context.Context, e schema.AgentEvent, raw []byte) (bool, error) {
	r, err := s.wait(ctx, op{kind: opEvent, rec: Record{AgentEvent: e}, raw: raw})
	return r.stored, err
}

// AddMissing records that the agent declared seqs From..To missing, and
// waits for the commit.
func (s *Store) AddMissing(ctx context.Context, fleet, agent string, d schema.MissingDoc) error {
	_, err := s.wait(ctx, op{kind: opMissing, key: agentKey{fleet, agent}, rng: Range{d.From, d.To}})
	return err
}

// AddThumbnail keeps an alarm thumbnail (a duplicate id is ignored) and
// waits for the commit.
func (s *Store) AddThumbnail(ctx context.Context, d schema.ThumbnailDoc) error {
	_, err := s.wait(ctx, op{kind: opThumbnail, thumb: &d})
	return err
}

// Prune deletes what is older than the retention now (the writer also does
// it every PruneEvery) and says how many events went.
func (s *Store) Prune(ctx context.Context) (int64, error) {
	var total int64
	for {
		r, err := s.wait(ctx, op{kind: opPrune})
		total += r.pruned
		if err != nil || r.pruned < int64(s.o.pruneChunk) {
			return total, err
		}
	}
}

// pruneChunk bounds the events one prune deletes, so that a first prune of
// a large database does not hold the writer for long.
const pruneChunk = 5000

func (s *Store) wait(ctx context.Context, o op) (result, error) {
	ch := make(chan result, 1)
	o.done = func(r result) { ch <- r }
	if err := s.submit(ctx, o); err != nil {
		return result{}, err
	}
	select {
	case r := <-ch:
		return r, r.err
	case <-ctx.Done():
		return result{}, ctx.Err()
	}
}

// submit queues a write; it waits while the queue is full.
func (s *Store) submit(ctx context.Context, o op) error {
	if o.received.IsZero() {
		o.received = s.o.now()
	}
	s.subMu.RLock()
	defer s.subMu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	select {
	case s.ops <- o:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer commits the queued writes in batches until Close.
func (s *Store) writer() {
	defer close(s.done)
	prune := time.NewTicker(s.o.PruneEvery)
	defer prune.Stop()
	pruneMore := false // the last periodic prune deleted a whole chunk: go on
	pruneOp := func() op {
		return op{kind: opPrune, done: func(r result) { pruneMore = r.err == nil && r.pruned >= int64(s.o.pruneChunk) }}
	}
	batch := make([]op, 0, s.o.Batch)
	for {
		batch = batch[:0]
		if pruneMore {
			pruneMore = false
			batch = append(batch, pruneOp())
		} else {
			select {
			case o := <-s.ops:
				batch = append(batch, o)
			case <-prune.C:
				batch = append(batch, pruneOp())
			case <-s.closing:
				// Nothing is queued any more (see subMu): commit the rest.
				for {
					batch = s.fill(batch[:0])
					if len(batch) == 0 {
						return
					}
					s.commitBatch(batch)
				}
			}
		}
		s.commitBatch(s.fill(batch))
	}
}

// fill adds to batch what is queued, up to the batch size, without waiting.
func (s *Store) fill(batch []op) []op {
	for len(batch) < s.o.Batch {
		select {
		case o := <-s.ops:
			batch = append(batch, o)
		default:
			return batch
		}
	}
	return batch
}

// commitBatch runs a batch in one transaction and reports each op's result.
func (s *Store) commitBatch(batch []op) {
	ctx := context.Background() // a batch, once begun, is finished
	results := make([]result, len(batch))
	c, touched, err := s.runBatch(ctx, batch, results)
	if err != nil {
		// The database rolled back: so does the agents' state.
		s.restore(touched)
		if len(batch) > 1 {
			// One write must not fail the others queued with it: each
			// again in a transaction of its own.
			s.log.Warn("history: batch failed, its writes committed one by one", "ops", len(batch), "err", err)
			for i := range batch {
				s.commitBatch(batch[i : i+1])
			}
			return
		}
		s.log.Error("history: commit failed, not stored", "err", err)
		for i := range results {
			results[i] = result{err: fmt.Errorf("history: store: %w", err)}
		}
	} else {
		s.mu.Lock()
		for k := range touched {
			am := s.marks[k]
			am.snap = am.mark(k)
			c.marks = append(c.marks, am.snap)
		}
		observe := s.observe
		s.mu.Unlock()
		if observe != nil && (len(c.events) > 0 || len(c.marks) > 0) {
			observe(c)
		}
	}
	for i, o := range batch {
		if o.kind == opPrune && err == nil {
			// Keep the planner's statistics current (it picks between the
			// agent's and the defect's index by them); cheap when nothing
			// changed much.
			if oerr := s.d.optimize(ctx, s.db, false); oerr != nil {
				s.log.Warn("history: optimize", "err", oerr)
			}
		}
		if o.done != nil {
			o.done(results[i])
		}
	}
}

func (am *agentMark) mark(k agentKey) Mark {
	return Mark{Fleet: k.fleet, Agent: k.agent, Seq: am.wm.Seq(), Gap: am.wm.Gap(), Above: am.wm.Above(),
		Lost: am.wm.Lost(), Stored: am.stored, Updated: am.updated}
}

// runBatch writes a batch in one transaction, with the delivery state of
// the agents it touched: their watermarks move in the same commit as the
// events they cover.
func (s *Store) runBatch(ctx context.Context, batch []op, results []result) (commit, map[agentKey]*agentMark, error) {
	var c commit
	touched := map[agentKey]*agentMark{} // the agents' state before the batch
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return c, touched, fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after Commit it does nothing
	st, err := prepare(ctx, tx, s.d)
	if err != nil {
		return c, touched, err
	}
	defer st.close()
	for i, o := range batch {
		switch o.kind {
		case opEvent:
			stored, err := s.putEvent(ctx, st, &o, touched)
			if err != nil {
				if errors.Is(err, ErrIDCollision) || errors.Is(err, ErrInvalid) {
					results[i].err = err
					continue
				}
				return c, touched, err
			}
			results[i].stored = stored
			if stored {
				r := o.rec
				r.Received = o.received
				c.events = append(c.events, r)
			}
		case opMissing:
			am := s.touch(touched, o.key)
			if am.wm.Missing(o.rng) {
				s.log.Info("history: agent declared events missing", "fleet", o.key.fleet, "agent", o.key.agent,
					"from", o.rng.From, "to", o.rng.To, "watermark", am.wm.Seq(), "lost", am.wm.Lost())
			}
			am.updated = o.received
		case opThumbnail:
			if err := s.putThumbnail(ctx, st, o.thumb, o.received); err != nil {
				return c, touched, err
			}
		case opPrune:
			n, err := s.prune(ctx, tx)
			if err != nil {
				return c, touched, err
			}
			results[i].pruned = n
		}
	}
	for k := range touched {
		am := s.marks[k]
		missing, _ := json.Marshal(am.wm.MissingRanges())
		if _, err := st.mark.ExecContext(ctx, k.fleet, k.agent, int64(am.wm.Seq()), int64(am.wm.Lost()),
			int64(am.stored), string(missing), am.updated.UnixNano()); err != nil {
			return c, touched, fmt.Errorf("save marks of %s/%s: %w", k.fleet, k.agent, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return c, touched, fmt.Errorf("commit: %w", err)
	}
	return c, touched, nil
}

// touch returns the delivery state of an agent for a write of the batch
// (made on first sight), keeping in saved, on its first touch in the
// batch, a copy of it as it was (nil: not known), which restore puts back
// if the batch is rolled back.
func (s *Store) touch(saved map[agentKey]*agentMark, k agentKey) *agentMark {
	s.mu.Lock()
	defer s.mu.Unlock()
	am := s.marks[k]
	if _, ok := saved[k]; !ok {
		var before *agentMark
		if am != nil {
			before = am.clone()
		}
		saved[k] = before
	}
	if am == nil {
		am = &agentMark{wm: newWatermark(0, 0, nil, nil)}
		s.marks[k] = am
	}
	return am
}

// restore puts back the agents' state saved before a batch that failed.
func (s *Store) restore(saved map[agentKey]*agentMark) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, before := range saved {
		if before == nil {
			delete(s.marks, k)
		} else {
			s.marks[k] = before
		}
	}
}

func (am *agentMark) clone() *agentMark {
	c := *am
	c.wm = am.wm.clone()
	return &c
}

// putEvent inserts an event unless its id is stored, and moves the agent's
// watermark.
func (s *Store) putEvent(ctx context.Context, st *stmts, o *op, touched map[agentKey]*agentMark) (bool, error) {
	e := &o.rec.AgentEvent
	if e.ID == "" || e.Fleet == "" || e.Agent == "" || e.Seq == 0 || e.Seq > math.MaxInt64 {
		return false, fmt.Errorf("%w: id %.64q fleet %.64q agent %.64q seq %d", ErrInvalid, e.ID, e.Fleet, e.Agent, e.Seq)
	}
	raw := o.raw
	if raw == nil {
		var err error
		if raw, err = json.Marshal(e); err != nil {
			return false, fmt.Errorf("encode event %s: %w", e.ID, err)
		}
	}
	var vals any
	if len(e.Values) > 0 {
		b, err := json.Marshal(e.Values)
		if err != nil {
			return false, fmt.Errorf("encode values of %s: %w", e.ID, err)
		}
		vals = string(b)
	}
	t := eventTime(e.Time, o.received)
	res, err := st.event.ExecContext(ctx, e.ID, e.Fleet, e.Agent, e.Stream, e.Defect, e.State, int64(e.Seq),
		e.Start, nullFloat(e.End), nullFloat(e.Duration), e.Reason, e.Cause, vals, e.Thumbnail,
		t.UnixNano(), o.received.UnixNano(), string(raw))
	if err != nil {
		return false, fmt.Errorf("insert event %s: %w", e.ID, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("insert event %s: %w", e.ID, err)
	}
	if n == 0 {
		// Stored already: the same event again (resent), or a forgery.
		var fleet, agent string
		var seq int64
		if err := st.byID.QueryRowContext(ctx, e.ID).Scan(&fleet, &agent, &seq); err != nil {
			return false, fmt.Errorf("look up event %s: %w", e.ID, err)
		}
		if fleet != e.Fleet || agent != e.Agent || uint64(seq) != e.Seq {
			return false, fmt.Errorf("%w: %s (%s/%s seq %d, stored for %s/%s seq %d)", ErrIDCollision,
				e.ID, e.Fleet, e.Agent, e.Seq, fleet, agent, seq)
		}
	}
	am := s.touch(touched, agentKey{e.Fleet, e.Agent})
	am.wm.Stored(e.Seq)
	am.updated = o.received
	if n == 0 {
		return false, nil
	}
	am.stored++
	if _, err := st.alarm.ExecContext(ctx, e.Fleet, e.Agent, e.Stream, e.Defect, t.UnixNano(), int64(e.Seq), e.ID, e.State); err != nil {
		return false, fmt.Errorf("alarm state of %s: %w", e.ID, err)
	}
	return true, nil
}

func (s *Store) putThumbnail(ctx context.Context, st *stmts, d *schema.ThumbnailDoc, received time.Time) error {
	if d.Kind != schema.ThumbAlarm {
		return nil // live thumbnails are not kept: the broker retains the latest
	}
	t := eventTime(d.Time, received)
	res, err := st.thumb.ExecContext(ctx, d.ID, d.Fleet, d.Agent, d.Stream, d.Kind, d.Event, d.Defect, d.PTS,
		t.UnixNano(), received.UnixNano(), d.Width, d.Height, d.ContentType, d.Data)
	if err != nil {
		return fmt.Errorf("insert thumbnail %s: %w", d.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil
	}
	if _, err := st.thumbCap.ExecContext(ctx, d.Fleet, d.Agent, d.Stream, d.Fleet, d.Agent, d.Stream, s.o.ThumbnailsPerStream); err != nil {
		return fmt.Errorf("cap thumbnails of %s/%s/%s: %w", d.Fleet, d.Agent, d.Stream, err)
	}
	return nil
}

// prune deletes events received before the retention, except those an open
// alarm's state refers to, and thumbnails older than that whose event is
// gone.
func (s *Store) prune(ctx context.Context, tx *sql.Tx) (int64, error) {
	if s.o.Retention < 0 {
		return 0, nil
	}
	cut := s.o.now().Add(-s.o.Retention).UnixNano()
	res, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM events WHERE id IN (SELECT id FROM events WHERE received_ns < ?
		AND NOT EXISTS (SELECT 1 FROM alarms a WHERE a.event = events.id) LIMIT ?)`), cut, s.o.pruneChunk)
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.d.q(`DELETE FROM thumbnails WHERE received_ns < ?
		AND NOT EXISTS (SELECT 1 FROM events e WHERE e.id = thumbnails.event)`), cut); err != nil {
		return 0, fmt.Errorf("prune thumbnails: %w", err)
	}
	if n > 0 {
		s.log.Info("history: pruned", "events", n, "before", time.Unix(0, cut).UTC())
	}
	return n, nil
}

// eventTime parses an RFC 3339 time; received when it does not parse.
func eventTime(s string, received time.Time) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return received
	}
	return t
}

func nullFloat(f *float64) any {
	if f == nil {
		return nil
	}
	return *f
}

// loadMarks reads every agent's delivery state: W, lost and missing ranges
// from marks, the stored seqs over W from events.
func (s *Store) loadMarks(ctx context.Context) error {
	rows, err := s.db.QueryContext(ctx, `SELECT fleet, agent, watermark, lost, stored, missing, updated_ns FROM marks`)
	if err != nil {
		return fmt.Errorf("load marks: %w", err)
	}
	type row struct {
		k                 agentKey
		seq, lost, stored int64
		missing           string
		updated           int64
	}
	var list []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.k.fleet, &r.k.agent, &r.seq, &r.lost, &r.stored, &r.missing, &r.updated); err != nil {
			rows.Close()
			return fmt.Errorf("load marks: %w", err)
		}
		list = append(list, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("load marks: %w", err)
	}
	fresh := map[agentKey]*agentMark{}
	for _, r := range list {
		var missing []Range
		if err := json.Unmarshal([]byte(r.missing), &missing); err != nil {
			return fmt.Errorf("marks of %s/%s: missing ranges: %w", r.k.fleet, r.k.agent, err)
		}
		above, err := s.seqsAbove(ctx, r.k, r.seq)
		if err != nil {
			return err
		}
		am := &agentMark{wm: newWatermark(uint64(r.seq), uint64(r.lost), missing, above),
			stored: uint64(r.stored), updated: time.Unix(0, r.updated)}
		am.snap = am.mark(r.k)
		fresh[r.k] = am
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, am := range fresh {
		s.marks[k] = am
	}
	return nil
}

func (s *Store) seqsAbove(ctx context.Context, k agentKey, seq int64) ([]uint64, error) {
	rows, err := s.db.QueryContext(ctx, s.d.q(`SELECT seq FROM events WHERE fleet = ? AND agent = ? AND seq > ?`), k.fleet, k.agent, seq)
	if err != nil {
		return nil, fmt.Errorf("stored seqs of %s/%s: %w", k.fleet, k.agent, err)
	}
	defer rows.Close()
	var out []uint64
	for rows.Next() {
		var v int64
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("stored seqs of %s/%s: %w", k.fleet, k.agent, err)
		}
		out = append(out, uint64(v))
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("stored seqs of %s/%s: %w", k.fleet, k.agent, err)
	}
	return out, nil
}

// Marks is the delivery state of every agent known, by fleet and agent.
func (s *Store) Marks(ctx context.Context) ([]Mark, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	out := make([]Mark, 0, len(s.marks))
	for _, am := range s.marks {
		if am.snap.Fleet != "" {
			out = append(out, am.snap)
		}
	}
	s.mu.Unlock()
	sortMarks(out)
	return out, nil
}
