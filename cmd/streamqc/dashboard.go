package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/consumer/dashboard"
	"github.com/streamqc/streamqc/consumer/history"
)

const dashboardAbout = `Serves a read-only web page of a fleet, live: its agents, a mosaic of its
streams with their open alarms and pictures, and a timeline of events with
filters. One MQTT session follows the broker; pages get its updates over
Server-Sent Events.

It is the fleet's consumer of record: it stores every event in its database
(SQLite, --db) and tells each agent, retained on .../events/stored, what it
has stored, so that agents keep events until then. Run one recording
dashboard per fleet; others take --no-record (their timeline is what they saw).

It listens on 127.0.0.1:8090 by default. Any other address needs TLS
(--tls-cert, --tls-key) and --auth-file: a file holding the password (the
browser asks for it; any user name) or bearer token, at least 16 characters.`

func dashboardCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dashboard", "[--listen ADDR] [--tls-cert F --tls-key F --auth-file F] [--db FILE | --no-record] [broker flags]",
		dashboardAbout, stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	listen := fs.String("listen", "127.0.0.1:8090", "address of the page; a non-loopback one needs --tls-cert, --tls-key and --auth-file")
	certFile := fs.String("tls-cert", "", "TLS certificate file (PEM)")
	keyFile := fs.String("tls-key", "", "TLS key file (PEM)")
	authFile := fs.String("auth-file", "", "file holding the password or bearer token pages must give")
	db := fs.String("db", "", "the event history: a SQLite `file` (default history.db in the state directory: "+defaultStateDir()+
		"), or a postgres:// URL (its password in PGPASSWORD or ~/.pgpass, not in the URL)")
	noRecord := fs.Bool("no-record", false, "do not be the consumer of record: no database, the timeline holds what this process saw")
	verbose := fs.Bool("v", false, "log connection changes and dropped messages to stderr")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	if *noRecord && *db != "" {
		return fs.fail("--db and --no-record exclude each other")
	}
	token, err := dashboardSecurity(*listen, *certFile, *keyFile, *authFile)
	if err != nil {
		return fs.fail("%v", err)
	}
	if err := runDashboard(ctx, dashboardRun{bf: bf, listen: *listen, cert: *certFile, key: *keyFile, token: token,
		db: *db, record: !*noRecord, verbose: *verbose}, stdout); err != nil {
		fmt.Fprintf(stderr, "streamqc dashboard: %v\n", err)
		return 1
	}
	return 0
}

type dashboardRun struct {
	bf                *brokerFlags
	listen, cert, key string
	token, db         string
	record, verbose   bool
}

func runDashboard(ctx context.Context, o dashboardRun, stdout io.Writer) error {
	logger := quietLogger(o.verbose)
	br, fleet, err := o.bf.resolve()
	if err != nil {
		return err
	}
	if err := reachable(ctx, br.URL); err != nil {
		return fmt.Errorf("broker %s: %w", br.URL, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var store *history.Store
	var hist dashboard.History
	if o.record {
		ho := history.Options{Path: o.db, Logger: logger}
		if strings.HasPrefix(o.db, "postgres://") || strings.HasPrefix(o.db, "postgresql://") {
			ho.Path, ho.DSN = "", o.db // a larger fleet's PostgreSQL (consumer/history/README.md)
		} else {
			if ho.Path == "" {
				ho.Path = filepath.Join(defaultStateDir(), "history.db")
			}
			if err := os.MkdirAll(filepath.Dir(ho.Path), 0o750); err != nil {
				return fmt.Errorf("--db: %w", err)
			}
		}
		if store, err = history.Open(ctx, ho); err != nil {
			return err
		}
		defer store.Close()
		hist = dashboard.StoreHistory(store, fleet)
	}
	srv := dashboard.New(dashboard.Options{History: hist, Logger: logger, Token: o.token})

	// One session: durable when recording (the broker keeps the events
	// while the dashboard is away), with a fixed id per fleet.
	id := *o.bf.clientID
	if id == "" {
		id = "streamqc-dashboard-" + newSuffix()
		if o.record {
			// The consumer of record's own prefix: a read-only account
			// (client ids streamqc-dashboard-*) cannot take its session over.
			id = "streamqc-recorder-" + orDefault(fleet, "all-fleets")
		}
	}
	clean := !o.record
	var rec *history.Recorder
	var recMu sync.Mutex
	mo := agent.ClientOptions(br, id, logger)
	mo.CleanSession = &clean
	mo.OnConnect = func(ctx context.Context, c *mqtt.Client) {
		recMu.Lock()
		r := rec
		recMu.Unlock()
		if r != nil {
			r.OnConnect(ctx, c)
		}
	}
	c, err := mqtt.New(mo)
	if err != nil {
		return err
	}
	defer c.Close(time.Second)
	if o.record {
		r, err := srv.Record(ctx, store, c, fleet, "streamqc-dashboard")
		if err != nil {
			return err
		}
		recMu.Lock()
		rec = r
		recMu.Unlock()
	} else {
		srv.Subscribe(c, fleet)
	}
	c.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, *o.bf.timeout)
	err = c.WaitConnected(wctx)
	wcancel()
	if err != nil {
		return fmt.Errorf("broker %s: %w", br.URL, err)
	}
	ln, err := net.Listen("tcp", o.listen)
	if err != nil {
		return err
	}
	scheme := "http"
	if o.cert != "" {
		scheme = "https"
	}
	what := "fleet " + orDefault(fleet, "(every fleet)")
	if o.record {
		what += ", recording"
	}
	fmt.Fprintf(stdout, "streamqc dashboard: %s://%s/ (%s)\n", scheme, displayAddr(ln.Addr()), what)

	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); _ = srv.Run(ctx) }()
	if rec != nil {
		wg.Add(1)
		go func() { defer wg.Done(); _ = rec.Run(ctx) }()
	}
	err = dashboard.Serve(ctx, ln, srv.Handler(), o.cert, o.key, logger)
	cancel()
	wg.Wait()
	return err
}

// defaultStateDir is where the dashboard keeps its database: the agent's
// state directory for root (a service), else the user's state directory.
func defaultStateDir() string {
	if os.Geteuid() == 0 {
		return "/var/lib/streamqc"
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "streamqc")
	}
	if h, err := os.UserHomeDir(); err == nil {
		return filepath.Join(h, ".local", "state", "streamqc")
	}
	return "streamqc-state"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// dashboardSecurity checks the listening address against the protection it
// has and returns the token: a loopback address may go without; any other
// needs TLS and a token read from a file (never a flag: it would show in
// ps and the shell's history).
func dashboardSecurity(listen, cert, key, authFile string) (string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if (cert == "") != (key == "") {
		return "", errors.New("--tls-cert and --tls-key go together")
	}
	token := ""
	if authFile != "" {
		b, err := os.ReadFile(authFile)
		if err != nil {
			return "", fmt.Errorf("--auth-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if len(token) < 16 {
			return "", fmt.Errorf("--auth-file %s: the password or token is %d characters, want at least 16", authFile, len(token))
		}
	}
	if !isLoopback(host) && (cert == "" || token == "") {
		return "", fmt.Errorf("--listen %s is not a loopback address: it needs --tls-cert, --tls-key and --auth-file", listen)
	}
	return token, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// displayAddr is an address for a URL.
func displayAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		h, _ := os.Hostname()
		return net.JoinHostPort(h, fmt.Sprint(t.Port))
	}
	return a.String()
}
