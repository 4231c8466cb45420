// Package dashboard is `streamqc dashboard`: a read-only web page of a fleet,
// live. One server-side MQTT session follows the fleet's retained status,
// metrics and thumbnails and its events; the server keeps the fleet's state,
// pushes every event to the pages at once over Server-Sent Events, and
// coalesces everything else (1,000 streams' metrics) into one delta frame per
// period. The timeline pages through the consumer of record's store
// (History). The page is vanilla HTML, CSS and JavaScript embedded in the
// binary: no build step, nothing fetched from elsewhere.
package dashboard

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/schema"
)

//go:embed assets
var assets embed.FS

// ErrBadCursor: a History's Events was given a cursor it did not make.
var ErrBadCursor = errors.New("bad cursor")

// Options of a Server.
type Options struct {
	// History serves the timeline, the alarms open at start and old
	// thumbnails; nil: an in-memory history of what this server saw.
	History History
	Logger  *slog.Logger
	// Flush is the period of the coalesced delta frames (default 1 s);
	// events are pushed at once, and a change of alarm or picture is sent
	// within FlushSoon.
	Flush     time.Duration
	FlushSoon time.Duration
	// Token, when set, is the password (HTTP Basic, any user name) or
	// bearer token every request must carry. Without it the server answers
	// only requests addressed to a loopback name (Host header), so that a
	// web page elsewhere cannot read it through DNS rebinding.
	Token string
	// MaxClients bounds the live pages (default 64).
	MaxClients int
	// Thumbnails: thumbnails kept in memory besides every stream's current
	// pictures (default 512).
	Thumbnails int
}

// Server is the dashboard.
type Server struct {
	o       Options
	log     *slog.Logger
	m       *model
	mem     *MemHistory // when o.History is nil
	hist    History
	kick    chan struct{}
	static  http.Handler
	index   []byte
	token   [32]byte
	mu      sync.Mutex
	clients map[*client]struct{}
	dropped int
}

type client struct {
	ch   chan []byte
	gone chan struct{}
	once sync.Once
}

func (c *client) drop() { c.once.Do(func() { close(c.gone) }) }

// New returns a server; call Run for its coalescing loop.
func New(o Options) *Server {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Flush <= 0 {
		o.Flush = time.Second
	}
	if o.FlushSoon <= 0 {
		o.FlushSoon = 100 * time.Millisecond
	}
	if o.MaxClients <= 0 {
		o.MaxClients = 64
	}
	if o.Thumbnails <= 0 {
		o.Thumbnails = 512
	}
	s := &Server{o: o, log: o.Logger, m: newModel(o.Thumbnails), hist: o.History,
		kick: make(chan struct{}, 1), clients: map[*client]struct{}{}}
	if s.hist == nil {
		s.mem = NewMemHistory(10000)
		s.hist = s.mem
	}
	if o.Token != "" {
		s.token = sha256.Sum256([]byte(o.Token))
	}
	sub, _ := fs.Sub(assets, "assets")
	s.static = http.FileServerFS(sub)
	s.index, _ = fs.ReadFile(sub, "index.html")
	return s
}

// Subscribe subscribes c to the fleet's status, metrics, events and
// thumbnails (fleet "" for every fleet); call it before c.Start. Each
// page follows the broker through this one session.
func (s *Server) Subscribe(c *mqtt.Client, fleet string) {
	for _, leaf := range []string{"status", "metrics", "events", "thumbnails/+/+"} {
		c.Subscribe(schema.Filter(fleet, "", leaf), 1, s.HandleMessage)
	}
}

// SubscribeState subscribes c to the fleet's status and metrics only: the
// events and thumbnails come from the consumer of record (AddEvent once
// stored, AddThumbnail), on the same session.
func (s *Server) SubscribeState(c *mqtt.Client, fleet string) {
	for _, leaf := range []string{"status", "metrics"} {
		c.Subscribe(schema.Filter(fleet, "", leaf), 1, s.HandleMessage)
	}
}

// AddThumbnail takes a thumbnail from elsewhere than the broker (the
// consumer of record, which checked it).
func (s *Server) AddThumbnail(d schema.ThumbnailDoc) {
	if d.ID == "" || d.Stream == "" || len(d.Data) == 0 {
		return
	}
	s.m.addThumbnail(d)
	if s.mem != nil && d.Kind == schema.ThumbAlarm {
		s.mem.AddThumbnail(d) // the timeline's; live ones would push them out
	}
	s.soon()
}

// HandleMessage takes one message of an agent topic.
func (s *Server) HandleMessage(msg mqtt.Message) {
	fleet, agent, ok := topicAgent(msg.Topic)
	if !ok {
		return
	}
	leaf := strings.TrimPrefix(msg.Topic, schema.Root+"/"+fleet+"/"+agent+"/")
	var err error
	switch {
	case leaf == "status":
		err = s.m.status(msg.Topic, msg.Payload)
	case leaf == "metrics":
		err = s.m.metrics(msg.Topic, msg.Payload)
	case leaf == "events":
		var e schema.AgentEvent
		var fresh bool
		e, fresh, err = s.m.event(msg.Topic, msg.Payload)
		if err == nil && fresh {
			s.pushEvent(e)
		}
	case strings.HasPrefix(leaf, "thumbnails/"):
		var d schema.ThumbnailDoc
		d, err = s.m.thumbnail(msg.Topic, msg.Payload)
		if err == nil && d.ID != "" {
			if s.mem != nil && d.Kind == schema.ThumbAlarm {
				s.mem.AddThumbnail(d) // the timeline's; live ones would push them out
			}
			s.soon()
		}
	default:
		return
	}
	if err != nil {
		s.log.Warn("dashboard: message dropped", "topic", msg.Topic, "err", err)
	}
}

// AddEvent takes an event from elsewhere than the broker (the store's open
// alarms at start); a redelivered id is ignored.
func (s *Server) AddEvent(e schema.AgentEvent) {
	if s.m.addEvent(e) {
		s.pushEvent(e)
	}
}

// Seed loads the alarms open in the history: alarms raised before the
// dashboard started, with their event.
func (s *Server) Seed(ctx context.Context) error {
	open, err := s.hist.OpenAlarms(ctx)
	if err != nil {
		return fmt.Errorf("open alarms: %w", err)
	}
	for _, e := range open {
		s.m.addEvent(e)
	}
	return nil
}

func (s *Server) pushEvent(e schema.AgentEvent) {
	if s.mem != nil {
		s.mem.Add(e)
	}
	s.broadcast(frame("event", LiveEvent{AgentEvent: e, Recv: time.Now().UnixMilli()}))
	s.soon()
}

func (s *Server) soon() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Run sends the coalesced deltas until ctx is done.
func (s *Server) Run(ctx context.Context) error {
	tick := time.NewTicker(s.o.Flush)
	defer tick.Stop()
	var soon <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			s.mu.Lock()
			for c := range s.clients {
				c.drop()
			}
			s.mu.Unlock()
			return nil
		case <-s.kick:
			if soon == nil {
				soon = time.After(s.o.FlushSoon)
			}
			continue
		case <-soon:
		case <-tick.C:
		}
		soon = nil
		if d, ok := s.m.flush(); ok {
			s.broadcast(frame("delta", d))
		}
	}
}

func frame(name string, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		b = []byte("{}")
	}
	var f bytes.Buffer
	f.Grow(len(b) + len(name) + 16)
	f.WriteString("event: ")
	f.WriteString(name)
	f.WriteString("\ndata: ")
	f.Write(b)
	f.WriteString("\n\n")
	return f.Bytes()
}

// broadcast queues a frame for every page; a page that is that far
// behind is dropped (its EventSource reconnects and starts from a fresh
// snapshot) rather than holding memory or the others back.
func (s *Server) broadcast(f []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		select {
		case c.ch <- f:
		default:
			delete(s.clients, c)
			c.drop()
			s.dropped++
			s.log.Warn("dashboard: a page too slow to follow was disconnected")
		}
	}
}

// Handler is the read-only HTTP interface.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.serveIndex)
	mux.Handle("GET /assets/", http.StripPrefix("/assets/", s.static))
	mux.HandleFunc("GET /api/snapshot", s.serveSnapshot)
	mux.HandleFunc("GET /api/events", s.serveEvents)
	mux.HandleFunc("GET /api/thumbnails/{id}", s.serveThumbnail)
	mux.HandleFunc("GET /api/live", s.serveLive)
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	return s.guard(mux)
}

// guard: security headers, GET only, and the token or a loopback Host.
func (s *Server) guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "+
			"connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			h.Set("Allow", "GET, HEAD")
			http.Error(w, "read-only", http.StatusMethodNotAllowed)
			return
		}
		if s.o.Token != "" {
			if !s.authorized(r) {
				h.Set("WWW-Authenticate", `Basic realm="streamqc dashboard", charset="UTF-8"`)
				http.Error(w, "unauthorized", http.StatusUnauthorized)
				return
			}
		} else if !loopbackHost(r.Host) {
			http.Error(w, "this dashboard answers loopback names only (127.0.0.1, localhost, [::1])", http.StatusMisdirectedRequest)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) authorized(r *http.Request) bool {
	var got string
	if _, pw, ok := r.BasicAuth(); ok {
		got = pw
	} else if b, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		got = strings.TrimSpace(b)
	} else {
		return false
	}
	sum := sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(sum[:], s.token[:]) == 1
}

// loopbackHost reports whether a Host header names this machine's
// loopback interface.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.Trim(host, "[]"), ".")
	if strings.EqualFold(host, "localhost") || strings.HasSuffix(strings.ToLower(host), ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func (s *Server) serveIndex(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-cache")
	_, _ = w.Write(s.index)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(v)
}

func (s *Server) serveSnapshot(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, s.m.snapshot())
}

func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	v := r.URL.Query()
	q := Query{Fleet: v.Get("fleet"), Agent: v.Get("agent"), Stream: v.Get("stream"), Defect: v.Get("defect"),
		State: v.Get("state"), Before: v.Get("before"), Limit: 100}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 1000 {
			http.Error(w, "limit: 1 to 1000", http.StatusBadRequest)
			return
		}
		q.Limit = n
	}
	p, err := s.hist.Events(r.Context(), q)
	if errors.Is(err, ErrBadCursor) {
		http.Error(w, "bad cursor", http.StatusBadRequest)
		return
	}
	if err != nil {
		s.log.Error("dashboard: events", "err", err)
		http.Error(w, "history unavailable", http.StatusServiceUnavailable)
		return
	}
	writeJSON(w, p)
}

var thumbID = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (s *Server) serveThumbnail(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if !thumbID.MatchString(id) {
		http.NotFound(w, r)
		return
	}
	d, ok := s.m.thumb(id)
	if !ok {
		var err error
		d, ok, err = s.hist.Thumbnail(r.Context(), id)
		if err != nil {
			s.log.Error("dashboard: thumbnail", "id", id, "err", err)
			http.Error(w, "history unavailable", http.StatusServiceUnavailable)
			return
		}
	}
	if !ok || len(d.Data) == 0 {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/jpeg") // never what the payload claims
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
	_, _ = w.Write(d.Data)
}

// serveLive is the Server-Sent Events stream of a page: a snapshot, then
// events and deltas.
func (s *Server) serveLive(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	c := &client{ch: make(chan []byte, 1024), gone: make(chan struct{})}
	s.mu.Lock()
	if len(s.clients) >= s.o.MaxClients {
		s.mu.Unlock()
		http.Error(w, "too many pages", http.StatusServiceUnavailable)
		return
	}
	s.clients[c] = struct{}{} // before the snapshot: nothing falls between
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.clients, c)
		s.mu.Unlock()
	}()
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	write := func(b []byte) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, err := w.Write(b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	if !write([]byte("retry: 2000\n\n")) || !write(frame("snapshot", s.m.snapshot())) {
		return
	}
	beat := time.NewTicker(15 * time.Second)
	defer beat.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-c.gone:
			return
		case f := <-c.ch:
			if !write(f) {
				return
			}
		case <-beat.C:
			if !write([]byte(": keep-alive\n\n")) {
				return
			}
		}
	}
}

// Serve serves h on ln until ctx is done, then shuts down gracefully
// (live pages are cut, requests in flight get 5 s). With certFile and
// keyFile it serves HTTPS only.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, certFile, keyFile string, logger *slog.Logger) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// No WriteTimeout: the live stream is long; it sets its own
		// deadline per write, other answers are small.
		IdleTimeout:    60 * time.Second,
		MaxHeaderBytes: 16 << 10,
		ErrorLog:       slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		// Requests end with ctx: the live streams stop at shutdown.
		BaseContext: func(net.Listener) context.Context { return ctx },
	}
	errc := make(chan error, 1)
	go func() {
		if certFile != "" {
			errc <- srv.ServeTLS(ln, certFile, keyFile)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return fmt.Errorf("dashboard: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("dashboard: serve: %w", err)
	}
	return nil
}
