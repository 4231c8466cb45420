package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

// TestUpdaterHealthSeesRejectedConfig: the health check of a new version
// fails while the newest desired config of either scope is refused (a new
// version that cannot read the fleet's config must not commit), and not
// for a stale or repeated one.
func TestUpdaterHealthSeesRejectedConfig(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	c := updaterConfig(t, b, "box-health")
	a, err := newAgent(Options{Config: c, Version: "1.1.0", Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer a.spool.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a.sup = supervisor.New(ctx, supervisor.Options{})
	a.loadConfig()
	u := a.upd
	miss := func() string { return u.unhealthy() }
	if m := miss(); strings.Contains(m, "config not applied") {
		t.Fatalf("nothing refused yet: %q", m)
	}
	steps := []struct {
		name    string
		fleet   bool
		doc     string
		problem string // "" : no config problem after it
	}{
		{"agent doc refused", false, `{"version": 3, "streams": [{"id": "x", "url": "concat:a|b"}]}`, "agent config version 3 rejected"},
		{"a newer agent doc applies", false, `{"version": 4, "streams": []}`, ""},
		{"a stale agent doc is not a problem", false, `{"version": 2, "streams": []}`, ""},
		{"fleet doc refused", true, `{"version": 7, "detectors": {}, "bogus": 1}`, "fleet config version 7 rejected"},
		{"the fleet doc fixed", true, `{"version": 8, "detectors": {}}`, ""},
	}
	for _, s := range steps {
		a.applyDesired(desiredMsg{fleetWide: s.fleet, payload: []byte(s.doc)})
		m := miss()
		if s.problem == "" && strings.Contains(m, "config not applied") {
			t.Errorf("%s: health says %q", s.name, m)
		}
		if s.problem != "" && !strings.Contains(m, s.problem) {
			t.Errorf("%s: health says %q, want %q", s.name, m, s.problem)
		}
	}
}

// TestUpdaterRefusesOversizeAndForeignTopics: a job message over the size
// limit is refused (and not kept); a message on a topic that is no job id
// is ignored without a record; a streamed job nobody serves fails after
// stall_timeout, and the job queued behind it then runs.
func TestUpdaterRefusesOversizeAndForeignTopics(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)
	c := updaterConfig(t, b, "box-size")
	c.Firmware.TrustedKeys = []string{trustedKey(t)}
	c.Firmware.StallTimeout = config.Duration(1500 * time.Millisecond)
	startOnline(t, w, c, "1.0.0")
	topics := schema.NewTopics("test", c.ID)

	big := topics.Job("job-big")
	w.publish(t, big.Job, []byte(`{"job_id":"job-big","pad":"`+strings.Repeat("x", firmware.MaxJobSize)+`"}`))
	st := w.waitState(t, big, firmware.JobFailed).st
	if !strings.Contains(st.Reason, "at most") {
		t.Errorf("oversize job: %q", st.Reason)
	}
	r := readRecord(t, c.StateDir, "job-big")
	if len(r.Seen) != 1 || len(r.Seen[0]) != 64 {
		t.Errorf("the record keeps %v, want the message's hash only", r.Seen)
	}

	w.publish(t, topics.Job(".hidden").Job, jobJSON(t, ".hidden", fakeRef(100), false))
	stalled, next := topics.Job("job-stalled"), topics.Job("job-next")
	w.publish(t, stalled.Job, jobJSON(t, "job-stalled", fakeRef(50_000), false))
	w.publish(t, next.Job, jobJSON(t, "job-next", fakeRef(50_000), false))
	w.waitState(t, next, firmware.JobQueued)
	st = w.waitState(t, stalled, firmware.JobFailed).st
	if !strings.Contains(st.Reason, "no progress") {
		t.Errorf("stalled job: %q", st.Reason)
	}
	w.waitState(t, next, firmware.JobDownloading)
	ents, _ := os.ReadDir(filepath.Join(c.StateDir, "firmware", jobsDir))
	for _, e := range ents {
		if strings.Contains(e.Name(), "hidden") {
			t.Errorf("a record for a topic that is no job: %s", e.Name())
		}
	}
	if _, err := os.Stat(filepath.Join(c.StateDir, "firmware", downloadsDir, "job-stalled.part")); !os.IsNotExist(err) {
		t.Errorf("the stalled job's part file: %v", err)
	}
}

// TestUpdaterPruneKeepsAWatermark: beyond keptJobs ended records the oldest
// are forgotten, and a job created before the newest forgotten one is
// refused as a possible replay (it may be one of them).
func TestUpdaterPruneKeepsAWatermark(t *testing.T) {
	if testing.Short() {
		t.Skip("publishes 200 jobs")
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)
	c := updaterConfig(t, b, "box-prune") // no trusted keys: every job fails at once
	startOnline(t, w, c, "1.0.0")
	topics := schema.NewTopics("test", c.ID)
	for i := 0; i <= keptJobs; i++ {
		id := fmt.Sprintf("j%04d", i)
		w.publish(t, topics.Job(id).Job, jobJSON(t, id, fakeRef(100), false))
	}
	last := topics.Job(fmt.Sprintf("j%04d", keptJobs))
	w.waitState(t, last, firmware.JobFailed)
	dir := filepath.Join(c.StateDir, "firmware", jobsDir)
	waitUntil(t, "the oldest record pruned", 10*time.Second, func() bool {
		_, err := os.Stat(filepath.Join(dir, "j0000.json"))
		return os.IsNotExist(err)
	})
	old := firmware.Job{JobID: "j-old", Type: firmware.JobType, Created: time.Now().Add(-time.Hour).UTC(), Bundle: fakeRef(100)}
	raw, _ := json.Marshal(old)
	w.publish(t, topics.Job("j-old").Job, raw)
	st := w.waitState(t, topics.Job("j-old"), firmware.JobFailed).st
	if !strings.Contains(st.Reason, "replay") {
		t.Errorf("an old job after pruning: %q", st.Reason)
	}
}
