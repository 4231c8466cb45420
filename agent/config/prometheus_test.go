package config

import (
	"strings"
	"testing"
)

func TestPrometheusListen(t *testing.T) {
	for _, tc := range []struct {
		listen   string
		bad      string // a part of the error; empty: valid
		loopback bool
	}{
		{listen: "127.0.0.1:9464", loopback: true},
		{listen: "localhost:9464", loopback: true},
		{listen: "[::1]:0", loopback: true},
		{listen: ":9464"},
		{listen: "0.0.0.0:9464"},
		{listen: "192.0.2.7:9464"},
		{listen: "metrics.example.com:80"},
		{listen: "9464", bad: "is not host:port"},
		{listen: "127.0.0.1", bad: "is not host:port"},
		{listen: "http://127.0.0.1:9464", bad: "is not host:port"},
		{listen: "127.0.0.1:http", bad: "is not a number from 0 to 65535"},
		{listen: "127.0.0.1:70000", bad: "is not a number from 0 to 65535"},
		{listen: "127.0.0.1:-1", bad: "is not a number from 0 to 65535"},
		{listen: "bad_host!:9464", bad: "is not an IP address or host name"},
		{listen: "-x.example:9464", bad: "is not an IP address or host name"},
		{listen: "a..b:9464", bad: "is not an IP address or host name"},
	} {
		t.Run(tc.listen, func(t *testing.T) {
			err := CheckListen(tc.listen)
			switch {
			case tc.bad == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.bad != "" && (err == nil || !strings.Contains(err.Error(), tc.bad)):
				t.Errorf("err = %v, want %q", err, tc.bad)
			}
			if tc.bad == "" && IsLoopback(tc.listen) != tc.loopback {
				t.Errorf("IsLoopback = %v", !tc.loopback)
			}
		})
	}
}

func TestPrometheusConfig(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		want      []string // the problems' texts, in order; none: valid
	}{
		{"off by default", "", nil},
		{"on", "metrics_listen: 127.0.0.1:9464\n", nil},
		{"https with a token", "metrics_listen: ':9464'\nmetrics_tls_cert: /c.pem\nmetrics_tls_key: /k.pem\nmetrics_token_file: /t\n", nil},
		{"garbage", "metrics_listen: garbage\n", []string{`metrics_listen: "garbage" is not host:port`}},
		{"cert without key", "metrics_listen: ':9464'\nmetrics_tls_cert: /c.pem\n", []string{"metrics_tls_key: required with metrics_tls_cert"}},
		{"key without cert", "metrics_listen: ':9464'\nmetrics_tls_key: /k.pem\n", []string{"metrics_tls_cert: required with metrics_tls_key"}},
		{"token while off", "metrics_token_file: /t\n", []string{"metrics_token_file: set without metrics_listen"}},
		{"not a string", "metrics_listen: [1]\n", []string{"metrics_listen: line 1: "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAgent()
			a.ID = "box"
			err := ParseAgent([]byte(tc.doc), &a)
			got := Problems(err)
			if len(got) != len(tc.want) {
				t.Fatalf("%d problems, want %d: %v", len(got), len(tc.want), err)
			}
			for i, p := range got {
				if !strings.HasPrefix(p.Error(), tc.want[i]) {
					t.Errorf("problem %d: %q, want %q...", i, p, tc.want[i])
				}
			}
		})
	}
	if DefaultAgent().MetricsListen != "" {
		t.Error("the Prometheus endpoint is on by default")
	}
}

func TestPrometheusEnv(t *testing.T) {
	a := DefaultAgent()
	a.ID = "box"
	if err := ParseAgentEnv([]byte("metrics_listen: 127.0.0.1:9464\n"), &a, env(map[string]string{EnvMetricsListen: ":9100"})); err != nil {
		t.Fatal(err)
	}
	if a.MetricsListen != ":9100" {
		t.Errorf("metrics_listen = %q, want the environment's", a.MetricsListen)
	}
	a = DefaultAgent()
	a.ID = "box"
	err := ParseAgentEnv([]byte("metrics_listen: 127.0.0.1:9464\n"), &a, env(map[string]string{EnvMetricsListen: "nope"}))
	if err == nil || !strings.HasPrefix(err.Error(), `metrics_listen: "nope" is not host:port`) {
		t.Errorf("err = %v", err)
	}
}
