package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/agent/spool"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/detectors"
)

// promFixture is a state with every kind of value: two streams, one of them
// MPEG-TS with open alarms, one retrying with no loudness yet.
func promFixture() promState {
	return promState{
		Fleet: "eu", Agent: "box1", Version: "1.2.3", Flavor: "cuda", Connected: true,
		Spool:         spool.Stats{Pending: 3, Bytes: 4096, Appended: 10, Acked: 7, Dropped: 1, Sent: 2},
		Delivery:      deliveryFigures{keepUntil: "stored", stored: 8, missing: 1, resends: 2},
		Thumbnails:    &ThumbnailMetrics{Published: 5, Dropped: 1, Limited: 2},
		SpoolMaxBytes: 1 << 20, OldestAge: 2.5, AppendErrors: 1,
		Pending:       map[string]int{"news": 3},
		Events:        map[eventKey]uint64{{"black", "raised"}: 4, {"black", "cleared"}: 3},
		ConfigVersion: map[string]int64{"agent": 7, "fleet": 2},
		Streams: []supervisor.Status{
			{ID: "news", State: supervisor.Running, Frames: 900, AudioBlocks: 1500, FPS: 25, DecodeLag: 0.25,
				Decoder: "nvdec:0", Momentary: -23, ShortTerm: -22.5, Restarts: 1, Reconnects: 2,
				Alarms:   []string{"black", "tr101290/1.4 continuity_count_error", "tr101290/2.2 crc_error"},
				TR101290: map[string]int64{"1.4 continuity_count_error": 5, "2.2 crc_error": 1}},
			{ID: "promo", State: supervisor.Retrying, DecodeLag: math.NaN(), Momentary: math.NaN(), ShortTerm: math.NaN(), Decoder: "cpu"},
		},
	}
}

// promRegistry is the agent's registry over a fixed state.
func promRegistry(t *testing.T, s promState) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		newPromCollector(func() promState { return s }),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	} {
		if err := reg.Register(c); err != nil {
			t.Fatal(err)
		}
	}
	return reg
}

// scrape GETs url (with a bearer token unless empty) and parses the body
// with the text exposition format parser, as Prometheus would.
func scrape(t *testing.T, client *http.Client, url, token string) (map[string]*dto.MetricFamily, error) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		return nil, fmt.Errorf("content type %q", ct)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	return p.TextToMetricFamilies(resp.Body)
}

// sample finds the sample of family name with exactly these labels.
func sample(fams map[string]*dto.MetricFamily, name string, labels ...string) (float64, bool) {
	f, ok := fams[name]
	if !ok {
		return 0, false
	}
	want := map[string]string{}
	for i := 0; i+1 < len(labels); i += 2 {
		want[labels[i]] = labels[i+1]
	}
next:
	for _, m := range f.GetMetric() {
		if len(m.GetLabel()) != len(want) {
			continue
		}
		for _, l := range m.GetLabel() {
			if v, ok := want[l.GetName()]; !ok || v != l.GetValue() {
				continue next
			}
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			return m.GetCounter().GetValue(), true
		case dto.MetricType_GAUGE:
			return m.GetGauge().GetValue(), true
		default:
			return m.GetUntyped().GetValue(), true
		}
	}
	return 0, false
}

func TestPromCollector(t *testing.T) {
	srv := httptest.NewServer(promMux(promRegistry(t, promFixture()), nil, func() int64 { return time.Now().UnixNano() }))
	defer srv.Close()
	fams, err := scrape(t, srv.Client(), srv.URL+"/metrics", "")
	if err != nil {
		t.Fatal(err)
	}
	counter, gauge := dto.MetricType_COUNTER, dto.MetricType_GAUGE
	for _, tc := range []struct {
		name   string
		typ    dto.MetricType
		labels []string
		want   float64 // NaN: absent
	}{
		{"streamqc_build_info", gauge, []string{"version", "1.2.3", "flavor", "cuda"}, 1},
		{"streamqc_agent_info", gauge, []string{"fleet", "eu", "agent", "box1"}, 1},
		{"streamqc_broker_connected", gauge, nil, 1},
		{"streamqc_config_version", gauge, []string{"scope", "agent"}, 7},
		{"streamqc_config_version", gauge, []string{"scope", "fleet"}, 2},
		{"streamqc_events_total", counter, []string{"defect", "black", "state", "raised"}, 4},
		{"streamqc_events_total", counter, []string{"defect", "black", "state", "cleared"}, 3},
		{"streamqc_events_total", counter, []string{"defect", "freeze", "state", "raised"}, 0},
		{"streamqc_spool_append_errors_total", counter, nil, 1},
		{"streamqc_spool_pending_events", gauge, nil, 3},
		{"streamqc_spool_bytes", gauge, nil, 4096},
		{"streamqc_spool_max_bytes", gauge, nil, 1 << 20},
		{"streamqc_spool_dropped_events_total", counter, nil, 1},
		{"streamqc_spool_appended_events_total", counter, nil, 10},
		{"streamqc_spool_acked_events_total", counter, nil, 7},
		{"streamqc_spool_oldest_age_seconds", gauge, nil, 2.5},
		{"streamqc_spool_stored_mode", gauge, nil, 1},
		{"streamqc_spool_sent_events", gauge, nil, 2},
		{"streamqc_spool_stored_watermark", gauge, nil, 8},
		{"streamqc_spool_missing_declared_total", counter, nil, 1},
		{"streamqc_spool_resends_total", counter, nil, 2},
		{"streamqc_thumbnails_total", counter, []string{"outcome", "published"}, 5},
		{"streamqc_thumbnails_total", counter, []string{"outcome", "limited"}, 2},
		{"streamqc_thumbnails_total", counter, []string{"outcome", "failed"}, 0},
		{"streamqc_stream_state", gauge, []string{"stream", "news", "state", "running"}, 1},
		{"streamqc_stream_state", gauge, []string{"stream", "news", "state", "retrying"}, 0},
		{"streamqc_stream_state", gauge, []string{"stream", "promo", "state", "retrying"}, 1},
		{"streamqc_stream_info", gauge, []string{"stream", "news", "decoder", "nvdec:0"}, 1},
		{"streamqc_stream_fps", gauge, []string{"stream", "news"}, 25},
		{"streamqc_stream_fps", gauge, []string{"stream", "promo"}, 0},
		{"streamqc_stream_frames_total", counter, []string{"stream", "news"}, 900},
		{"streamqc_stream_audio_blocks_total", counter, []string{"stream", "news"}, 1500},
		{"streamqc_stream_decode_lag_seconds", gauge, []string{"stream", "news"}, 0.25},
		{"streamqc_stream_decode_lag_seconds", gauge, []string{"stream", "promo"}, math.NaN()},
		{"streamqc_stream_loudness_momentary_lufs", gauge, []string{"stream", "news"}, -23},
		{"streamqc_stream_loudness_short_term_lufs", gauge, []string{"stream", "news"}, -22.5},
		{"streamqc_stream_loudness_short_term_lufs", gauge, []string{"stream", "promo"}, math.NaN()},
		{"streamqc_stream_spool_pending_events", gauge, []string{"stream", "news"}, 3},
		{"streamqc_stream_spool_pending_events", gauge, []string{"stream", "promo"}, 0},
		{"streamqc_stream_restarts_total", counter, []string{"stream", "news"}, 1},
		{"streamqc_stream_reconnects_total", counter, []string{"stream", "news"}, 2},
		{"streamqc_stream_open_alarms", gauge, []string{"stream", "news", "defect", "black"}, 1},
		{"streamqc_stream_open_alarms", gauge, []string{"stream", "news", "defect", "tr101290"}, 2},
		{"streamqc_stream_open_alarms", gauge, []string{"stream", "news", "defect", "freeze"}, 0},
		{"streamqc_stream_open_alarms", gauge, []string{"stream", "promo", "defect", "black"}, 0},
		{"streamqc_transport_errors_total", counter, []string{"stream", "news", "indicator", "1.4 continuity_count_error"}, 5},
		{"streamqc_transport_errors_total", counter, []string{"stream", "promo", "indicator", "1.4 continuity_count_error"}, math.NaN()},
	} {
		t.Run(tc.name+strings.Join(tc.labels, ","), func(t *testing.T) {
			f, ok := fams[tc.name]
			if !ok {
				t.Fatalf("no family %s", tc.name)
			}
			if f.GetType() != tc.typ {
				t.Errorf("type %s, want %s", f.GetType(), tc.typ)
			}
			v, ok := sample(fams, tc.name, tc.labels...)
			switch {
			case math.IsNaN(tc.want) && ok:
				t.Errorf("= %g, want no sample", v)
			case !math.IsNaN(tc.want) && (!ok || v != tc.want):
				t.Errorf("= %g (found %v), want %g", v, ok, tc.want)
			}
		})
	}
	// Bounded series: every defect per stream, every state per stream.
	if n := len(fams["streamqc_stream_open_alarms"].GetMetric()); n != 2*len(detectors.Names) {
		t.Errorf("%d open alarm series, want %d", n, 2*len(detectors.Names))
	}
	if n := len(fams["streamqc_stream_state"].GetMetric()); n != 2*len(streamStates) {
		t.Errorf("%d state series, want %d", n, 2*len(streamStates))
	}
	// The conventions: a prefix, help, counters in _total, units in names.
	for name, f := range fams {
		if !strings.HasPrefix(name, "streamqc_") && !strings.HasPrefix(name, "process_") && !strings.HasPrefix(name, "go_") {
			t.Errorf("%s: no streamqc_, process_ or go_ prefix", name)
		}
		if f.GetHelp() == "" {
			t.Errorf("%s: no help", name)
		}
		if (f.GetType() == dto.MetricType_COUNTER) != strings.HasSuffix(name, "_total") {
			t.Errorf("%s: a %s (counters, and only counters, end in _total)", name, f.GetType())
		}
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "go_goroutines"} {
		if v, ok := sample(fams, name); !ok || v <= 0 {
			t.Errorf("%s = %g (found %v)", name, v, ok)
		}
	}
}

func TestPromTokenAndHealth(t *testing.T) {
	var alive int64
	srv := httptest.NewServer(promMux(promRegistry(t, promFixture()), []byte("s3cret"), func() int64 { return alive }))
	defer srv.Close()
	for _, tc := range []struct {
		name, path, auth string
		want             int
	}{
		{"no token", "/metrics", "", http.StatusUnauthorized},
		{"wrong token", "/metrics", "Bearer nope", http.StatusUnauthorized},
		{"basic", "/metrics", "Basic czNjcmV0", http.StatusUnauthorized},
		{"token", "/metrics", "Bearer s3cret", http.StatusOK},
		{"post", "/metrics", "Bearer s3cret", http.StatusMethodNotAllowed},
		{"health while the loop is stuck", "/healthz", "", http.StatusServiceUnavailable},
		{"health", "/healthz", "", http.StatusOK},
		{"unknown path", "/", "", http.StatusNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			method := http.MethodGet
			if tc.name == "post" {
				method = http.MethodPost
			}
			if tc.name == "health" {
				alive = time.Now().UnixNano()
			}
			req, _ := http.NewRequest(method, srv.URL+tc.path, nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("%s %s: %s, want %d", method, tc.path, resp.Status, tc.want)
			}
		})
	}
}

// freeLoopback returns a loopback address no one listens on (now).
func freeLoopback(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestPromStartErrors: run refuses to start, with an error naming the key,
// when the endpoint cannot be served; the broker is never reached.
func TestPromStartErrors(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	empty := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(empty, []byte(" \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		set   func(c *config.Agent)
		want  string
		errno error
	}{
		{"port in use", func(c *config.Agent) { c.MetricsListen = busy.Addr().String() },
			"metrics_listen " + busy.Addr().String() + ": listen tcp", syscall.EADDRINUSE},
		{"garbage", func(c *config.Agent) { c.MetricsListen = "garbage" }, `metrics_listen: "garbage" is not host:port`, nil},
		{"no token file", func(c *config.Agent) {
			c.MetricsListen, c.MetricsTokenFile = freeLoopback(t), filepath.Join(t.TempDir(), "none")
		}, "metrics_token_file: open ", os.ErrNotExist},
		{"empty token file", func(c *config.Agent) { c.MetricsListen, c.MetricsTokenFile = freeLoopback(t), empty },
			"metrics_token_file: " + empty + " is empty", nil},
		{"no certificate", func(c *config.Agent) {
			c.MetricsListen, c.MetricsTLSCert, c.MetricsTLSKey = freeLoopback(t), "/nonexistent/c.pem", "/nonexistent/k.pem"
		}, "metrics_tls_cert, metrics_tls_key: open /nonexistent/c.pem", os.ErrNotExist},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := config.DefaultAgent()
			c.Fleet, c.ID, c.StateDir = "test", "box1", t.TempDir()
			c.Broker.URL = "tcp://127.0.0.1:1"
			tc.set(&c)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			logger := slog.New(slog.NewTextHandler(testWriter{t}, nil))
			err := Run(ctx, Options{Config: c, Version: "test", Logger: logger})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if tc.errno != nil && !errors.Is(err, tc.errno) {
				t.Errorf("err = %v, not %v", err, tc.errno)
			}
		})
	}
}

// TestPromTLS serves over HTTPS with a token and checks the listener goes
// when stopped.
func TestPromTLS(t *testing.T) {
	dir := t.TempDir()
	cert, key, pool := selfSigned(t, dir)
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("tok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := config.DefaultAgent()
	c.MetricsListen, c.MetricsTLSCert, c.MetricsTLSKey, c.MetricsTokenFile = freeLoopback(t), cert, key, token
	a := &Agent{cfg: c, log: slog.New(slog.NewTextHandler(testWriter{t}, nil))}
	a.loopAlive.Store(time.Now().UnixNano())
	serve, stop, err := a.startPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	serve()
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}, Timeout: 5 * time.Second}
	resp, err := client.Get("https://" + c.MetricsListen + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("healthz: %s", resp.Status)
	}
	resp, err = client.Get("https://" + c.MetricsListen + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("metrics without the token: %s", resp.Status)
	}
	if resp, err := (&http.Client{Timeout: 5 * time.Second}).Get("http://" + c.MetricsListen + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served")
		}
	}
	stop()
	if conn, err := net.DialTimeout("tcp", c.MetricsListen, time.Second); err == nil {
		conn.Close()
		t.Error("still listening after stop")
	}
	// Stopped before it served (run failing between the two): the port is free.
	_, stop, err = a.startPrometheus()
	if err != nil {
		t.Fatal(err)
	}
	stop()
	ln, err := net.Listen("tcp", c.MetricsListen)
	if err != nil {
		t.Fatalf("the port is still taken: %v", err)
	}
	ln.Close()
}

// selfSigned writes a certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T, dir string) (certPath, keyPath string, pool *x509.CertPool) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "streamqc test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	certPath, keyPath = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	parsed, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	pool.AddCert(parsed)
	return certPath, keyPath, pool
}

// TestPromIntegration scrapes a real agent running a looping black clip at
// its own pace, with a real broker: the stream runs (fps > 0), its black
// alarm shows open while it is, the event is counted, and the endpoint goes
// away with the agent.
func TestPromIntegration(t *testing.T) {
	if testing.Short() {
		t.Skip("integration")
	}
	media := clipDir(t, "black")
	b := mqtttest.Start(t, mqtttest.Options{})
	c := agentConfig(t, b, media)
	c.MetricsListen = freeLoopback(t)
	c.Streams = []config.Stream{{ID: "a", URL: "black.mkv", Realtime: true, Loop: true}}
	r := startAgent(t, c)
	url := "http://" + c.MetricsListen + "/metrics"
	client := &http.Client{Timeout: 5 * time.Second}

	var (
		fams                 map[string]*dto.MetricFamily
		sawRunning, sawAlarm bool
		sawConnected, sawFPS bool
		raised, scrapes, fps float64
		deadline             = time.Now().Add(45 * time.Second)
	)
	for time.Now().Before(deadline) && !(sawRunning && sawAlarm && sawConnected && sawFPS && raised >= 1) {
		var err error
		if fams, err = scrape(t, client, url, ""); err != nil {
			t.Fatalf("scrape %s: %v", url, err)
		}
		scrapes++
		if v, _ := sample(fams, "streamqc_stream_state", "stream", "a", "state", "running"); v == 1 {
			sawRunning = true
		}
		if v, _ := sample(fams, "streamqc_stream_fps", "stream", "a"); v > 0 {
			sawFPS, fps = true, v
		}
		if v, _ := sample(fams, "streamqc_stream_open_alarms", "stream", "a", "defect", "black"); v == 1 {
			sawAlarm = true
		}
		if v, _ := sample(fams, "streamqc_broker_connected"); v == 1 {
			sawConnected = true
		}
		raised, _ = sample(fams, "streamqc_events_total", "defect", "black", "state", "raised")
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%g scrapes; fps %g", scrapes, fps)
	if !sawRunning || !sawFPS || !sawAlarm || !sawConnected || raised < 1 {
		t.Fatalf("running %v, fps > 0 %v, open black alarm %v, broker connected %v, black raised %g", sawRunning, sawFPS, sawAlarm, sawConnected, raised)
	}
	if fps < 10 || fps > 40 {
		t.Errorf("fps %g for a realtime 25 fps clip", fps)
	}
	for _, name := range []string{"streamqc_stream_frames_total", "streamqc_stream_restarts_total", "streamqc_stream_reconnects_total"} {
		if _, ok := sample(fams, name, "stream", "a"); !ok {
			t.Errorf("no %s for stream a", name)
		}
	}
	if v, ok := sample(fams, "streamqc_build_info", "version", "test", "flavor", "cpu"); !ok || v != 1 {
		t.Errorf("build info: %g %v", v, ok)
	}
	for _, name := range []string{"process_cpu_seconds_total", "process_resident_memory_bytes", "streamqc_spool_appended_events_total"} {
		if v, ok := sample(fams, name); !ok || v <= 0 {
			t.Errorf("%s = %g (found %v)", name, v, ok)
		}
	}
	r.stop(t)
	if conn, err := net.DialTimeout("tcp", c.MetricsListen, time.Second); err == nil {
		conn.Close()
		t.Error("the endpoint still listens after the agent stopped")
	}
}

// TestPromPreflight: `streamqc config check` names the metrics files that
// run would refuse.
func TestPromPreflight(t *testing.T) {
	c := config.DefaultAgent()
	c.Fleet, c.ID, c.StateDir = "test", "box1", t.TempDir()
	c.MetricsListen, c.MetricsTokenFile = "127.0.0.1:9464", "/nonexistent/token"
	c.MetricsTLSCert, c.MetricsTLSKey = "/nonexistent/c.pem", "/nonexistent/k.pem"
	var got []string
	for _, p := range Preflight(c) {
		got = append(got, p.Error())
	}
	want := []string{"metrics_token_file: open /nonexistent/token: no such file or directory",
		"metrics_tls_cert: open /nonexistent/c.pem: no such file or directory"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("preflight:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// BenchmarkPromScrape: one scrape of an agent with 100 streams (MPEG-TS,
// alarms open), encoded as Prometheus asks for it.
func BenchmarkPromScrape(b *testing.B) {
	s := promFixture()
	base := s.Streams[0]
	s.Streams = nil
	for i := range 100 {
		st := base
		st.ID = fmt.Sprintf("stream-%03d", i)
		s.Streams = append(s.Streams, st)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newPromCollector(func() promState { return s }))
	h := promMux(reg, nil, func() int64 { return time.Now().UnixNano() })
	req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	var size int
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		size = w.Body.Len()
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}
