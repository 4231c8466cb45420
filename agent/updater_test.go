package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

// Integration tests of the updater in an in-process agent with a real
// Mosquitto. What needs real builds and restarts (a streamed resume after
// kill -9, the duplicate job, tampered bundles, downgrades, health check,
// rollback, crash loop) is cmd/streamqc/update_test.go; these cover the
// refusals before anything is fetched, the https path, the local-address
// guard, withdrawal and the one-job-at-a-time queue.

// jobWatch is an operator's client: it records every job status (checked
// against the job-status schema), every block request of a streamed job,
// and the agents' retained status.
type jobWatch struct {
	c *mqtt.Client

	mu       sync.Mutex
	seq      int
	statuses map[string][]seenStatus // by job topic
	gets     map[string][]firmware.BlockRequest
	online   map[string]int // agent status topic -> online statuses seen
}

type seenStatus struct {
	seq int // arrival order over all jobs
	st  firmware.JobStatus
}

func watchJobs(t *testing.T, b *mqtttest.Broker) *jobWatch {
	t.Helper()
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: fmt.Sprintf("operator-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	w := &jobWatch{c: c, statuses: map[string][]seenStatus{},
		gets: map[string][]firmware.BlockRequest{}, online: map[string]int{}}
	c.Subscribe(schema.Root+"/test/+/jobs/+/status", 1, func(m mqtt.Message) {
		if err := s.Validate(schema.JobStatus, m.Payload); err != nil {
			t.Errorf("%s: payload does not match the job-status schema: %v\n%s", m.Topic, err, m.Payload)
		}
		var st firmware.JobStatus
		dec := json.NewDecoder(bytes.NewReader(m.Payload))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&st); err != nil {
			t.Errorf("%s: %v\n%s", m.Topic, err, m.Payload)
			return
		}
		job := strings.TrimSuffix(m.Topic, "/status")
		if id := job[strings.LastIndexByte(job, '/')+1:]; st.JobID != id {
			t.Errorf("%s: status of job %q on the topic of job %q", m.Topic, st.JobID, id)
		}
		w.mu.Lock()
		w.seq++
		w.statuses[job] = append(w.statuses[job], seenStatus{seq: w.seq, st: st})
		w.mu.Unlock()
	})
	c.Subscribe(schema.Root+"/test/+/jobs/+/stream/get", 1, func(m mqtt.Message) {
		var r firmware.BlockRequest
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			t.Errorf("%s: %v", m.Topic, err)
		}
		w.mu.Lock()
		job := strings.TrimSuffix(m.Topic, "/stream/get")
		w.gets[job] = append(w.gets[job], r)
		w.mu.Unlock()
	})
	c.Subscribe(schema.Root+"/test/+/status", 1, func(m mqtt.Message) {
		if bytes.Contains(m.Payload, []byte(`"online"`)) {
			w.mu.Lock()
			w.online[m.Topic]++
			w.mu.Unlock()
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(time.Second); cancel() })
	return w
}

func (w *jobWatch) publish(t *testing.T, topic string, payload []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := w.c.Publish(ctx, mqtt.Message{Topic: topic, Payload: payload, QoS: 1, Retained: true}); err != nil {
		t.Fatal(err)
	}
}

// withdraw deletes the retained job.
func (w *jobWatch) withdraw(t *testing.T, j schema.JobTopics) { t.Helper(); w.publish(t, j.Job, nil) }

func (w *jobWatch) all(j schema.JobTopics) []seenStatus {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.statuses[j.Job])
}

// states returns the states published for j, repeats folded.
func (w *jobWatch) states(j schema.JobTopics) []firmware.JobState {
	var out []firmware.JobState
	for _, s := range w.all(j) {
		if len(out) == 0 || out[len(out)-1] != s.st.State {
			out = append(out, s.st.State)
		}
	}
	return out
}

func (w *jobWatch) requests(j schema.JobTopics) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.gets[j.Job])
}

func (w *jobWatch) onlineCount(agent string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.online[schema.NewTopics("test", agent).Status]
}

func waitUntil(t *testing.T, what string, d time.Duration, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// waitStatus waits for a status of j that ok accepts and returns it (with
// its arrival order).
func (w *jobWatch) waitStatus(t *testing.T, j schema.JobTopics, what string, d time.Duration, ok func(firmware.JobStatus) bool) seenStatus {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		for _, s := range w.all(j) {
			if ok(s.st) {
				return s
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for job %s: %s (states: %v)", d, j.Job, what, w.states(j))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (w *jobWatch) waitState(t *testing.T, j schema.JobTopics, s firmware.JobState) seenStatus {
	t.Helper()
	return w.waitStatus(t, j, string(s), 10*time.Second, func(st firmware.JobStatus) bool { return st.State == s })
}

// updAgent is an agent run by an updater test.
type updAgent struct {
	cancel context.CancelFunc
	done   chan error
	mu     sync.Mutex
	ended  bool
	err    error
}

func startUpdater(t *testing.T, c config.Agent, version string) *updAgent {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a := &updAgent{cancel: cancel, done: make(chan error, 1)}
	ready := make(chan struct{})
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	go func() { a.done <- Run(ctx, Options{Config: c, Version: version, Logger: logger, Ready: ready}) }()
	select {
	case <-ready:
	case err := <-a.done:
		cancel()
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("agent did not start")
	}
	t.Cleanup(func() {
		a.cancel()
		if err := a.result(15 * time.Second); err != nil && !errors.Is(err, firmware.ErrRestart) {
			t.Errorf("agent: %v", err)
		}
	})
	return a
}

// startOnline starts the agent and waits for its online status: its
// connect-time republishing (updater.onConnect) is then over, so it cannot
// interleave with the statuses of the jobs the test publishes next.
func startOnline(t *testing.T, w *jobWatch, c config.Agent, version string) *updAgent {
	t.Helper()
	n := w.onlineCount(c.ID)
	a := startUpdater(t, c, version)
	waitUntil(t, c.ID+" online", 10*time.Second, func() bool { return w.onlineCount(c.ID) > n })
	return a
}

// errRunning is result's answer while Run has not returned.
var errRunning = errors.New("the agent's Run did not return")

// result returns what Run returned, waiting at most d for it.
func (a *updAgent) result(d time.Duration) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.ended {
		select {
		case a.err = <-a.done:
			a.ended = true
		case <-time.After(d):
			return fmt.Errorf("%w within %s", errRunning, d)
		}
	}
	return a.err
}

// wait returns Run's error once it returned by itself (within d).
func (a *updAgent) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	err := a.result(d)
	if errors.Is(err, errRunning) {
		t.Fatal(err)
	}
	return err
}

// stop stops the agent and returns what Run returned.
func (a *updAgent) stop(t *testing.T) error {
	t.Helper()
	a.cancel()
	return a.wait(t, 15*time.Second)
}

// updaterConfig is an agent with no streams.
func updaterConfig(t *testing.T, b *mqtttest.Broker, id string) config.Agent {
	c := agentConfig(t, b, t.TempDir())
	c.ID = id
	c.Streams = nil
	return c
}

// signedBundle is a real signed bundle with a fake binary (never run).
type signedBundle struct {
	pub  string // the public key file
	data []byte
	sha  string
}

func makeBundle(t *testing.T, version string) signedBundle {
	t.Helper()
	return makeBundleWith(t, version, []byte("#!/bin/sh\necho not a real streamqc\n"))
}

// makeBundleWith signs a bundle whose binary holds content.
func makeBundleWith(t *testing.T, version string, content []byte) signedBundle {
	t.Helper()
	dir := t.TempDir()
	privPath, pubPath := filepath.Join(dir, "fw.key"), filepath.Join(dir, "fw.pub")
	if err := firmware.GenerateKey(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	priv, err := firmware.LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, firmware.Binary)
	if err := os.WriteFile(bin, content, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(bin, 0o755); err != nil { // whatever the umask
		t.Fatal(err)
	}
	var buf bytes.Buffer
	m := firmware.Manifest{Version: version, OS: runtime.GOOS, Arch: runtime.GOARCH, Flavor: "cpu"}
	if err := firmware.Sign(&buf, priv, m, map[string]string{firmware.Binary: bin}); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return signedBundle{pub: pubPath, data: buf.Bytes(), sha: hex.EncodeToString(sum[:])}
}

// trustedKey is a public key file for agents that must get past the
// "updates are off" refusal.
func trustedKey(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	pub := filepath.Join(dir, "fw.pub")
	if err := firmware.GenerateKey(filepath.Join(dir, "fw.key"), pub); err != nil {
		t.Fatal(err)
	}
	return pub
}

func jobJSON(t *testing.T, id string, ref firmware.BundleRef, allowDowngrade bool) []byte {
	t.Helper()
	b, err := json.Marshal(firmware.Job{JobID: id, Type: firmware.JobType, Created: time.Now().UTC(), Bundle: ref, AllowDowngrade: allowDowngrade})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fakeRef is a streamed bundle of size bytes that nobody serves.
func fakeRef(size int64) firmware.BundleRef {
	return firmware.BundleRef{Size: size, SHA256: strings.Repeat("ab", 32)}
}

func readRecord(t *testing.T, stateDir, id string) *jobRecord {
	t.Helper()
	r, err := loadRecord(stateDir, id)
	if err != nil {
		t.Fatalf("job record: %v", err)
	}
	return r
}

func loadRecord(stateDir, id string) (*jobRecord, error) {
	r := &jobRecord{}
	b, err := os.ReadFile(filepath.Join(stateDir, "firmware", jobsDir, id+".json"))
	if err == nil {
		err = json.Unmarshal(b, r)
	}
	return r, err
}

// checkNothingFetched: no download directory, no slot, no state.json.
func checkNothingFetched(t *testing.T, stateDir string) {
	t.Helper()
	base := filepath.Join(stateDir, "firmware")
	ents, err := os.ReadDir(base)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{jobsDir}) {
		t.Errorf("%s holds %v, want only %s/ (nothing downloaded, no slot)", base, names, jobsDir)
	}
	st, err := (&firmware.Slots{Dir: base}).Status()
	if err != nil || st.Current != "" || st.Pending != "" || len(st.Versions) != 0 {
		t.Errorf("slots after refused jobs: %+v, %v", st, err)
	}
}

func TestUpdaterRefusesJobsBeforeFetching(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)

	off := updaterConfig(t, b, "box-off") // no firmware.trusted_keys
	strict := updaterConfig(t, b, "box-strict")
	strict.Firmware.TrustedKeys = []string{trustedKey(t)}
	strict.Firmware.MaxBundleBytes = 1 << 20
	strict.Firmware.Downgrades = "never"

	valid := func(id string) []byte { return jobJSON(t, id, fakeRef(4096), false) }
	withField := func(id string) []byte {
		var m map[string]any
		json.Unmarshal(valid(id), &m)
		m["colour"] = "red"
		b, _ := json.Marshal(m)
		return b
	}
	cases := []struct {
		name    string
		agent   string // box-off or box-strict
		id      string
		payload []byte
		reason  []string // all in the status's reason
	}{
		{"no trusted keys", "box-off", "j-off", valid("j-off"), []string{"firmware updates are off", "trusted_keys"}},
		{"over max_bundle_bytes", "box-strict", "j-big", jobJSON(t, "j-big", fakeRef(2<<20), false),
			[]string{"2097152 bytes", "at most 1048576", "firmware.max_bundle_bytes"}},
		{"not JSON", "box-strict", "j-notjson", []byte(`{"job_id":"j-notjson",`), []string{firmware.ErrJob.Error(), "not JSON"}},
		{"unknown field", "box-strict", "j-field", withField("j-field"), []string{firmware.ErrJob.Error(), "colour"}},
		{"job_id not the topic's", "box-strict", "j-topic", valid("j-other"),
			[]string{firmware.ErrJob.Error(), `job_id "j-other" published on the topic of job "j-topic"`}},
		{"http URL", "box-strict", "j-http", jobJSON(t, "j-http", firmware.BundleRef{Size: 4096, SHA256: strings.Repeat("ab", 32),
			URL: "http://127.0.0.1/streamqc.bundle"}, false), []string{firmware.ErrJob.Error(), "/bundle/url", "https://"}},
		{"downgrades never", "box-strict", "j-down", jobJSON(t, "j-down", fakeRef(4096), true), []string{"allows a downgrade", "firmware.downgrades: never"}},
	}
	// Published before the agents start: they arrive retained.
	for _, c := range cases {
		w.publish(t, schema.NewTopics("test", c.agent).Job(c.id).Job, c.payload)
	}
	aOff, aStrict := startUpdater(t, off, "1.0.0"), startUpdater(t, strict, "1.0.0")
	stateOf := map[string]string{"box-off": off.StateDir, "box-strict": strict.StateDir}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			j := schema.NewTopics("test", c.agent).Job(c.id)
			got := w.waitState(t, j, firmware.JobFailed).st
			for _, want := range c.reason {
				if !strings.Contains(got.Reason, want) {
					t.Errorf("reason %q, want it to say %q", got.Reason, want)
				}
			}
			if s := w.states(j); !slices.Equal(s, []firmware.JobState{firmware.JobFailed}) {
				t.Errorf("states %v, want only failed (refused before anything is fetched)", s)
			}
			if got.FromVersion != "1.0.0" || got.Running != "1.0.0" || got.Agent != c.agent || got.Fleet != "test" || got.Bytes != 0 {
				t.Errorf("status %+v", got)
			}
			if w.requests(j) != 0 {
				t.Errorf("%d block requests for a refused job", w.requests(j))
			}
			// The record is on disk before its status is published.
			r, err := loadRecord(stateOf[c.agent], c.id)
			if err != nil {
				t.Fatalf("status of %s published before its record was saved: %v", c.id, err)
			}
			if r.Status.State != firmware.JobFailed || r.Status.Reason != got.Reason {
				t.Errorf("record %+v, want the published failure", r.Status)
			}
		})
	}
	checkNothingFetched(t, off.StateDir)
	checkNothingFetched(t, strict.StateDir)

	// Restarted, the agent finds the refused jobs again (retained), the one
	// that is not JSON too: they ended, so nothing is published again (no
	// "duplicate refused" note). A job published once the agent is back
	// online is the barrier: it is handled after the retained ones.
	if err := aOff.stop(t); err != nil {
		t.Fatal(err)
	}
	if err := aStrict.stop(t); err != nil {
		t.Fatal(err)
	}
	before := map[string]int{}
	for _, c := range cases {
		before[c.id] = len(w.all(schema.NewTopics("test", c.agent).Job(c.id)))
	}
	startOnline(t, w, strict, "1.0.0")
	barrier := schema.NewTopics("test", "box-strict").Job("j-barrier")
	w.publish(t, barrier.Job, jobJSON(t, "j-barrier", fakeRef(2<<20), false))
	w.waitState(t, barrier, firmware.JobFailed)
	for _, c := range cases {
		if c.agent != "box-strict" {
			continue
		}
		j := schema.NewTopics("test", c.agent).Job(c.id)
		all := w.all(j)
		if len(all) == before[c.id] {
			continue
		}
		last := all[len(all)-1].st
		t.Errorf("job %s: %d statuses after the restart (last %+v): an ended retained job was handled again", c.id, len(all)-before[c.id], last)
	}
	checkNothingFetched(t, strict.StateDir)
}

// tlsBundleServer serves data over https on 127.0.0.1 (Range supported),
// counting connections and requests; caFile is its certificate as PEM.
func tlsBundleServer(t *testing.T, data []byte) (srv *httptest.Server, caFile string, conns, reqs *atomic.Int64) {
	t.Helper()
	conns, reqs = new(atomic.Int64), new(atomic.Int64)
	srv = httptest.NewUnstartedServer(http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		reqs.Add(1)
		http.ServeContent(rw, r, "streamqc.bundle", time.Time{}, bytes.NewReader(data))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return srv, caFile, conns, reqs
}

func TestUpdaterHTTPSInstall(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("over-the-air updates are Linux only")
	}
	bundle := makeBundle(t, "1.1.0")
	srv, caFile, _, reqs := tlsBundleServer(t, bundle.data)
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)
	c := updaterConfig(t, b, "box1")
	c.Firmware.TrustedKeys = []string{bundle.pub}
	c.Firmware.CAFile = caFile
	c.AllowLocalHosts = true // the server is on 127.0.0.1
	a := startOnline(t, w, c, "1.0.0")

	const id = "job-https"
	j := schema.NewTopics("test", "box1").Job(id)
	size := int64(len(bundle.data))
	w.publish(t, j.Job, jobJSON(t, id, firmware.BundleRef{Size: size, SHA256: bundle.sha, URL: srv.URL + "/bundles/streamqc-1.1.0.bundle?token=x"}, false))

	err := a.wait(t, 20*time.Second)
	if !errors.Is(err, firmware.ErrRestart) {
		t.Fatalf("Run returned %v, want an error wrapping firmware.ErrRestart", err)
	}
	if !strings.Contains(err.Error(), "1.1.0") || !strings.Contains(err.Error(), id) {
		t.Errorf("restart reason %q: want the version and the job", err)
	}
	last := w.waitState(t, j, firmware.JobInstalling).st
	want := []firmware.JobState{firmware.JobQueued, firmware.JobDownloading, firmware.JobVerifying, firmware.JobInstalling}
	if got := w.states(j); !slices.Equal(got, want) {
		t.Errorf("states %v, want %v", got, want)
	}
	if last.Version != "1.1.0" || last.FromVersion != "1.0.0" || last.Bytes != size || last.Total != size || last.Percent != 100 {
		t.Errorf("installing status %+v", last)
	}
	if reqs.Load() != 1 {
		t.Errorf("%d requests to the bundle server, want 1", reqs.Load())
	}

	base := filepath.Join(c.StateDir, "firmware")
	st, err := (&firmware.Slots{Dir: base}).Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Current != firmware.SlotA || st.Pending != firmware.SlotA || st.Versions[firmware.SlotA] != "1.1.0" || st.Previous != "" {
		t.Errorf("slots %+v, want 1.1.0 pending in slot a", st)
	}
	if d := time.Until(st.TrialDeadline); d < 4*time.Minute || d > 5*time.Minute {
		t.Errorf("trial deadline in %s, want firmware.health_deadline (5m)", d)
	}
	if fi, err := os.Stat(filepath.Join(base, firmware.SlotA, firmware.Binary)); err != nil || fi.Mode().Perm()&0o100 == 0 {
		t.Errorf("installed binary: %v %v", fi, err)
	}
	r := readRecord(t, c.StateDir, id)
	if r.Status.State != firmware.JobInstalling || r.Status.Version != "1.1.0" || r.Installed.IsZero() {
		t.Errorf("job record %+v installed %s, want installing 1.1.0", r.Status, r.Installed)
	}
	if _, err := os.Stat(filepath.Join(base, downloadsDir, id+".part")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("part file left after the install: %v", err)
	}
}

func TestUpdaterHTTPSLocalHostRefused(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("over-the-air updates are Linux only")
	}
	bundle := makeBundle(t, "1.1.0")
	srv, caFile, conns, reqs := tlsBundleServer(t, bundle.data)
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)
	c := updaterConfig(t, b, "box1")
	c.Firmware.TrustedKeys = []string{bundle.pub}
	c.Firmware.CAFile = caFile // valid roots: the address is the only reason
	a := startOnline(t, w, c, "1.0.0")

	const id = "job-local"
	j := schema.NewTopics("test", "box1").Job(id)
	w.publish(t, j.Job, jobJSON(t, id, firmware.BundleRef{Size: int64(len(bundle.data)), SHA256: bundle.sha, URL: srv.URL + "/b.bundle"}, false))

	// The first attempt fails at the dial; the updater then retries with a
	// 2, 4, 8, 16 s backoff before "failed" (30 s: not waited for here; the
	// guard itself is TestHTTPClientCheckAddr in firmware). What matters:
	// the reason names the refused local address, and nothing connected.
	got := w.waitStatus(t, j, "the first attempt refused", 10*time.Second, func(s firmware.JobStatus) bool {
		return s.State == firmware.JobDownloading && strings.Contains(s.Reason, "attempt 1 failed")
	}).st
	for _, want := range []string{"127.0.0.1", "refused", "allow_local_hosts"} {
		if !strings.Contains(got.Reason, want) {
			t.Errorf("reason %q, want it to say %q", got.Reason, want)
		}
	}
	if conns.Load() != 0 || reqs.Load() != 0 {
		t.Errorf("the bundle server saw %d connections, %d requests: the dialer did not refuse", conns.Load(), reqs.Load())
	}
	if err := a.stop(t); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if st, err := (&firmware.Slots{Dir: filepath.Join(c.StateDir, "firmware")}).Status(); err != nil || st.Current != "" {
		t.Errorf("slots %+v, %v: want none installed", st, err)
	}
}

// TestUpdaterQueueAndWithdrawal: streamed jobs that nobody serves hold the
// download; one job runs at a time, the others wait queued; deleting a
// retained job that is queued or downloading fails it as withdrawn, and
// the next queued job starts.
func TestUpdaterQueueAndWithdrawal(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)
	c := updaterConfig(t, b, "box1")
	c.Firmware.TrustedKeys = []string{trustedKey(t)}
	startOnline(t, w, c, "1.0.0")
	topics := schema.NewTopics("test", "box1")
	first, second, third := topics.Job("j1"), topics.Job("j2"), topics.Job("j3")
	dl := filepath.Join(c.StateDir, "firmware", downloadsDir)

	w.publish(t, first.Job, jobJSON(t, "j1", fakeRef(300<<10), false))
	w.waitState(t, first, firmware.JobDownloading)
	waitUntil(t, "j1 asking for its first block", 10*time.Second, func() bool { return w.requests(first) > 0 })
	if _, err := os.Stat(filepath.Join(dl, "j1.part")); err != nil {
		t.Errorf("j1 downloading without a part file: %v", err)
	}

	w.publish(t, second.Job, jobJSON(t, "j2", fakeRef(100<<10), false))
	w.publish(t, third.Job, jobJSON(t, "j3", fakeRef(100<<10), false))
	w.waitState(t, second, firmware.JobQueued)
	w.waitState(t, third, firmware.JobQueued)

	withdrawn := func(s firmware.JobStatus) bool {
		return s.State == firmware.JobFailed && strings.Contains(s.Reason, "withdrawn")
	}
	steps := []struct {
		name    string
		job     schema.JobTopics
		states  []firmware.JobState
		started *schema.JobTopics // the job that starts next, if any
	}{
		{"queued", third, []firmware.JobState{firmware.JobQueued, firmware.JobFailed}, nil},
		{"downloading", first, []firmware.JobState{firmware.JobQueued, firmware.JobDownloading, firmware.JobFailed}, &second},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if w.requests(second) != 0 || !slices.Equal(w.states(second), []firmware.JobState{firmware.JobQueued}) {
				t.Fatalf("j2 started while j1 downloads: states %v, %d block requests", w.states(second), w.requests(second))
			}
			w.withdraw(t, s.job)
			end := w.waitStatus(t, s.job, "failed as withdrawn", 10*time.Second, withdrawn)
			if got := w.states(s.job); !slices.Equal(got, s.states) {
				t.Errorf("states %v, want %v", got, s.states)
			}
			if !strings.Contains(end.st.Reason, "before it was installed") {
				t.Errorf("reason %q", end.st.Reason)
			}
			waitUntil(t, "the part file removed", 5*time.Second, func() bool {
				_, err := os.Stat(filepath.Join(dl, end.st.JobID+".part"))
				return errors.Is(err, os.ErrNotExist)
			})
			if r := readRecord(t, c.StateDir, end.st.JobID); !withdrawn(r.Status) {
				t.Errorf("record %+v", r.Status)
			}
			if s.started == nil {
				if got := w.states(first); !slices.Equal(got, []firmware.JobState{firmware.JobQueued, firmware.JobDownloading}) {
					t.Errorf("j1 after j3 was withdrawn: %v, want it still downloading", got)
				}
				return
			}
			next := w.waitState(t, *s.started, firmware.JobDownloading)
			if next.seq < end.seq {
				t.Errorf("%s started (status #%d) before %s ended (#%d)", s.started.Job, next.seq, s.job.Job, end.seq)
			}
			waitUntil(t, "j2 asking for its first block", 10*time.Second, func() bool { return w.requests(*s.started) > 0 })
		})
	}
	if w.requests(third) != 0 {
		t.Errorf("the withdrawn queued job j3 asked for %d blocks", w.requests(third))
	}
}

// TestUpdaterStreamSurvivesBrokerOutage: the broker goes away in the middle
// of a streamed download and comes back; the agent goes on from where it
// was (no block asked for twice beyond the one in flight), reports the
// statuses it could not publish meanwhile, and installs.
func TestUpdaterStreamSurvivesBrokerOutage(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("over-the-air updates are Linux only")
	}
	big := make([]byte, 1<<20)
	for i := range big {
		big[i] = byte(i * 7 % 251) // not compressible, not zero
	}
	bundle := makeBundleWith(t, "1.1.0", big)
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watchJobs(t, b)
	c := updaterConfig(t, b, "box-outage")
	c.Firmware.TrustedKeys = []string{bundle.pub}
	a := startOnline(t, w, c, "1.0.0")

	const id = "job-outage"
	const block = 16 << 10
	j := schema.NewTopics("test", c.ID).Job(id)
	size := int64(len(bundle.data))
	// The streamer: its own client, every block slowed to 10 ms.
	sc, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "streamer-outage", MaxReconnectInterval: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	reqs := make(chan []byte, 64)
	sc.Subscribe(j.StreamGet, 1, func(m mqtt.Message) { reqs <- m.Payload })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sc.Start(ctx)
	defer sc.Close(time.Second)
	var served atomic.Int64
	srv := &firmware.BlockServer{Data: bytes.NewReader(bundle.data), Size: size, MaxBlock: firmware.MaxBlockSize, Requests: reqs,
		Publish: func(ctx context.Context, msg []byte) error {
			time.Sleep(10 * time.Millisecond)
			return sc.Publish(ctx, mqtt.Message{Topic: j.StreamData, Payload: msg, QoS: 1})
		},
		Served: func(off int64, n int) { served.Add(int64(n)) },
	}
	go srv.Serve(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := sc.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}

	w.publish(t, j.Job, jobJSON(t, id, firmware.BundleRef{Size: size, SHA256: bundle.sha, BlockSize: block}, false))
	waitUntil(t, "a third of the download", 20*time.Second, func() bool { return served.Load() >= size/3 })
	b.Stop()
	time.Sleep(1500 * time.Millisecond) // block requests fail and are retried meanwhile
	before := served.Load()
	if before >= size {
		t.Fatalf("the download finished before the outage (%d of %d bytes)", before, size)
	}
	b.Start()

	if err := a.wait(t, 60*time.Second); !errors.Is(err, firmware.ErrRestart) {
		t.Fatalf("Run returned %v, want the restart into 1.1.0", err)
	}
	if got := served.Load(); got > size+2*block {
		t.Errorf("%d bytes served for a %d-byte bundle: blocks were fetched again", got, size)
	}
	w.waitState(t, j, firmware.JobInstalling)
	st, err := (&firmware.Slots{Dir: filepath.Join(c.StateDir, "firmware")}).Status()
	if err != nil || st.Pending != firmware.SlotA || st.Versions[firmware.SlotA] != "1.1.0" {
		t.Fatalf("slots %+v %v, want 1.1.0 on trial", st, err)
	}
}
