package agent

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"
)

// The metric names and label matchers of a PromQL expression.
var (
	reMetric   = regexp.MustCompile(`\b((?:streamqc|process|go)_[a-zA-Z0-9_:]*)\b`)
	reSelector = regexp.MustCompile(`\b((?:streamqc|process|go)_[a-zA-Z0-9_:]*)\{([^}]*)\}`)
	reMatcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)`)
)

// TestGrafanaDashboard: the packaged dashboard parses, every panel queries
// the ${DS_PROMETHEUS} data source, and every query names only metrics (and
// label matchers only labels) the agent exports, so that renaming a metric
// fails here rather than leaving an empty panel.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "packaging", "grafana", "streamqc.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("streamqc.json: %v", err)
	}

	// What the agent exports: every family of a full state, and its labels.
	fams, err := promRegistry(t, promFixture()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := map[string]map[string]bool{}
	for _, f := range fams {
		names := []string{f.GetName()}
		switch f.GetType() {
		case dto.MetricType_HISTOGRAM, dto.MetricType_GAUGE_HISTOGRAM:
			names = append(names, f.GetName()+"_bucket", f.GetName()+"_sum", f.GetName()+"_count")
		case dto.MetricType_SUMMARY:
			names = append(names, f.GetName()+"_sum", f.GetName()+"_count")
		}
		set := map[string]bool{"job": true, "instance": true} // Prometheus' target labels
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				set[l.GetName()] = true
			}
		}
		for _, n := range names {
			labels[n] = set
		}
	}

	exprs, panels := 0, 0
	var walk func(path string, v any)
	walk = func(path string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if _, ok := v["gridPos"]; ok && v["type"] != "row" {
				panels++
				if ds, _ := v["datasource"].(map[string]any); ds["uid"] != "${DS_PROMETHEUS}" {
					t.Errorf("%s (%v): data source %v, want uid ${DS_PROMETHEUS}", path, v["title"], v["datasource"])
				}
			}
			for k, c := range v {
				p := path + "." + k
				if s, ok := c.(string); ok && (k == "expr" || k == "definition" || k == "query" && strings.Contains(path, "templating")) {
					checkExpr(t, p, s, labels)
					exprs++
				}
				walk(p, c)
			}
		case []any:
			for i, c := range v {
				walk(path+"["+strconv.Itoa(i)+"]", c)
			}
		}
	}
	walk("", dash)
	if panels < 10 || exprs < 20 {
		t.Errorf("%d panels, %d queries: the walk missed them", panels, exprs)
	}
	// The panels the issue asks for, by the metric they show.
	for _, m := range []string{"streamqc_stream_state", "streamqc_stream_fps", "streamqc_stream_decode_lag_seconds",
		"streamqc_stream_open_alarms", "streamqc_events_total", "streamqc_spool_pending_events", "streamqc_spool_oldest_age_seconds",
		"streamqc_broker_connected", "process_cpu_seconds_total", "process_resident_memory_bytes", "streamqc_stream_restarts_total"} {
		if !strings.Contains(string(b), m) {
			t.Errorf("no panel shows %s", m)
		}
	}
}

// checkExpr checks the metric names and label matchers of one query.
func checkExpr(t *testing.T, path, expr string, labels map[string]map[string]bool) {
	t.Helper()
	if expr == "prometheus" { // the data source variable's plugin type
		return
	}
	names := reMetric.FindAllString(expr, -1)
	if len(names) == 0 {
		t.Errorf("%s: %q names no streamqc, process or go metric", path, expr)
	}
	for _, n := range names {
		if labels[n] == nil {
			t.Errorf("%s: %s is not exported by the agent (in %q)", path, n, expr)
		}
	}
	for _, sel := range reSelector.FindAllStringSubmatch(expr, -1) {
		for _, m := range reMatcher.FindAllStringSubmatch(sel[2], -1) {
			if set := labels[sel[1]]; set != nil && !set[m[1]] {
				t.Errorf("%s: %s has no label %s (in %q)", path, sel[1], m[1], expr)
			}
		}
	}
}
