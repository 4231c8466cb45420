package history

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// migrations are the schema versions in order: migrations[i] takes the
// database from user_version i to i+1. Append; never edit a released one.
// The SQL is kept to what PostgreSQL also runs (BIGINT, DOUBLE PRECISION,
// ON CONFLICT, no AUTOINCREMENT, no column named like a keyword); BLOB is
// the one word a PostgreSQL port changes (BYTEA), see README.md.
func migrations() []string {
	return []string{
		// 1: events, delivery state per agent, open alarms, thumbnails.
		`CREATE TABLE events (
		id          TEXT PRIMARY KEY,
		fleet       TEXT NOT NULL,
		agent       TEXT NOT NULL,
		stream      TEXT NOT NULL,
		defect      TEXT NOT NULL,
		state       TEXT NOT NULL,
		seq         BIGINT NOT NULL,
		start_s     DOUBLE PRECISION NOT NULL,
		end_s       DOUBLE PRECISION,
		duration_s  DOUBLE PRECISION,
		reason      TEXT NOT NULL,
		cause       TEXT NOT NULL,
		vals        TEXT,
		thumbnail   TEXT NOT NULL,
		time_ns     BIGINT NOT NULL,
		received_ns BIGINT NOT NULL,
		raw         TEXT NOT NULL
	);
	CREATE INDEX events_time ON events (time_ns, id);
	CREATE INDEX events_agent ON events (fleet, agent, time_ns, id);
	CREATE INDEX events_stream ON events (fleet, agent, stream, time_ns, id);
	CREATE INDEX events_defect ON events (fleet, defect, time_ns, id);
	CREATE INDEX events_seq ON events (fleet, agent, seq);
	CREATE INDEX events_received ON events (received_ns);
	CREATE TABLE marks (
		fleet      TEXT NOT NULL,
		agent      TEXT NOT NULL,
		watermark  BIGINT NOT NULL,
		lost       BIGINT NOT NULL,
		stored     BIGINT NOT NULL,
		missing    TEXT NOT NULL,
		updated_ns BIGINT NOT NULL,
		PRIMARY KEY (fleet, agent)
	);
	CREATE TABLE alarms (
		fleet   TEXT NOT NULL,
		agent   TEXT NOT NULL,
		stream  TEXT NOT NULL,
		defect  TEXT NOT NULL,
		time_ns BIGINT NOT NULL,
		seq     BIGINT NOT NULL,
		event   TEXT NOT NULL,
		state   TEXT NOT NULL,
		PRIMARY KEY (fleet, agent, stream, defect)
	);
	CREATE INDEX alarms_event ON alarms (event);
	CREATE TABLE thumbnails (
		id           TEXT PRIMARY KEY,
		fleet        TEXT NOT NULL,
		agent        TEXT NOT NULL,
		stream       TEXT NOT NULL,
		kind         TEXT NOT NULL,
		event        TEXT NOT NULL,
		defect       TEXT NOT NULL,
		pts          DOUBLE PRECISION NOT NULL,
		time_ns      BIGINT NOT NULL,
		received_ns  BIGINT NOT NULL,
		width        INTEGER NOT NULL,
		height       INTEGER NOT NULL,
		content_type TEXT NOT NULL,
		data         BLOB NOT NULL
	);
	CREATE INDEX thumbnails_stream ON thumbnails (fleet, agent, stream, received_ns);
	CREATE INDEX thumbnails_event ON thumbnails (event);`,
	}
}

// dialect is what differs between SQLite and PostgreSQL: the placeholders,
// the blob type, where the schema version is kept, the pragmas.
type dialect struct {
	postgres bool
}

// q rewrites the ? placeholders of a statement as $1, $2... for
// PostgreSQL (no statement here has a ? in a string literal).
func (d dialect) q(s string) string {
	if !d.postgres || !strings.Contains(s, "?") {
		return s
	}
	var b strings.Builder
	n := 0
	for _, r := range s {
		if r == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// version reads the schema version: SQLite's user_version, or PostgreSQL's
// history_schema table (made at version 0).
func (d dialect) version(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if !d.postgres {
		err := db.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v)
		return v, err
	}
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS history_schema (version INTEGER NOT NULL)`); err != nil {
		return 0, err
	}
	err := db.QueryRowContext(ctx, `SELECT version FROM history_schema`).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		_, err = db.ExecContext(ctx, `INSERT INTO history_schema (version) VALUES (0)`)
	}
	return v, err
}

// setVersion records the schema version in the migration's transaction.
func (d dialect) setVersion(ctx context.Context, tx *sql.Tx, v int) error {
	var err error
	if d.postgres {
		_, err = tx.ExecContext(ctx, `UPDATE history_schema SET version = $1`, v)
	} else {
		// user_version is in the database header: it commits with the tables.
		_, err = tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v))
	}
	return err
}

// migrate brings the schema to the latest version, one transaction per
// version; a database newer than this code is refused.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	migrations := migrations()
	v, err := d.version(ctx, db)
	if err != nil {
		return fmt.Errorf("schema version: %w", err)
	}
	if v > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this program's %d", v, len(migrations))
	}
	for ; v < len(migrations); v++ {
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		m := migrations[v]
		if d.postgres {
			m = strings.ReplaceAll(m, "BLOB", "BYTEA")
		}
		if _, err := tx.ExecContext(ctx, m); err != nil {
			tx.Rollback() //nolint:errcheck
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		if err := d.setVersion(ctx, tx, v+1); err != nil {
			tx.Rollback() //nolint:errcheck
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("migrate to %d: %w", v+1, err)
		}
	}
	return nil
}

// stmts are the writer's statements, prepared on its transaction.
type stmts struct {
	event, byID, alarm, mark, thumb, thumbCap *sql.Stmt
}

func prepare(ctx context.Context, tx *sql.Tx, d dialect) (*stmts, error) {
	st := &stmts{}
	for _, p := range []struct {
		dst **sql.Stmt
		q   string
	}{
		{&st.event, `INSERT INTO events (id, fleet, agent, stream, defect, state, seq, start_s, end_s, duration_s,
			reason, cause, vals, thumbnail, time_ns, received_ns, raw)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&st.byID, `SELECT fleet, agent, seq FROM events WHERE id = ?`},
		// The latest event per agent, stream and defect, by the agent's
		// clock then seq: whichever order they arrive in.
		{&st.alarm, `INSERT INTO alarms (fleet, agent, stream, defect, time_ns, seq, event, state)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fleet, agent, stream, defect) DO UPDATE SET
				time_ns = excluded.time_ns, seq = excluded.seq, event = excluded.event, state = excluded.state
			WHERE excluded.time_ns > alarms.time_ns
				OR (excluded.time_ns = alarms.time_ns AND excluded.seq > alarms.seq)`},
		{&st.mark, `INSERT INTO marks (fleet, agent, watermark, lost, stored, missing, updated_ns)
			VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (fleet, agent) DO UPDATE SET watermark = excluded.watermark, lost = excluded.lost,
				stored = excluded.stored, missing = excluded.missing, updated_ns = excluded.updated_ns`},
		{&st.thumb, `INSERT INTO thumbnails (id, fleet, agent, stream, kind, event, defect, pts, time_ns, received_ns,
			width, height, content_type, data)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`},
		{&st.thumbCap, `DELETE FROM thumbnails WHERE fleet = ? AND agent = ? AND stream = ? AND id NOT IN
			(SELECT id FROM thumbnails WHERE fleet = ? AND agent = ? AND stream = ?
			 ORDER BY received_ns DESC, id DESC LIMIT ?)`},
	} {
		var err error
		if *p.dst, err = tx.PrepareContext(ctx, d.q(p.q)); err != nil {
			st.close()
			return nil, fmt.Errorf("prepare: %w", err)
		}
	}
	return st, nil
}

func (st *stmts) close() {
	for _, s := range []*sql.Stmt{st.event, st.byID, st.alarm, st.mark, st.thumb, st.thumbCap} {
		if s != nil {
			s.Close()
		}
	}
}

// optimize refreshes the query planner's statistics (SQLite's advice for a
// long-lived connection: at open, then from time to time); PostgreSQL's
// autovacuum does it by itself.
func (d dialect) optimize(ctx context.Context, db *sql.DB, atOpen bool) error {
	if d.postgres {
		return nil
	}
	q := `PRAGMA optimize`
	if atOpen {
		q = `PRAGMA optimize=0x10002`
	}
	_, err := db.ExecContext(ctx, q)
	return err
}
