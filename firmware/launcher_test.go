package firmware

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedClock is a settable clock shared by the test and the launcher.
type lockedClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *lockedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *lockedClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// childScript is the "streamqc" of a test slot: it appends "VERSION ARGS
// SLOT" to $LAUNCHER_LOG, then behaves as the file $LAUNCHER_MODE says:
// run (until SIGTERM, exit 0), crash (exit 3), restart (exit 75).
func childScript(version string) []byte {
	return []byte(`#!/bin/sh
echo "` + version + ` $* $STREAMQC_SLOT wd=${WATCHDOG_PID:-none}" >> "$LAUNCHER_LOG"
mode=$(cat "$LAUNCHER_MODE")
case "$mode" in
crash) exit 3 ;;
restart) echo run > "$LAUNCHER_MODE"; exit 75 ;;
esac
trap 'echo "` + version + ` stopped" >> "$LAUNCHER_LOG"; exit 0' TERM
while :; do sleep 0.05; done
`)
}

type launcherEnv struct {
	*slotEnv
	clock   *lockedClock
	log     string
	mode    string
	inProc  chan struct{}
	restart bool // InProcess returns ErrRestart once
}

func newLauncherEnv(t *testing.T) *launcherEnv {
	e := &launcherEnv{slotEnv: newSlotEnv(t), clock: &lockedClock{t: time.Now()}, inProc: make(chan struct{}, 8)}
	e.s.Now = e.clock.Now
	dir := t.TempDir()
	e.log, e.mode = filepath.Join(dir, "log"), filepath.Join(dir, "mode")
	t.Setenv("LAUNCHER_LOG", e.log)
	t.Setenv("LAUNCHER_MODE", e.mode)
	t.Setenv("WATCHDOG_PID", "1")
	e.setMode(t, "run")
	return e
}

func (e *launcherEnv) setMode(t *testing.T, m string) {
	if err := os.WriteFile(e.mode, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
}

func (e *launcherEnv) installScript(t *testing.T, version string, deadline time.Duration) {
	t.Helper()
	files := map[string][]byte{Binary: childScript(version)}
	b := makeBundle(t, e.priv, testManifest(version), files)
	if _, err := e.s.Install(bytes.NewReader(b), e.kr, slotTarget, 0, deadline); err != nil {
		t.Fatalf("install %s: %v", version, err)
	}
}

func (e *launcherEnv) lines() []string {
	b, _ := os.ReadFile(e.log)
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (e *launcherEnv) waitLog(t *testing.T, what string, ok func([]string) bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		if ok(e.lines()) {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s; log: %q", what, e.lines())
}

func (e *launcherEnv) launcher() *Launcher {
	return &Launcher{
		Slots: e.s, Version: "1.0.0", Args: []string{"run", "--config", "x.yaml"},
		InProcess: func(ctx context.Context) error {
			e.inProc <- struct{}{}
			if e.restart {
				e.restart = false
				return ErrRestart
			}
			<-ctx.Done()
			return nil
		},
		StopTimeout: 5 * time.Second, Grace: time.Second, RestartDelay: 50 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

// runLauncher runs l until the test ends; done yields Run's result (to
// the test, once), and the cleanup waits for Run to return.
func runLauncher(t *testing.T, l *Launcher) (cancel func(), done <-chan error) {
	ctx, c := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	finished := make(chan struct{})
	go func() { ch <- l.Run(ctx); close(finished) }()
	t.Cleanup(func() {
		c()
		select {
		case <-finished:
		case <-time.After(10 * time.Second):
			t.Error("launcher did not stop")
		}
	})
	return c, ch
}

func count(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}

func TestLauncherNoSlotRunsInProcessThenTheInstalledSlot(t *testing.T) {
	e := newLauncherEnv(t)
	l := e.launcher()
	e.restart = true // the in-process agent installs an update and asks for a restart
	cancel, done := runLauncher(t, l)
	<-e.inProc
	// (InProcess returned ErrRestart before anything was installed: the
	// launcher boots again and, still without a slot, runs in process.)
	<-e.inProc
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}

	e.installScript(t, "1.1.0", time.Minute)
	cancel, done = runLauncher(t, l)
	e.waitLog(t, "the slot's child", func(ls []string) bool { return count(ls, "1.1.0 run --config x.yaml a wd=none") == 1 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	e.waitLog(t, "the child stopped by SIGTERM", func(ls []string) bool { return count(ls, "1.1.0 stopped") == 1 })
	st, _ := e.s.Status()
	if st.Pending != "a" || len(st.Boots) != 1 {
		t.Fatalf("after one start on trial: pending %q boots %d", st.Pending, len(st.Boots))
	}
}

func TestLauncherTrialNotCommittedIsRolledBack(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	e.installScript(t, "1.2.0", 10*time.Second) // hangs: never commits
	_, _ = runLauncher(t, e.launcher())
	e.waitLog(t, "1.2.0 on trial", func(ls []string) bool { return count(ls, "1.2.0 run") == 1 })
	e.clock.Add(10*time.Second + 1500*time.Millisecond) // past the deadline and the grace
	e.waitLog(t, "1.1.0 again after the rollback", func(ls []string) bool {
		return count(ls, "1.2.0 stopped") == 1 && count(ls, "1.1.0 run") == 1
	})
	st, _ := e.s.Status()
	if st.Current != "a" || st.Pending != "" || st.LastRollback == nil || !strings.Contains(st.LastRollback.Reason, "launcher") {
		t.Fatalf("state after the rollback: %+v", st)
	}
}

func TestLauncherTrialCommittedIsLeftAlone(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", 10*time.Second)
	_, _ = runLauncher(t, e.launcher())
	e.waitLog(t, "1.1.0 on trial", func(ls []string) bool { return count(ls, "1.1.0 run") == 1 })
	if err := e.s.Commit(); err != nil { // what the agent does once healthy
		t.Fatal(err)
	}
	e.clock.Add(time.Hour)
	time.Sleep(1500 * time.Millisecond) // two checks of the launcher
	if ls := e.lines(); count(ls, "1.1.0 stopped") != 0 {
		t.Fatalf("a committed slot was stopped: %q", ls)
	}
}

func TestLauncherCrashLoopRollsBack(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	e.installScript(t, "1.2.0", time.Minute)
	e.setMode(t, "crash")
	_, _ = runLauncher(t, e.launcher())
	// 1.1.0 crashes too in this mode, and is not on trial: the launcher
	// returns its failure to the service manager.
	e.waitLog(t, "1.2.0 started three times, then 1.1.0", func(ls []string) bool {
		return count(ls, "1.2.0 run") == CrashLoopStarts-1 && count(ls, "1.1.0 run") >= 1
	})
	st, _ := e.s.Status()
	if st.Current != "a" || st.LastRollback == nil || !strings.Contains(st.LastRollback.Reason, "crash loop") {
		t.Fatalf("state after the crash loop: %+v", st)
	}
}

func TestLauncherUnstartableTrialBinaryCountsAsCrash(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	// A signed bundle whose binary is not a program at all.
	b := makeBundle(t, e.priv, testManifest("1.2.0"), map[string][]byte{Binary: []byte("\x7fELF truncated")})
	if _, err := e.s.Install(bytes.NewReader(b), e.kr, slotTarget, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	_, _ = runLauncher(t, e.launcher())
	e.waitLog(t, "1.1.0 after the rollback", func(ls []string) bool { return count(ls, "1.1.0 run") == 1 })
	st, _ := e.s.Status()
	if st.Current != "a" || st.LastRollback == nil || st.LastRollback.FromVersion != "1.2.0" {
		t.Fatalf("state: %+v", st)
	}
}

func TestLauncherRestartExitCodeBootsAgain(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	e.setMode(t, "restart")
	_, _ = runLauncher(t, e.launcher())
	e.waitLog(t, "two starts", func(ls []string) bool { return count(ls, "1.1.0 run") == 2 })
}

func TestLauncherFailureOutsideTrialIsReturned(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	e.setMode(t, "crash")
	_, done := runLauncher(t, e.launcher())
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "status 3") {
			t.Fatalf("run = %v, want the child's status 3", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("launcher did not return")
	}
}

func TestLauncherPackagedNewerThanSlotWins(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	l := e.launcher()
	l.Version = "2.0.0" // the package was upgraded past the over-the-air version
	_, _ = runLauncher(t, l)
	select {
	case <-e.inProc:
	case <-time.After(5 * time.Second):
		t.Fatal("the packaged binary did not run")
	}
	if b, _ := os.ReadFile(e.log); len(b) != 0 {
		t.Fatalf("the older slot ran: %s", b)
	}
}

func TestLauncherBrokenSlotsRunPackaged(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	// current pointing nowhere: Boot cannot use it.
	os.RemoveAll(filepath.Join(e.s.Dir, "a"))
	_, _ = runLauncher(t, e.launcher())
	select {
	case <-e.inProc:
	case <-time.After(5 * time.Second):
		t.Fatal("the packaged binary did not run")
	}
}

func TestOlderThan(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want bool
	}{
		{"1.0.0", "1.1.0", true}, {"v1.0.0", "1.0.1", true}, {"1.1.0", "1.0.0", false},
		{"1.0.0", "1.0.0", false}, {"dev", "1.0.0", false}, {"1.0.0", "abc1234", false},
	} {
		if got := olderThan(c.a, c.b); got != c.want {
			t.Errorf("olderThan(%q, %q) = %v", c.a, c.b, got)
		}
	}
}
