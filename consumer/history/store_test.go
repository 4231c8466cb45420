package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/schema"
)

var t0 = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// quiet is the tests' logger: nothing, or everything with HISTORY_DEBUG=1.
func quiet() *slog.Logger {
	if os.Getenv("HISTORY_DEBUG") == "1" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// ev makes a valid event of agent a with seq n, at t0 + n seconds.
func ev(fleet, a string, n uint64, stream, defect, state string) schema.AgentEvent {
	e := schema.AgentEvent{
		DefectEvent: schema.DefectEvent{Type: "defect", Stream: stream, Defect: defect, State: state, Start: float64(n)},
		ID:          fmt.Sprintf("%016x%016x", fnv(fleet+"/"+a), n),
		Seq:         n, Fleet: fleet, Agent: a,
		Time: t0.Add(time.Duration(n) * time.Second).Format(time.RFC3339Nano),
	}
	if state == "cleared" {
		end, dur := float64(n)+1, 1.0
		e.End, e.Duration, e.Cause = &end, &dur, "recovered"
	}
	return e
}

func fnv(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

func openStore(t testing.TB, dir string, mod func(*Options)) *Store {
	t.Helper()
	o := Options{StateDir: dir, Logger: quiet()}
	if strings.HasPrefix(dir, "postgres://") {
		o = Options{DSN: dir, Logger: quiet()}
	}
	if mod != nil {
		mod(&o)
	}
	s, err := Open(context.Background(), o)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if s.d.postgres != (o.DSN != "") {
		t.Fatalf("Open %+v: postgres=%v", o, s.d.postgres)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustAdd(t *testing.T, s *Store, e schema.AgentEvent) bool {
	t.Helper()
	ok, err := s.Add(context.Background(), e, nil)
	if err != nil {
		t.Fatalf("Add %s seq %d: %v", e.Agent, e.Seq, err)
	}
	return ok
}

func markOf(t *testing.T, s *Store, fleet, agent string) Mark {
	t.Helper()
	ms, err := s.Marks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range ms {
		if m.Fleet == fleet && m.Agent == agent {
			return m
		}
	}
	t.Fatalf("no mark for %s/%s in %+v", fleet, agent, ms)
	return Mark{}
}

func testWatermarkAndRestart(t *testing.T, newDB func(*testing.T) string) {
	dir := newDB(t)
	s := openStore(t, dir, nil)
	ctx := context.Background()
	for _, n := range []uint64{2, 1, 3, 3, 6, 7} { // out of order, a duplicate, a gap at 4-5
		mustAdd(t, s, ev("f", "a1", n, "s1", "black", "raised"))
	}
	if ok := mustAdd(t, s, ev("f", "a1", 1, "s1", "black", "raised")); ok {
		t.Error("a duplicate id was reported stored")
	}
	m := markOf(t, s, "f", "a1")
	if m.Seq != 3 || !m.Gap || m.Above != 2 || m.Stored != 5 {
		t.Fatalf("mark %+v, want seq 3, gap, 2 above, 5 stored", m)
	}
	if err := s.AddMissing(ctx, "f", "a1", schema.MissingDoc{From: 5, To: 5}); err != nil {
		t.Fatal(err)
	}
	if m := markOf(t, s, "f", "a1"); m.Seq != 3 || !m.Gap {
		t.Fatalf("after missing 5: %+v, want still 3 with a gap (4 missing)", m)
	}
	s.Close()

	// The state survives a restart: W, lost, the missing range, the seqs above.
	s = openStore(t, dir, nil)
	if m := markOf(t, s, "f", "a1"); m.Seq != 3 || !m.Gap || m.Above != 2 || m.Stored != 5 {
		t.Fatalf("after restart: %+v", m)
	}
	mustAdd(t, s, ev("f", "a1", 4, "s1", "black", "cleared"))
	if m := markOf(t, s, "f", "a1"); m.Seq != 7 || m.Gap || m.Lost != 1 || m.Stored != 6 {
		t.Fatalf("after 4: %+v, want seq 7, no gap, 1 lost, 6 stored", m)
	}
	// An agent whose state was wiped restarts at seq 1: new ids are stored,
	// W does not go back.
	e := ev("f", "a1", 1, "s1", "freeze", "raised")
	e.ID = "ffffffffffffffffffffffffffffffff"
	if !mustAdd(t, s, e) {
		t.Error("a new id with an old seq was not stored")
	}
	if m := markOf(t, s, "f", "a1"); m.Seq != 7 || m.Stored != 7 {
		t.Fatalf("after the restart at 1: %+v", m)
	}
}

func testRefuses(t *testing.T, newDB func(*testing.T) string) {
	s := openStore(t, newDB(t), nil)
	mustAdd(t, s, ev("f", "a1", 1, "s1", "black", "raised"))
	forged := ev("f", "a2", 1, "s1", "black", "raised")
	forged.ID = ev("f", "a1", 1, "", "", "").ID
	tests := []struct {
		name string
		e    schema.AgentEvent
		want error
	}{
		{"id of another agent", forged, ErrIDCollision},
		{"no id", func() schema.AgentEvent { e := ev("f", "a1", 2, "s", "black", "raised"); e.ID = ""; return e }(), ErrInvalid},
		{"seq 0", ev("f", "a1", 0, "s", "black", "raised"), ErrInvalid},
		{"seq over int64", ev("f", "a1", 1<<63, "s", "black", "raised"), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Add(context.Background(), tt.e, nil); !errors.Is(err, tt.want) {
				t.Errorf("err %v, want %v", err, tt.want)
			}
		})
	}
	// The refusals did not end the batch or touch the agents.
	if m := markOf(t, s, "f", "a1"); m.Seq != 1 || m.Stored != 1 {
		t.Errorf("a1 %+v", m)
	}
	if ms, _ := s.Marks(context.Background()); len(ms) != 1 {
		t.Errorf("marks %+v, want a1 only", ms)
	}
}

func TestOpenOptions(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name string
		o    Options
		ok   bool
	}{
		{"state dir", Options{StateDir: dir}, true},
		{"path", Options{Path: filepath.Join(dir, "sub", "h.db")}, true},
		{"dsn", Options{DSN: "file:" + filepath.Join(dir, "d.db")}, true},
		{"nothing", Options{}, false},
		{"postgres without a server", Options{DSN: "postgres://u@127.0.0.1:1/streamqc?connect_timeout=2"}, false},
		{"odd path", Options{Path: filepath.Join(dir, "a?b.db")}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.Logger = quiet()
			s, err := Open(context.Background(), tt.o)
			if (err == nil) != tt.ok {
				t.Fatalf("Open: %v, want ok=%v", err, tt.ok)
			}
			if s != nil {
				var mode string
				var sync int
				s.db.QueryRow("PRAGMA journal_mode").Scan(&mode)
				s.db.QueryRow("PRAGMA synchronous").Scan(&sync)
				if mode != "wal" || sync != 2 {
					t.Errorf("journal_mode %q synchronous %d, want wal and 2 (FULL)", mode, sync)
				}
				s.Close()
			}
		})
	}
	// A database newer than the code is refused.
	s := openStore(t, dir, nil)
	s.db.Exec("PRAGMA user_version = 99")
	s.Close()
	if _, err := Open(context.Background(), Options{StateDir: dir, Logger: quiet()}); err == nil {
		t.Error("a database of schema version 99 was opened")
	}
}

func testQueries(t *testing.T, newDB func(*testing.T) string) {
	s := openStore(t, newDB(t), nil)
	ctx := context.Background()
	// a1: s1 black raised (1) cleared (2), s1 freeze raised (3), s2 black raised (4);
	// a2: s1 black raised (1); f2/a1: s1 silence raised (1). Arrival order mixed.
	for _, e := range []schema.AgentEvent{
		ev("f", "a1", 2, "s1", "black", "cleared"),
		ev("f", "a1", 1, "s1", "black", "raised"),
		ev("f", "a1", 3, "s1", "freeze", "raised"),
		ev("f", "a1", 4, "s2", "black", "raised"),
		ev("f", "a2", 1, "s1", "black", "raised"),
		ev("f2", "a1", 1, "s1", "silence", "raised"),
	} {
		mustAdd(t, s, e)
	}
	ids := func(rs []Record) []string {
		var out []string
		for _, r := range rs {
			out = append(out, fmt.Sprintf("%s/%s#%d", r.Fleet, r.Agent, r.Seq))
		}
		return out
	}
	tests := []struct {
		name string
		q    Query
		want []string
	}{
		{"all, newest first", Query{}, []string{"f/a1#4", "f/a1#3", "f/a1#2", "f2/a1#1", "f/a2#1", "f/a1#1"}},
		{"fleet", Query{Fleet: "f2"}, []string{"f2/a1#1"}},
		{"agent", Query{Fleet: "f", Agent: "a1"}, []string{"f/a1#4", "f/a1#3", "f/a1#2", "f/a1#1"}},
		{"stream", Query{Fleet: "f", Agent: "a1", Stream: "s1"}, []string{"f/a1#3", "f/a1#2", "f/a1#1"}},
		{"defect", Query{Defect: "black"}, []string{"f/a1#4", "f/a1#2", "f/a2#1", "f/a1#1"}},
		{"state", Query{Fleet: "f", State: "cleared"}, []string{"f/a1#2"}},
		{"since", Query{Since: t0.Add(3 * time.Second)}, []string{"f/a1#4", "f/a1#3"}},
		{"until", Query{Fleet: "f", Until: t0.Add(2 * time.Second)}, []string{"f/a2#1", "f/a1#1"}},
		{"limit", Query{Limit: 2}, []string{"f/a1#4", "f/a1#3"}},
		{"nothing", Query{Agent: "nobody"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Events(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) {
				t.Errorf("got %v, want %v", ids(got), tt.want)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		var all []string
		q := Query{Limit: 4}
		for page := 0; ; page++ {
			rs, err := s.Events(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 || page > 5 {
				break
			}
			all = append(all, ids(rs)...)
			q.Before = rs[len(rs)-1].Cursor()
		}
		if want := []string{"f/a1#4", "f/a1#3", "f/a1#2", "f2/a1#1", "f/a2#1", "f/a1#1"}; fmt.Sprint(all) != fmt.Sprint(want) {
			t.Errorf("paged %v, want %v", all, want)
		}
		if _, err := s.Events(ctx, Query{Before: "garbage"}); !errors.Is(err, ErrBadCursor) {
			t.Errorf("a bad cursor: %v, want ErrBadCursor", err)
		}
	})
	t.Run("record", func(t *testing.T) {
		rs, _ := s.Events(ctx, Query{Fleet: "f", Agent: "a1", State: "cleared"})
		if len(rs) != 1 || rs[0].End == nil || *rs[0].End != 3 || rs[0].Cause != "recovered" || rs[0].Received.IsZero() {
			t.Errorf("record %+v", rs)
		}
	})
	t.Run("open alarms", func(t *testing.T) {
		for _, tt := range []struct {
			fleet string
			want  []string
		}{
			{"f", []string{"f/a1#4", "f/a1#3", "f/a2#1"}}, // a1 s1 black cleared
			{"", []string{"f/a1#4", "f/a1#3", "f2/a1#1", "f/a2#1"}},
			{"none", nil},
		} {
			got, err := s.OpenAlarms(ctx, tt.fleet)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(ids(got)) != fmt.Sprint(tt.want) {
				t.Errorf("fleet %q: got %v, want %v", tt.fleet, ids(got), tt.want)
			}
		}
	})
}

func thumb(fleet, agent, stream string, n int, event string) schema.ThumbnailDoc {
	return schema.ThumbnailDoc{Type: "thumbnail", ID: fmt.Sprintf("%032x", fnv(fmt.Sprint(fleet, agent, stream, n))),
		Fleet: fleet, Agent: agent, Stream: stream, Kind: schema.ThumbAlarm, Event: event, Defect: "black",
		PTS: float64(n), Time: t0.Add(time.Duration(n) * time.Second).Format(time.RFC3339Nano), Width: 320, Height: 180,
		ContentType: "image/jpeg", Data: []byte{0xff, 0xd8, byte(n), 0xff, 0xd9}}
}

func testThumbnailsAndPrune(t *testing.T, newDB func(*testing.T) string) {
	now := t0
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	setNow := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	s := openStore(t, newDB(t), func(o *Options) {
		o.ThumbnailsPerStream = 3
		o.Retention = 24 * time.Hour
		o.now = clock
		o.pruneChunk = 2
	})
	ctx := context.Background()
	e1 := ev("f", "a1", 1, "s1", "black", "raised")
	mustAdd(t, s, e1)
	mustAdd(t, s, ev("f", "a1", 2, "s1", "black", "cleared"))
	for i := 1; i <= 5; i++ {
		setNow(t0.Add(time.Duration(i) * time.Second))
		if err := s.AddThumbnail(ctx, thumb("f", "a1", "s1", i, e1.ID)); err != nil {
			t.Fatal(err)
		}
	}
	live := thumb("f", "a1", "s1", 9, "")
	live.Kind = schema.ThumbLive
	if err := s.AddThumbnail(ctx, live); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		n    int
		kind string
		kept bool
	}{{1, "alarm", false}, {2, "alarm", false}, {3, "alarm", true}, {5, "alarm", true}, {9, "live", false}} {
		id := thumb("f", "a1", "s1", tt.n, "").ID
		d, err := s.Thumbnail(ctx, id)
		if tt.kept != (err == nil) || (!tt.kept && !errors.Is(err, ErrNotFound)) {
			t.Errorf("thumbnail %d (%s): %v, want kept=%v", tt.n, tt.kind, err, tt.kept)
		}
		if d != nil && (d.Event != e1.ID || d.Width != 320 || len(d.Data) != 5 || d.Data[2] != byte(tt.n) || d.Time != thumb("", "", "", tt.n, "").Time) {
			t.Errorf("thumbnail %d: %+v", tt.n, d)
		}
	}

	// Two days later a new event; prune deletes what was received before
	// the last 24 hours, except the latest event of an alarm.
	for n := uint64(5); n <= 9; n++ { // 5 more old ones: prune deletes 2 at a time here
		mustAdd(t, s, ev("f", "a1", n, "s1", "black", "raised"))
	}
	mustAdd(t, s, ev("f", "a1", 10, "s1", "black", "cleared"))
	setNow(t0.Add(48 * time.Hour))
	mustAdd(t, s, ev("f", "a1", 3, "s2", "freeze", "raised"))
	mustAdd(t, s, ev("f", "a1", 4, "s3", "freeze", "raised"))
	n, err := s.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n != 7 {
		t.Errorf("pruned %d events, want 7 (seqs 1, 2, 5-9; 10 is s1 black's latest)", n)
	}
	rs, _ := s.Events(ctx, Query{})
	if len(rs) != 3 {
		t.Errorf("%d events left, want 3", len(rs))
	}
	if _, err := s.Thumbnail(ctx, thumb("f", "a1", "s1", 5, "").ID); !errors.Is(err, ErrNotFound) {
		t.Errorf("the thumbnail of a pruned event: %v, want gone", err)
	}
	// Pruning keeps the watermark.
	if m := markOf(t, s, "f", "a1"); m.Seq != 10 || m.Stored != 10 {
		t.Errorf("mark %+v", m)
	}
}

// TestGroupCommit: concurrent writers share transactions, and every event
// is stored once.
func testGroupCommit(t *testing.T, newDB func(*testing.T) string) {
	s := openStore(t, newDB(t), nil)
	const agents, per = 8, 200
	var wg sync.WaitGroup
	for a := range agents {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := uint64(1); n <= per; n++ {
				if _, err := s.Add(context.Background(), ev("f", fmt.Sprint("a", a), n, "s", "black", "raised"), nil); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	ms, _ := s.Marks(context.Background())
	if len(ms) != agents {
		t.Fatalf("%d marks, want %d", len(ms), agents)
	}
	for _, m := range ms {
		if m.Seq != per || m.Gap || m.Stored != per {
			t.Errorf("%+v", m)
		}
	}
	var n int
	s.db.QueryRow("SELECT COUNT(*) FROM events").Scan(&n)
	if n != agents*per {
		t.Errorf("%d rows, want %d", n, agents*per)
	}
}

// TestQueryPlans: the usual queries of the timeline walk an index in time
// order: no sort of the matching rows, which would grow with the history.
func TestQueryPlans(t *testing.T) {
	s := openStore(t, t.TempDir(), nil)
	before := Record{AgentEvent: schema.AgentEvent{ID: "x", Time: t0.Format(time.RFC3339)}}.Cursor()
	tests := []struct {
		name  string
		q     Query
		index string
	}{
		{"newest", Query{}, "events_time"},
		{"page", Query{Before: before}, "events_time"},
		{"agent", Query{Fleet: "f", Agent: "a", Before: before}, "events_agent"},
		{"agent window", Query{Fleet: "f", Agent: "a", Since: t0, Until: t0.Add(time.Hour)}, "events_agent"},
		{"stream", Query{Fleet: "f", Agent: "a", Stream: "s", Before: before}, "events_stream"},
		{"defect", Query{Fleet: "f", Defect: "black", Before: before}, "events_defect"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q, args, err := eventsSQL(tt.q)
			if err != nil {
				t.Fatal(err)
			}
			rows, err := s.db.Query("EXPLAIN QUERY PLAN "+q, args...)
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var plan []string
			for rows.Next() {
				var id, parent, notused int
				var d string
				if err := rows.Scan(&id, &parent, &notused, &d); err != nil {
					t.Fatal(err)
				}
				plan = append(plan, d)
			}
			p := strings.Join(plan, "; ")
			if !strings.Contains(p, "INDEX "+tt.index) || strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("plan %q, want %s and no sort", p, tt.index)
			}
		})
	}
}

// TestStoreFailedWrite: a write the database refuses fails alone; the
// writes batched with it are stored, and the agent's watermark covers none
// of what was refused, before or after a restart.
func TestStoreFailedWrite(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir, nil)
	if _, err := s.db.Exec(`CREATE TRIGGER poison BEFORE INSERT ON events WHEN NEW.stream = 'poison'
		BEGIN SELECT RAISE(ABORT, 'injected failure'); END`); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mustAdd(t, s, ev("f", "a1", 1, "s1", "black", "raised"))
	// Queue 2 (poisoned) and 3..40 at once so that they share batches.
	type out struct {
		seq uint64
		err error
	}
	results := make(chan out, 40)
	submit := func(e schema.AgentEvent) {
		if err := s.submit(ctx, op{kind: opEvent, rec: Record{AgentEvent: e}, done: func(r result) { results <- out{e.Seq, r.err} }}); err != nil {
			t.Fatal(err)
		}
	}
	for n := uint64(2); n <= 40; n++ {
		stream := "s1"
		if n == 2 {
			stream = "poison"
		}
		submit(ev("f", "a1", n, stream, "black", "raised"))
		if n == 20 { // an agent whose first event fails: not known after
			submit(ev("f", "a2", 2, "poison", "black", "raised"))
		}
	}
	for range 40 {
		r := <-results
		if (r.err != nil) != (r.seq == 2) {
			t.Errorf("seq %d: err %v", r.seq, r.err)
		}
	}
	if m := markOf(t, s, "f", "a1"); m.Seq != 1 || !m.Gap || m.Above != 38 || m.Stored != 39 {
		t.Fatalf("mark %+v, want W 1 with 38 above, 39 stored", m)
	}
	if ms, _ := s.Marks(ctx); len(ms) != 1 {
		t.Fatalf("marks %+v, want a1's only", ms)
	}
	s.Close()
	s = openStore(t, dir, nil)
	if m := markOf(t, s, "f", "a1"); m.Seq != 1 || m.Above != 38 {
		t.Fatalf("after restart %+v", m)
	}
	if _, err := s.db.Exec(`DROP TRIGGER poison`); err != nil {
		t.Fatal(err)
	}
	mustAdd(t, s, ev("f", "a1", 2, "poison", "black", "raised")) // the agent sends it again
	if m := markOf(t, s, "f", "a1"); m.Seq != 40 || m.Gap {
		t.Fatalf("after the resend %+v", m)
	}
}

// The store's tests run on SQLite, and on PostgreSQL too when
// STREAMQC_TEST_POSTGRES names a scratch database (see TestPostgres).
var storeTests = []struct {
	name string
	f    func(*testing.T, func(*testing.T) string)
}{
	{"StoreWatermarkAndRestart", testWatermarkAndRestart},
	{"StoreRefuses", testRefuses},
	{"Queries", testQueries},
	{"ThumbnailsAndPrune", testThumbnailsAndPrune},
	{"GroupCommit", testGroupCommit},
}

func TestStore(t *testing.T) {
	for _, tt := range storeTests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, func(t *testing.T) string { return t.TempDir() }) })
	}
}

// TestPostgres runs the store's tests on PostgreSQL, each in a schema of its
// own (dropped after), when STREAMQC_TEST_POSTGRES is a postgres:// URL of a
// database the tests may create schemas in; skipped (and said) otherwise.
func TestPostgres(t *testing.T) {
	dsn := os.Getenv("STREAMQC_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("STREAMQC_TEST_POSTGRES is not set: the PostgreSQL store is NOT tested (set it to postgres://user@host:port/db)")
	}
	newDB := func(t *testing.T) string { return pgSchema(t, dsn) }
	for _, tt := range storeTests {
		t.Run(tt.name, func(t *testing.T) { tt.f(t, newDB) })
	}
}

// pgSchema makes a schema of its own for a test in the database of dsn,
// dropped after it, and returns the DSN that uses it.
func pgSchema(tb testing.TB, dsn string) string {
	tb.Helper()
	admin, err := sql.Open("pgx", dsn)
	if err != nil {
		tb.Fatal(err)
	}
	name := fmt.Sprintf("streamqc_history_test_%d_%d", os.Getpid(), time.Now().UnixNano())
	if _, err := admin.Exec("CREATE SCHEMA " + name); err != nil {
		admin.Close()
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		admin.Exec("DROP SCHEMA " + name + " CASCADE")
		admin.Close()
	})
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	return dsn + sep + "search_path=" + name
}
