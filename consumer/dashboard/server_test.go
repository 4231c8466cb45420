package dashboard

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/schema"
)

func msg(topic string, v any) mqtt.Message {
	b, _ := json.Marshal(v)
	return mqtt.Message{Topic: topic, Payload: b}
}

func ev(agent, stream, defect, state, id, at string) schema.AgentEvent {
	return schema.AgentEvent{DefectEvent: schema.DefectEvent{Type: "defect", Stream: stream, Defect: defect, State: state},
		ID: id, Fleet: "f", Agent: agent, Time: at}
}

func evMsg(e schema.AgentEvent) mqtt.Message {
	return msg(schema.NewTopics(e.Fleet, e.Agent).Events, e)
}

func thumbMsg(agent, stream, kind, id, event, defect string) mqtt.Message {
	d := schema.ThumbnailDoc{Type: "thumbnail", ID: id, Fleet: "f", Agent: agent, Stream: stream, Kind: kind,
		Event: event, Defect: defect, Width: 2, Height: 2, ContentType: "image/jpeg", Data: []byte("jpeg-" + id)}
	return msg(schema.NewTopics("f", agent).Thumbnail(stream, kind), d)
}

func metricsMsg(agent, at string, streams ...map[string]any) mqtt.Message {
	return msg(schema.NewTopics("f", agent).Metrics, map[string]any{"time": at, "fleet": "f", "agent": agent,
		"version": "v1", "broker_connected": true, "process": map[string]any{"cpu_percent": 12.34, "rss_bytes": 1 << 20},
		"spool": map[string]any{"pending": 3}, "streams": streams})
}

const t0 = "2026-12-04T10:00:00Z"

func at(sec int) string {
	return time.Date(2026, 12, 4, 10, 0, sec, 0, time.UTC).Format(time.RFC3339Nano)
}

func alarmsOf(sn Snapshot, key string) string {
	for _, s := range sn.Streams {
		if s.Key == key {
			var parts []string
			for _, a := range s.Alarms {
				parts = append(parts, a.Defect+"@"+a.Thumbnail)
			}
			return strings.Join(parts, ",") + "|" + s.ThumbKind + ":" + s.Thumb
		}
	}
	return "absent"
}

// TestModel: what a sequence of broker messages makes of a stream's alarms
// and picture.
func TestModel(t *testing.T) {
	tests := []struct {
		name string
		msgs []mqtt.Message
		want string // alarmsOf f/a/s1
	}{
		{"raised, its picture after", []mqtt.Message{
			evMsg(func() schema.AgentEvent {
				e := ev("a", "s1", "black", "raised", "e1", at(1))
				e.Thumbnail = "t1"
				return e
			}()),
			thumbMsg("a", "s1", "alarm", "t1", "e1", "black"),
		}, "black@t1|alarm:t1"},
		{"picture before its event", []mqtt.Message{
			thumbMsg("a", "s1", "alarm", "t1", "e1", "black"),
			evMsg(func() schema.AgentEvent {
				e := ev("a", "s1", "black", "raised", "e1", at(1))
				e.Thumbnail = "t1"
				return e
			}()),
		}, "black@t1|alarm:t1"},
		{"raised then cleared, live picture stays", []mqtt.Message{
			thumbMsg("a", "s1", "live", "l1", "", ""),
			evMsg(ev("a", "s1", "black", "raised", "e1", at(1))),
			evMsg(ev("a", "s1", "black", "cleared", "e2", at(3))),
		}, "|live:l1"},
		{"an alarm without a picture shows the live one", []mqtt.Message{
			thumbMsg("a", "s1", "live", "l1", "", ""),
			evMsg(ev("a", "s1", "freeze", "raised", "e1", at(1))),
		}, "freeze@|live:l1"},
		{"metrics tell of an alarm raised before we started, retained picture attached", []mqtt.Message{
			thumbMsg("a", "s1", "alarm", "t0", "e0", "silence"),
			metricsMsg("a", at(5), map[string]any{"id": "s1", "state": "running", "fps": 25, "alarms": []string{"silence"}}),
		}, "silence@t0|alarm:t0"},
		{"metrics just after a clear do not reopen it", []mqtt.Message{
			evMsg(ev("a", "s1", "black", "raised", "e1", at(1))),
			evMsg(ev("a", "s1", "black", "cleared", "e2", at(3))),
			metricsMsg("a", at(4), map[string]any{"id": "s1", "state": "running", "alarms": []string{"black"}}),
		}, "|:"},
		{"later metrics without the alarm close it (its clear was lost)", []mqtt.Message{
			evMsg(ev("a", "s1", "black", "raised", "e1", at(1))),
			metricsMsg("a", at(9), map[string]any{"id": "s1", "state": "running"}),
		}, "|:"},
		{"a forged event (payload names another agent) is dropped", []mqtt.Message{
			{Topic: schema.NewTopics("f", "b").Events, Payload: mustJSON(ev("a", "s1", "black", "raised", "e1", at(1)))},
		}, "absent"},
		{"a redelivered event counts once", []mqtt.Message{
			evMsg(ev("a", "s1", "black", "raised", "e1", at(1))),
			evMsg(ev("a", "s1", "black", "cleared", "e2", at(3))),
			evMsg(ev("a", "s1", "black", "raised", "e1", at(1))),
		}, "|:"},
		{"tr101290 alarms are one per indicator, as the metrics name them", []mqtt.Message{
			evMsg(func() schema.AgentEvent {
				e := ev("a", "s1", "tr101290", "raised", "e1", at(1))
				e.Reason = "2.3a pcr_repetition_error"
				return e
			}()),
			evMsg(func() schema.AgentEvent {
				e := ev("a", "s1", "tr101290", "raised", "e2", at(2))
				e.Reason = "1.1 sync_loss"
				return e
			}()),
			metricsMsg("a", at(9), map[string]any{"id": "s1", "state": "running", "alarms": []string{"tr101290/1.1 sync_loss", "tr101290/2.3a pcr_repetition_error"}}),
			evMsg(func() schema.AgentEvent {
				e := ev("a", "s1", "tr101290", "cleared", "e3", at(10))
				e.Reason = "2.3a pcr_repetition_error"
				return e
			}()),
		}, "tr101290@|:"},
		{"a stream gone from the metrics is removed", []mqtt.Message{
			metricsMsg("a", at(1), map[string]any{"id": "s1", "state": "running"}),
			metricsMsg("a", at(2), map[string]any{"id": "s2", "state": "running"}),
		}, "absent"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := New(Options{Logger: discard()})
			for _, m := range tc.msgs {
				s.HandleMessage(m)
			}
			if got := alarmsOf(s.m.snapshot(), "f/a/s1"); got != tc.want {
				t.Errorf("stream f/a/s1: %q, want %q", got, tc.want)
			}
		})
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// TestDeltaCoalesces: many metrics make one delta of what changed.
func TestDeltaCoalesces(t *testing.T) {
	s := New(Options{Logger: discard()})
	var streams []map[string]any
	for i := range 1000 {
		streams = append(streams, map[string]any{"id": fmt.Sprintf("s%04d", i), "state": "running", "fps": 25})
	}
	s.HandleMessage(metricsMsg("a", at(1), streams...))
	d, ok := s.m.flush()
	if !ok || len(d.Streams) != 1000 || len(d.Agents) != 1 {
		t.Fatalf("first delta: %d streams %d agents, want 1000 and 1", len(d.Streams), len(d.Agents))
	}
	streams[7]["fps"] = 12.5
	s.HandleMessage(metricsMsg("a", at(2), streams...))
	streams[9]["state"] = "retrying"
	s.HandleMessage(metricsMsg("a", at(3), streams...))
	d, ok = s.m.flush()
	if !ok || len(d.Streams) != 2 || d.Streams[0].Stream != "s0007" || d.Streams[1].Stream != "s0009" {
		t.Fatalf("second delta: %+v, want s0007 and s0009 only", d.Streams)
	}
	if _, ok := s.m.flush(); ok {
		t.Error("a delta with nothing changed")
	}
	// Older metrics (delivered late) change nothing.
	streams[7]["fps"] = 1
	s.HandleMessage(metricsMsg("a", at(2), streams...))
	if d, ok := s.m.flush(); ok {
		t.Errorf("older metrics made a delta: %+v", d)
	}
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// TestGuard: the read-only, authenticated or loopback-only surface.
func TestGuard(t *testing.T) {
	tests := []struct {
		name, token, method, host, auth string
		want                            int
	}{
		{"loopback, no token", "", "GET", "127.0.0.1:8090", "", 200},
		{"localhost, no token", "", "GET", "localhost:8090", "", 200},
		{"ipv6 loopback", "", "GET", "[::1]:8090", "", 200},
		{"rebound name refused", "", "GET", "evil.example:8090", "", 421},
		{"POST refused", "", "POST", "127.0.0.1:8090", "", 405},
		{"DELETE refused", "", "DELETE", "127.0.0.1:8090", "", 405},
		{"token: none given", "0123456789abcdef", "GET", "dash.example", "", 401},
		{"token: basic", "0123456789abcdef", "GET", "dash.example", "Basic " + b64("op:0123456789abcdef"), 200},
		{"token: bearer", "0123456789abcdef", "GET", "dash.example", "Bearer 0123456789abcdef", 200},
		{"token: wrong", "0123456789abcdef", "GET", "dash.example", "Bearer 0123456789abcdeX", 401},
		{"token: wrong basic", "0123456789abcdef", "GET", "dash.example", "Basic " + b64("op:nope"), 401},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := New(Options{Logger: discard(), Token: tc.token}).Handler()
			r := httptest.NewRequest(tc.method, "/api/snapshot", nil)
			r.Host = tc.host
			if tc.auth != "" {
				r.Header.Set("Authorization", tc.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, r)
			if w.Code != tc.want {
				t.Errorf("%s %s: %d, want %d", tc.method, tc.host, w.Code, tc.want)
			}
			if csp := w.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q", csp)
			}
			if tc.want == 401 && !strings.HasPrefix(w.Header().Get("WWW-Authenticate"), "Basic") {
				t.Error("401 without a Basic challenge: the browser would not ask")
			}
		})
	}
}

func get(t *testing.T, h http.Handler, path string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest("GET", path, nil)
	r.Host = "127.0.0.1"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// TestPages: the page, its assets and the read API.
func TestPages(t *testing.T) {
	s := New(Options{Logger: discard()})
	for i, d := range []string{"black", "freeze", "black", "silence", "black"} {
		e := ev("a", fmt.Sprintf("s%d", i%2), d, "raised", fmt.Sprintf("e%d", i), at(i))
		s.HandleMessage(evMsg(e))
	}
	s.HandleMessage(thumbMsg("a", "s0", "alarm", "t1", "e4", "black"))
	h := s.Handler()
	tests := []struct {
		path, want, ctype string
		code              int
	}{
		{"/", `<script src="/assets/app.js"`, "text/html", 200},
		{"/assets/app.js", "EventSource", "javascript", 200},
		{"/assets/style.css", ".tile", "text/css", 200},
		{"/api/events?defect=black", `"id":"e4"`, "application/json", 200},
		{"/api/events?limit=2", `"next":"`, "application/json", 200},
		{"/api/events?limit=0", "limit", "text/plain", 400},
		{"/api/events?before=zz", "cursor", "text/plain", 400},
		{"/api/thumbnails/t1", "jpeg-t1", "image/jpeg", 200},
		{"/api/thumbnails/nope", "not found", "text/plain", 404},
		{"/api/thumbnails/..%2f..%2fetc", "", "", 404},
		{"/api/snapshot", `"key":"f/a/s0"`, "application/json", 200},
		{"/nothing", "not found", "", 404},
	}
	for _, tc := range tests {
		w := get(t, h, tc.path)
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.want) || !strings.Contains(w.Header().Get("Content-Type"), tc.ctype) {
			t.Errorf("GET %s: %d %s %.200q, want %d %s containing %q", tc.path, w.Code, w.Header().Get("Content-Type"), w.Body.String(), tc.code, tc.ctype, tc.want)
		}
	}
	// Filters and pages of the timeline.
	var p Page
	_ = json.Unmarshal(get(t, h, "/api/events?defect=black&stream=s0").Body.Bytes(), &p)
	if ids := evIDs(p.Events); ids != "e4,e2,e0" {
		t.Errorf("black on s0: %s, want e4,e2,e0", ids)
	}
	_ = json.Unmarshal(get(t, h, "/api/events?limit=2").Body.Bytes(), &p)
	first := evIDs(p.Events)
	_ = json.Unmarshal(get(t, h, "/api/events?limit=2&before="+p.Next).Body.Bytes(), &p)
	if first+"|"+evIDs(p.Events) != "e4,e3|e2,e1" {
		t.Errorf("pages: %s|%s, want e4,e3|e2,e1", first, evIDs(p.Events))
	}
}

func evIDs(es []schema.AgentEvent) string {
	var ids []string
	for _, e := range es {
		ids = append(ids, e.ID)
	}
	return strings.Join(ids, ",")
}

// TestLive: a page's stream is a snapshot, then each event at once and
// the coalesced deltas.
func TestLive(t *testing.T) {
	s := New(Options{Logger: discard(), Flush: 50 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { _ = s.Run(ctx) }()
	s.HandleMessage(metricsMsg("a", at(1), map[string]any{"id": "s1", "state": "running", "fps": 25}))
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	res, err := http.Get(ts.URL + "/api/live")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	frames := make(chan [2]string, 16)
	go readFrames(res.Body, frames)
	next := func(want string) string {
		t.Helper()
		for {
			select {
			case f := <-frames:
				if f[0] == want {
					return f[1]
				}
			case <-time.After(3 * time.Second):
				t.Fatalf("no %s frame", want)
			}
		}
	}
	if sn := next("snapshot"); !strings.Contains(sn, `"f/a/s1"`) {
		t.Errorf("snapshot %s", sn)
	}
	sent := time.Now()
	s.HandleMessage(evMsg(ev("a", "s1", "black", "raised", "e1", at(2))))
	if e := next("event"); !strings.Contains(e, `"id":"e1"`) || !strings.Contains(e, `"recv":`) {
		t.Errorf("event %s", e)
	}
	if d := time.Since(sent); d > time.Second {
		t.Errorf("event pushed after %s", d)
	}
	if d := next("delta"); !strings.Contains(d, `"defect":"black"`) {
		t.Errorf("delta %s", d)
	}
}

func readFrames(r io.Reader, out chan<- [2]string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	var name string
	for sc.Scan() {
		line := sc.Text()
		if v, ok := strings.CutPrefix(line, "event: "); ok {
			name = v
		} else if v, ok := strings.CutPrefix(line, "data: "); ok {
			out <- [2]string{name, v}
		}
	}
	close(out)
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// TestServeTLS: HTTPS with the given certificate, and a graceful stop that
// ends the live streams too.
func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "dash"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 10 * time.Second}

	s := New(Options{Logger: discard(), Token: "0123456789abcdef"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _ = s.Run(ctx) }()
	go func() { done <- Serve(ctx, ln, s.Handler(), certFile, keyFile, discard()) }()
	base := "https://" + ln.Addr().String()
	req, _ := http.NewRequest("GET", base+"/api/live", nil)
	req.Header.Set("Authorization", "Bearer 0123456789abcdef")
	res, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != 200 {
		t.Fatalf("live over TLS: %s", res.Status)
	}
	// Nothing in the clear (Go's TLS server answers plain HTTP with a 400).
	if r, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		r.Body.Close()
		if r.StatusCode == 200 {
			t.Error("served over plain HTTP")
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("serve: %v", err)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("not stopped within 6 s with a live stream open")
	}
	if _, err := io.Copy(io.Discard, res.Body); err != nil && !strings.Contains(err.Error(), "EOF") {
		t.Logf("live stream ended: %v", err)
	}
}

// TestRemovedStreamUnpinsPictures: a stream its agent's metrics no longer
// list loses its pinned pictures too (they fall under the cache's bound),
// else every stream ever removed keeps two JPEGs in memory for good.
func TestRemovedStreamUnpinsPictures(t *testing.T) {
	s := New(Options{Logger: discard(), Thumbnails: 1})
	s.HandleMessage(metricsMsg("a", at(1), map[string]any{"id": "s1", "state": "running"}, map[string]any{"id": "s2", "state": "running"}))
	s.HandleMessage(thumbMsg("a", "s1", "live", "l1", "", ""))
	s.HandleMessage(thumbMsg("a", "s1", "alarm", "t1", "e1", "black"))
	s.HandleMessage(thumbMsg("a", "s2", "live", "l2", "", ""))
	if n := len(s.m.thumbs.pinned); n != 3 {
		t.Fatalf("%d pinned, want 3", n)
	}
	s.HandleMessage(metricsMsg("a", at(2), map[string]any{"id": "s2", "state": "running"}))
	if _, ok := s.m.thumbs.pinned["l2"]; !ok || len(s.m.thumbs.pinned) != 1 {
		t.Errorf("pinned after s1 was removed: %v, want l2 only", slices.Sorted(maps.Keys(s.m.thumbs.pinned)))
	}
}

// TestMemHistoryKeepsAlarmPictures: without a store the timeline's pictures
// are the in-memory history's; live pictures (a mosaic's, one per stream
// every live_interval) do not go there, else they push the alarms' out
// within minutes (1,000 streams every 10 s: 10,000 in 100 s). The current
// live picture of a tile is served from the model.
func TestMemHistoryKeepsAlarmPictures(t *testing.T) {
	s := New(Options{Logger: discard()})
	s.HandleMessage(thumbMsg("a", "s1", "alarm", "t1", "e1", "black"))
	s.HandleMessage(thumbMsg("a", "s1", "live", "l1", "", ""))
	if _, ok, _ := s.mem.Thumbnail(context.Background(), "t1"); !ok {
		t.Error("the alarm picture is not in the history")
	}
	if _, ok, _ := s.mem.Thumbnail(context.Background(), "l1"); ok {
		t.Error("a live picture went into the history")
	}
	if res := get(t, s.Handler(), "/api/thumbnails/l1"); res.Code != http.StatusOK {
		t.Errorf("the current live picture: %d", res.Code)
	}
}
