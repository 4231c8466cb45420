package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/testdata/clips"
)

// TestFirmwareUpdateEndToEnd (issue 6, item 5): real builds of streamqc
// stamped with different versions, a real Mosquitto, a temporary root with
// the packaged binary in usr/bin and the agent's state in var/lib. The
// launcher runs as the service manager would start it; the test plays the
// operator (and, for the resumable download, the block streamer).
func TestFirmwareUpdateEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds streamqc three times and restarts agents: skipped with -short")
	}
	if runtime.GOOS != "linux" {
		t.Skip("over-the-air updates are Linux only")
	}
	tr, err := clips.Ensure(context.Background(), "black")
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	root := t.TempDir()
	e := &updateEnv{t: t, root: root, broker: b.URL}
	packaged := e.build("1.0.0", filepath.Join(root, "usr", "bin"))
	v110 := e.build("1.1.0", filepath.Join(root, "build", "1.1.0"))
	v120 := e.build("1.2.0", filepath.Join(root, "build", "1.2.0"))
	e.cli = packaged

	// Keys, bundles: good ones, a tampered one, a downgrade, a broken build.
	e.mustRun("firmware", "keygen", "--out", filepath.Join(root, "keys"))
	key := filepath.Join(root, "keys", "streamqc-firmware.key")
	sign := func(version, bin string) string {
		out := filepath.Join(root, "bundles", version+".bundle")
		os.MkdirAll(filepath.Dir(out), 0o755)
		e.mustRun("firmware", "sign", "--key", key, "--version", version, "--out", out, bin)
		return out
	}
	b110, b120 := sign("1.1.0", v110), sign("1.2.0", v120)
	tampered := filepath.Join(root, "bundles", "1.2.0-tampered.bundle")
	raw, _ := os.ReadFile(b120)
	raw[len(raw)/2] ^= 0xff // inside the binary's bytes: its hash no longer matches the signed manifest
	os.WriteFile(tampered, raw, 0o644)
	broken := filepath.Join(root, "build", "1.3.0", "streamqc")
	os.MkdirAll(filepath.Dir(broken), 0o755)
	elf, _ := os.ReadFile(v120)
	os.WriteFile(broken, elf[:4096], 0o755) // a signed build that cannot start (truncated)
	b130 := sign("1.3.0", broken)
	b105 := sign("1.0.5", v110)

	media := filepath.Join(root, "srv", "media")
	os.MkdirAll(media, 0o755)
	clip, _ := os.ReadFile(tr[0].File)
	os.WriteFile(filepath.Join(media, "clip.mkv"), clip, 0o644)
	e.writeConfig(media, filepath.Join(root, "keys", "streamqc-firmware.pub"))
	e.watch()

	// 1. Start: the packaged 1.0.0 runs in the launcher's process.
	e.start()
	e.waitStatus("1.0.0 online", func(s map[string]any) bool { return s["state"] == "online" && s["version"] == "1.0.0" })

	// 2. An update streamed over MQTT, the agent killed with SIGKILL halfway
	// through the download: after the restart it asks for the block where
	// it stopped, installs, restarts into 1.1.0, passes its health check.
	size := fileSize(t, b110)
	srv := e.streamer("job-1", b110)
	e.publishJob(firmware.Job{JobID: "job-1", Type: firmware.JobType, Created: time.Now().UTC(),
		Bundle: firmware.BundleRef{Size: size, SHA256: fileSHA(t, b110), BlockSize: 64 << 10}})
	srv.waitOffset(t, size/2)
	srv.pause()
	part := filepath.Join(root, "var", "lib", "streamqc", "firmware", "downloads", "job-1.part")
	e.kill()
	held := fileSize(t, part) // what the killed agent left
	if held < size/4 || held >= size {
		t.Fatalf("part file holds %d of %d bytes at the kill", held, size)
	}
	// Requests the killed agent published just before it died may still
	// be on their way: let them land (and be dropped) first.
	time.Sleep(500 * time.Millisecond)
	srv.resume()
	e.start()
	e.waitJob("job-1", firmware.JobSucceeded)
	// The restarted agent asks for the part file's end and nothing before
	// it. (Requests of the killed agent may still arrive late, through a
	// broker with Nagle's algorithm on: they are for later offsets.)
	if low := srv.lowestAfterResume(); low != held {
		t.Errorf("after the restart the lowest offset asked for was %d; the part file held %d", low, held)
	}
	e.waitStatus("1.1.0 online", func(s map[string]any) bool { return s["state"] == "online" && s["version"] == "1.1.0" })
	if served := srv.served(); served > size+size/4 {
		t.Errorf("%d bytes served for a %d-byte bundle: the download started over", served, size)
	}
	e.expectStates("job-1", firmware.JobQueued, firmware.JobDownloading, firmware.JobVerifying, firmware.JobInstalling,
		firmware.JobHealthCheck, firmware.JobSucceeded)
	slotsBefore := e.slotsSnapshot()

	// 3. The same job published again (a replay): refused, nothing fetched.
	requests := srv.requests()
	job1, _ := os.ReadFile(filepath.Join(root, "job-1.json"))
	e.publish(schema.NewTopics("ota", "box1").Job("job-1").Job, job1, false)
	e.waitStatusOf("job-1", "the duplicate refused", func(s firmware.JobStatus) bool {
		return s.State == firmware.JobSucceeded && strings.Contains(s.Reason, "duplicate")
	})
	if srv.requests() != requests {
		t.Error("the replayed job fetched blocks")
	}

	// 4. A tampered bundle (pushed with `firmware push`, streamed): refused
	// at verification, nothing changed in the slots.
	code, out := e.run("firmware", "push", "--broker", e.broker, "--fleet", "ota", "--agent", "box1", "--job-id", "job-tampered", "--timeout", "60s", tampered)
	if code != 1 || !strings.Contains(out, "failed") || !strings.Contains(out, "corrupt") {
		t.Fatalf("push of a tampered bundle: exit %d\n%s", code, out)
	}
	e.sameSlots("after the tampered bundle", slotsBefore)

	// 5. A downgrade (1.0.5 < 1.1.0) without allow_downgrade: refused.
	code, out = e.run("firmware", "push", "--broker", e.broker, "--fleet", "ota", "--agent", "box1", "--job-id", "job-down", "--timeout", "60s", b105)
	if code != 1 || !strings.Contains(out, "not newer") {
		t.Fatalf("push of a downgrade: exit %d\n%s", code, out)
	}
	e.sameSlots("after the downgrade", slotsBefore)

	// 6. A build that fails its health check (its stream does not decode:
	// the input is gone) is rolled back by itself at the deadline; 1.1.0
	// runs again and reports it.
	os.Rename(filepath.Join(media, "clip.mkv"), filepath.Join(media, "gone.mkv"))
	code, out = e.run("firmware", "push", "--broker", e.broker, "--fleet", "ota", "--agent", "box1", "--job-id", "job-unhealthy",
		"--health-deadline", "8s", "--timeout", "120s", b120)
	if code != 1 || !strings.Contains(out, "rolled-back") || !strings.Contains(out, "stream clip not decoding") {
		t.Fatalf("push of an unhealthy build: exit %d\n%s", code, out)
	}
	e.expectStates("job-unhealthy", firmware.JobQueued, firmware.JobDownloading, firmware.JobVerifying, firmware.JobInstalling,
		firmware.JobHealthCheck, firmware.JobRolledBack)
	e.waitStatus("1.1.0 online again", func(s map[string]any) bool { return s["state"] == "online" && s["version"] == "1.1.0" })
	if st := e.lastStatusOf("job-unhealthy"); st.Running != "1.2.0" {
		t.Errorf("the rollback was reported by %q, want the version that judged itself (1.2.0)", st.Running)
	}
	os.Rename(filepath.Join(media, "gone.mkv"), filepath.Join(media, "clip.mkv"))

	// 7. A build that cannot even start: the launcher counts its starts and
	// rolls the crash loop back; 1.1.0 reports it.
	code, out = e.run("firmware", "push", "--broker", e.broker, "--fleet", "ota", "--agent", "box1", "--job-id", "job-broken", "--timeout", "120s", b130)
	if code != 1 || !strings.Contains(out, "rolled-back") || !strings.Contains(out, "crash loop") {
		t.Fatalf("push of a broken build: exit %d\n%s", code, out)
	}
	e.waitStatus("1.1.0 online after the crash loop", func(s map[string]any) bool { return s["state"] == "online" && s["version"] == "1.1.0" })

	// 8. Every status payload matched its schema; a clean stop.
	e.stop()
	e.checkSchemas()
}

type updateEnv struct {
	t      *testing.T
	root   string
	broker string
	cli    string
	config string
	cmd    *exec.Cmd
	logs   *os.File

	mu       sync.Mutex
	statuses map[string][]firmware.JobStatus
	rawSt    [][]byte
	agentSt  map[string]any
	client   *mqtt.Client
}

func (e *updateEnv) build(version, dir string) string {
	e.t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	out := filepath.Join(dir, "streamqc")
	cmd := exec.Command(goTool, "build", "-ldflags", "-X main.version="+version, "-o", out, ".")
	if o, err := cmd.CombinedOutput(); err != nil {
		e.t.Fatalf("build %s: %v\n%s", version, err, o)
	}
	return out
}

func (e *updateEnv) run(args ...string) (int, string) {
	cmd := exec.Command(e.cli, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), out.String()
	}
	if err != nil {
		e.t.Fatalf("%v: %v", args, err)
	}
	return 0, out.String()
}

func (e *updateEnv) mustRun(args ...string) {
	e.t.Helper()
	if code, out := e.run(args...); code != 0 {
		e.t.Fatalf("streamqc %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
}

func (e *updateEnv) writeConfig(media, pub string) {
	e.config = filepath.Join(e.root, "etc", "streamqc", "agent.yaml")
	os.MkdirAll(filepath.Dir(e.config), 0o755)
	doc := fmt.Sprintf(`fleet: ota
agent: box1
state_dir: %s
media_dir: %s
broker: {url: %q}
metrics_interval: 1s
stop_timeout: 3s
streams:
  - {id: clip, url: clip.mkv, realtime: true, loop: true}
firmware:
  trusted_keys: [%s]
  health_deadline: 30s
`, filepath.Join(e.root, "var", "lib", "streamqc"), media, e.broker, pub)
	if err := os.WriteFile(e.config, []byte(doc), 0o640); err != nil {
		e.t.Fatal(err)
	}
}

// start runs the packaged binary as the service manager would, in its own
// process group (so a kill takes its child too).
func (e *updateEnv) start() {
	e.t.Helper()
	if e.logs == nil {
		var err error
		e.logs, err = os.Create(filepath.Join(e.root, "agent.log"))
		if err != nil {
			e.t.Fatal(err)
		}
		e.t.Cleanup(func() {
			if e.cmd != nil {
				syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
				e.cmd.Wait()
			}
			if e.t.Failed() {
				b, _ := os.ReadFile(e.logs.Name())
				if len(b) > 60000 {
					b = b[len(b)-60000:]
				}
				e.t.Logf("agent log (end):\n%s", b)
			}
		})
	}
	cmd := exec.Command(filepath.Join(e.root, "usr", "bin", "streamqc"), "run", "--config", e.config)
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	e.cmd = cmd
}

func (e *updateEnv) kill() {
	syscall.Kill(-e.cmd.Process.Pid, syscall.SIGKILL)
	e.cmd.Wait()
	e.cmd = nil
}

func (e *updateEnv) stop() {
	e.t.Helper()
	e.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- e.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			e.t.Errorf("launcher stop: %v", err)
		}
	case <-time.After(30 * time.Second):
		e.t.Error("launcher did not stop within 30 s")
	}
	e.cmd = nil
}

// watch follows the agent's status and every job status.
func (e *updateEnv) watch() {
	e.statuses = map[string][]firmware.JobStatus{}
	clean := true
	c, err := mqtt.New(mqtt.Options{Broker: e.broker, ClientID: "update-test", CleanSession: &clean,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		e.t.Fatal(err)
	}
	t := schema.NewTopics("ota", "box1")
	c.Subscribe(t.Status, 1, func(m mqtt.Message) {
		var s map[string]any
		if json.Unmarshal(m.Payload, &s) == nil {
			e.mu.Lock()
			e.agentSt = s
			e.mu.Unlock()
		}
	})
	c.Subscribe(t.Job("+").Status, 1, func(m mqtt.Message) {
		var s firmware.JobStatus
		if json.Unmarshal(m.Payload, &s) != nil {
			return
		}
		e.mu.Lock()
		e.statuses[s.JobID] = append(e.statuses[s.JobID], s)
		e.rawSt = append(e.rawSt, m.Payload)
		e.mu.Unlock()
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	e.t.Cleanup(func() { c.Close(time.Second); cancel() })
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		e.t.Fatal(err)
	}
	e.client = c
}

func (e *updateEnv) publish(topic string, payload []byte, retained bool) {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.client.Publish(ctx, mqtt.Message{Topic: topic, Payload: payload, QoS: 1, Retained: retained}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *updateEnv) publishJob(j firmware.Job) {
	b, _ := json.Marshal(j)
	os.WriteFile(filepath.Join(e.root, j.JobID+".json"), b, 0o644)
	e.publish(schema.NewTopics("ota", "box1").Job(j.JobID).Job, b, true)
}

func (e *updateEnv) wait(what string, d time.Duration, ok func() bool) {
	e.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if ok() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.mu.Lock()
	e.t.Fatalf("timed out waiting for %s; agent status %v; job statuses %+v", what, e.agentSt, e.statuses)
	e.mu.Unlock()
}

func (e *updateEnv) waitStatus(what string, ok func(map[string]any) bool) {
	e.t.Helper()
	e.wait(what, 90*time.Second, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.agentSt != nil && ok(e.agentSt)
	})
}

func (e *updateEnv) waitStatusOf(job, what string, ok func(firmware.JobStatus) bool) {
	e.t.Helper()
	e.wait(what, 90*time.Second, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		l := e.statuses[job]
		return len(l) > 0 && ok(l[len(l)-1])
	})
}

func (e *updateEnv) waitJob(job string, s firmware.JobState) {
	e.t.Helper()
	e.waitStatusOf(job, "job "+job+" "+string(s), func(st firmware.JobStatus) bool { return st.State == s })
}

func (e *updateEnv) lastStatusOf(job string) firmware.JobStatus {
	e.mu.Lock()
	defer e.mu.Unlock()
	l := e.statuses[job]
	return l[len(l)-1]
}

// expectStates checks that the job went through want, in order (repeats
// and progress updates between them allowed).
// expectStates checks that the job went through want, in order. The push
// command and this test's watcher are two subscribers of the same status
// topic: the push may return before the watcher has the last status, so it
// waits for it a while.
func (e *updateEnv) expectStates(job string, want ...firmware.JobState) {
	e.t.Helper()
	var got []firmware.JobState
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		got = got[:0]
		e.mu.Lock()
		for _, s := range e.statuses[job] {
			if len(got) == 0 || got[len(got)-1] != s.State {
				got = append(got, s.State)
			}
		}
		e.mu.Unlock()
		i := 0
		for _, s := range got {
			if i < len(want) && s == want[i] {
				i++
			}
		}
		if i == len(want) {
			return
		}
		if time.Now().After(deadline) {
			break
		}
	}
	e.t.Errorf("job %s went through %v, want %v in order", job, got, want)
}

func (e *updateEnv) slotsSnapshot() map[string]string {
	snap := map[string]string{}
	dir := filepath.Join(e.root, "var", "lib", "streamqc", "firmware")
	for _, n := range []string{"a", "b"} {
		filepath.Walk(filepath.Join(dir, n), func(p string, fi os.FileInfo, err error) error {
			if err == nil && fi.Mode().IsRegular() {
				b, _ := os.ReadFile(p)
				sum := sha256.Sum256(b)
				snap[p] = hex.EncodeToString(sum[:])
			}
			return nil
		})
	}
	link, _ := os.Readlink(filepath.Join(dir, firmware.CurrentLink))
	snap["current"] = link
	st, _ := os.ReadFile(filepath.Join(dir, firmware.StateFile))
	snap["state"] = string(st)
	return snap
}

func (e *updateEnv) sameSlots(what string, before map[string]string) {
	e.t.Helper()
	after := e.slotsSnapshot()
	for k, v := range before {
		if after[k] != v {
			e.t.Errorf("%s: %s changed", what, k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			e.t.Errorf("%s: %s appeared", what, k)
		}
	}
}

func (e *updateEnv) checkSchemas() {
	set, err := schema.Load()
	if err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, raw := range e.rawSt {
		if err := set.Validate(schema.JobStatus, raw); err != nil {
			e.t.Errorf("job status %s: %v", raw, err)
		}
	}
}

// testStreamer serves a bundle's blocks for one job, and can be paused (it
// stops answering) to hold a download halfway.
type testStreamer struct {
	mu       sync.Mutex
	paused   bool
	resumeAt int // len(offsets) at resume
	offsets  []int64
	bytes    int64
	reqs     chan []byte
}

func (e *updateEnv) streamer(job, bundle string) *testStreamer {
	f, err := os.Open(bundle)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { f.Close() })
	size := fileSize(e.t, bundle)
	s := &testStreamer{reqs: make(chan []byte, 64)}
	topics := schema.NewTopics("ota", "box1").Job(job)
	e.client.Subscribe(topics.StreamGet, 1, func(m mqtt.Message) {
		var r firmware.BlockRequest
		if json.Unmarshal(m.Payload, &r) != nil {
			return
		}
		s.mu.Lock()
		paused := s.paused
		if !paused {
			s.offsets = append(s.offsets, r.Offset)
			s.bytes += int64(r.Length)
		}
		s.mu.Unlock()
		if !paused {
			s.reqs <- m.Payload
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	e.t.Cleanup(cancel)
	pub := func(ctx context.Context, msg []byte) error {
		return e.client.Publish(ctx, mqtt.Message{Topic: topics.StreamData, Payload: msg, QoS: 1})
	}
	go firmware.ServeBlocks(ctx, f, size, firmware.MaxBlockSize, s.reqs, pub, slog.New(slog.NewTextHandler(io.Discard, nil)))
	return s
}

func (s *testStreamer) waitOffset(t *testing.T, off int64) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		n := len(s.offsets)
		last := int64(-1)
		if n > 0 {
			last = s.offsets[n-1]
		}
		s.mu.Unlock()
		if last >= off {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("the download never reached offset %d", off)
}

func (s *testStreamer) pause() {
	s.mu.Lock()
	s.paused = true
	s.mu.Unlock()
	time.Sleep(300 * time.Millisecond) // the block in flight lands
}

func (s *testStreamer) resume() {
	s.mu.Lock()
	s.paused, s.resumeAt = false, len(s.offsets)
	s.mu.Unlock()
}

func (s *testStreamer) lowestAfterResume() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	low := int64(-1)
	for _, o := range s.offsets[s.resumeAt:] {
		if low < 0 || o < low {
			low = o
		}
	}
	return low
}

func (s *testStreamer) served() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes
}

func (s *testStreamer) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.offsets)
}

func fileSize(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func fileSHA(t testing.TB, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
