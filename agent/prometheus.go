package agent

import (
	"context"
	"crypto/subtle"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamqc/streamqc/agent/config"
)

// startPrometheus opens metrics_listen for GET /metrics (and GET /healthz),
// or does nothing when it is empty: a port in use stops the agent at start
// with the address in the error. serve answers from then on (once the
// agent's state is set up); stop shuts the server down gracefully, or
// closes the listener if serve never ran, and returns once it is done.
//
// Every value is read from the agent's state when Prometheus scrapes (a
// Collector): nothing is counted on a per-frame path.
func (a *Agent) startPrometheus() (serve, stop func(), err error) {
	p := a.cfg.Prometheus
	if p.MetricsListen == "" {
		return func() {}, func() {}, nil
	}
	var token []byte
	if p.MetricsTokenFile != "" {
		if token, err = readToken(p.MetricsTokenFile); err != nil {
			return nil, nil, fmt.Errorf("metrics_token_file: %w", err)
		}
	}
	var tlsCfg *tls.Config
	if p.MetricsTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(p.MetricsTLSCert, p.MetricsTLSKey)
		if err != nil {
			return nil, nil, fmt.Errorf("metrics_tls_cert, metrics_tls_key: %w", err)
		}
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	}
	reg := prometheus.NewRegistry()
	for _, c := range []prometheus.Collector{
		newPromCollector(a.promState),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewGoCollector(),
	} {
		if err := reg.Register(c); err != nil {
			return nil, nil, fmt.Errorf("metrics_listen: register collector: %w", err)
		}
	}
	ln, err := net.Listen("tcp", p.MetricsListen)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics_listen %s: %w", p.MetricsListen, err)
	}
	scheme := "http"
	if tlsCfg != nil {
		ln, scheme = tls.NewListener(ln, tlsCfg), "https"
	}
	srv := &http.Server{
		Handler:           promMux(reg, token, a.loopAlive.Load),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(a.log.Handler(), slog.LevelDebug),
	}
	if !config.IsLoopback(p.MetricsListen) {
		switch {
		case token == nil:
			a.log.Warn("the prometheus endpoint is unauthenticated and listens beyond loopback: set metrics_token_file (and TLS)",
				"metrics_listen", p.MetricsListen)
		case tlsCfg == nil:
			a.log.Warn("the prometheus endpoint's token travels in clear beyond loopback: set metrics_tls_cert and metrics_tls_key",
				"metrics_listen", p.MetricsListen)
		}
	}
	var done chan struct{} // closed when Serve returns; nil before serve
	serve = func() {
		done = make(chan struct{})
		go func() {
			defer close(done)
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("prometheus endpoint stopped", "err", err)
			}
		}()
		a.log.Info("prometheus metrics served", "url", fmt.Sprintf("%s://%s/metrics", scheme, ln.Addr()),
			"tls", tlsCfg != nil, "token", token != nil)
	}
	stop = func() {
		if done == nil {
			_ = ln.Close()
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			_ = srv.Close() // a scrape still running past the deadline
		}
		<-done
	}
	return serve, stop, nil
}

// promProblems are what startPrometheus would refuse in the metrics_*
// files, for `streamqc config check` (run reports them when it starts).
func promProblems(cfg config.Agent) []error {
	p := cfg.Prometheus
	if p.MetricsListen == "" {
		return nil
	}
	var problems []error
	if p.MetricsTokenFile != "" {
		if _, err := readToken(p.MetricsTokenFile); err != nil {
			problems = append(problems, &config.FieldError{Path: "metrics_token_file", Err: err})
		}
	}
	if p.MetricsTLSCert != "" && p.MetricsTLSKey != "" {
		if _, err := tls.LoadX509KeyPair(p.MetricsTLSCert, p.MetricsTLSKey); err != nil {
			problems = append(problems, &config.FieldError{Path: "metrics_tls_cert", Err: err})
		}
	}
	return problems
}

// readToken reads a bearer token file (surrounding white space trimmed).
func readToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return []byte(t), nil
}

// promMux routes /metrics (behind the token, when there is one) and
// /healthz: 200 while the agent's main loop turns, 503 when it has not for
// 10 s (it turns every second).
func promMux(reg *prometheus.Registry, token []byte, loopAlive func() int64) *http.ServeMux {
	metrics := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError, // a broken metric must not hide the others
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", requireToken(token, metrics))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		if last := loopAlive(); last == 0 || time.Since(time.Unix(0, last)) > 10*time.Second {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, "main loop not turning")
			return
		}
		fmt.Fprintln(w, "ok")
	})
	return mux
}

// requireToken lets through requests carrying "Authorization: Bearer
// token"; a nil token lets every request through.
func requireToken(token []byte, next http.Handler) http.Handler {
	if token == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(got), token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="streamqc"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}
