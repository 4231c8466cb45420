package config

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Prometheus is the agent's optional scrape endpoint: GET /metrics in the
// Prometheus text format, off unless metrics_listen is set. Its keys sit at
// the top level of the agent's file (inline in Agent).
type Prometheus struct {
	// MetricsListen is host:port to serve /metrics on ("127.0.0.1:9464");
	// empty (the default) serves nothing. An empty host listens on every
	// interface.
	MetricsListen string `yaml:"metrics_listen"`
	// MetricsTLSCert and MetricsTLSKey, set together, serve HTTPS.
	MetricsTLSCert string `yaml:"metrics_tls_cert"`
	MetricsTLSKey  string `yaml:"metrics_tls_key"`
	// MetricsTokenFile holds a bearer token that every scrape must send
	// (Authorization: Bearer TOKEN; Prometheus' authorization.credentials_file).
	MetricsTokenFile string `yaml:"metrics_token_file"`
}

// validate reports the problems of the metrics_* keys, each a *FieldError.
func (p Prometheus) validate() []error {
	var errs []error
	addf := func(path, format string, args ...any) {
		errs = append(errs, &FieldError{Path: path, Err: fmt.Errorf(format, args...)})
	}
	if p.MetricsListen != "" {
		if err := CheckListen(p.MetricsListen); err != nil {
			errs = append(errs, &FieldError{Path: "metrics_listen", Err: err})
		}
	}
	switch {
	case p.MetricsTLSCert != "" && p.MetricsTLSKey == "":
		addf("metrics_tls_key", "required with metrics_tls_cert (set both or neither)")
	case p.MetricsTLSCert == "" && p.MetricsTLSKey != "":
		addf("metrics_tls_cert", "required with metrics_tls_key (set both or neither)")
	}
	if p.MetricsListen == "" {
		for _, f := range []struct{ path, v string }{
			{"metrics_tls_cert", p.MetricsTLSCert}, {"metrics_tls_key", p.MetricsTLSKey}, {"metrics_token_file", p.MetricsTokenFile},
		} {
			if f.v != "" {
				addf(f.path, "set without metrics_listen (the endpoint is off)")
			}
		}
	}
	return errs
}

// CheckListen accepts host:port where port is a number from 0 to 65535 (0:
// any free port) and host is empty (every interface), an IP address or a
// host name.
func CheckListen(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (like 127.0.0.1:9464 or [::1]:9464): %w", s, err)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", s, port)
	}
	if host == "" || net.ParseIP(host) != nil {
		return nil
	}
	if len(host) > 253 {
		return fmt.Errorf("%q: host name longer than 253 characters", s)
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return fmt.Errorf("%q: %q is not an IP address or host name", s, host)
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return fmt.Errorf("%q: %q is not an IP address or host name", s, host)
			}
		}
	}
	return nil
}

// IsLoopback says whether a valid listen address only accepts connections
// from this machine (localhost, 127.0.0.0/8, ::1).
func IsLoopback(listen string) bool {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
