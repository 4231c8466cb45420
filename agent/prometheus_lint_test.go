package agent

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil/promlint"
)

// TestPrometheusLint: the families follow Prometheus' naming conventions as
// its own linter checks them (units in base units and suffixes, _total on
// counters only, help on every family).
func TestPrometheusLint(t *testing.T) {
	mfs, err := promRegistry(t, promFixture()).Gather()
	if err != nil {
		t.Fatal(err)
	}
	probs, err := promlint.NewWithMetricFamilies(mfs).Lint()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range probs {
		t.Errorf("%s: %s", p.Metric, p.Text)
	}
}
