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
// run (until SIGTERM, exit 0), crash (exit 3), exit0 (exit 0), restart
// (exit 75 once), restartloop (exit 75 every time); crash:VERSION and
// exit0:VERSION only for that version. While it runs, the mode crashlater
// makes it exit 3.
func childScript(version string) []byte {
	return []byte(`#!/bin/sh
echo "` + version + ` $* $STREAMQC_SLOT wd=${WATCHDOG_PID:-none}" >> "$LAUNCHER_LOG"
mode=$(cat "$LAUNCHER_MODE")
case "$mode" in
crash|crash:` + version + `) exit 3 ;;
exit0|exit0:` + version + `) exit 0 ;;
restart) echo run > "$LAUNCHER_MODE"; exit 75 ;;
restartloop) exit 75 ;;
esac
trap 'echo "` + version + ` stopped" >> "$LAUNCHER_LOG"; exit 0' TERM
while :; do
	[ "$(cat "$LAUNCHER_MODE")" = crashlater ] && exit 3
	sleep 0.05
done
`)
}

// notifyLog is a fake sd_notify: it records every state sent.
type notifyLog struct {
	mu sync.Mutex
	ev []notifyEvent
}

type notifyEvent struct {
	state string
	at    time.Time
}

func (n *notifyLog) notify(state string) error {
	n.mu.Lock()
	n.ev = append(n.ev, notifyEvent{state, time.Now()})
	n.mu.Unlock()
	return nil
}

// times returns when state was sent.
func (n *notifyLog) times(state string) []time.Time {
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []time.Time
	for _, e := range n.ev {
		if e.state == state {
			out = append(out, e.at)
		}
	}
	return out
}

func after(ts []time.Time, t0 time.Time) int {
	n := 0
	for _, t := range ts {
		if t.After(t0) {
			n++
		}
	}
	return n
}

type launcherEnv struct {
	*slotEnv
	clock   *lockedClock
	log     string
	mode    string
	inProc  chan struct{}
	restart bool // InProcess returns ErrRestart once
	notes   *notifyLog
}

func newLauncherEnv(t *testing.T) *launcherEnv {
	e := &launcherEnv{slotEnv: newSlotEnv(t), clock: &lockedClock{t: time.Now()}, inProc: make(chan struct{}, 8), notes: &notifyLog{}}
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
		Keys: e.kr, Notify: e.notes.notify, Watchdog: -1,
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
	// Boot rolls back at the CrashLoopStarts-th start, before it runs.
	e.waitLog(t, "1.2.0 started CrashLoopStarts-1 times, then 1.1.0", func(ls []string) bool {
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

// installCommitted installs version and commits it (what a healthy agent does).
func (e *launcherEnv) installCommitted(t *testing.T, version string) {
	t.Helper()
	e.installScript(t, version, time.Minute)
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
}

func (e *launcherEnv) waitInProcess(t *testing.T) {
	t.Helper()
	select {
	case <-e.inProc:
	case <-time.After(10 * time.Second):
		t.Fatalf("the packaged binary did not run; log: %q", e.lines())
	}
}

func TestLauncherFeedsWatchdogOnlyBetweenChildren(t *testing.T) {
	e := newLauncherEnv(t)
	e.installCommitted(t, "1.1.0")
	e.installScript(t, "1.2.0", time.Minute)
	e.setMode(t, "crash:1.2.0")
	l := e.launcher()
	// The delays between the crashing starts are longer than the watchdog:
	// only the launcher's pings keep the service alive through them.
	const wd, window = 400 * time.Millisecond, 800 * time.Millisecond
	l.Watchdog, l.StartupWindow, l.RestartDelay = wd, window, 500*time.Millisecond
	start := time.Now()
	_, _ = runLauncher(t, l)
	e.waitLog(t, "the crash loop rolled back to 1.1.0", func(ls []string) bool {
		return count(ls, "1.2.0 run") == CrashLoopStarts-1 && count(ls, "1.1.0 run") == 1
	})
	good := time.Now()
	pings := e.notes.times("WATCHDOG=1")
	last := start
	for _, p := range pings {
		if p.After(good) {
			break
		}
		if gap := p.Sub(last); gap >= wd {
			t.Fatalf("no watchdog ping for %v during the crash loop (watchdog %v)", gap, wd)
		}
		last = p
	}
	if gap := good.Sub(last); gap >= wd {
		t.Fatalf("no watchdog ping for %v before 1.1.0 started", gap)
	}
	// 1.1.0 has its startup window, then feeds the watchdog itself: a
	// child wedged after that is caught by its own missing pings.
	time.Sleep(window + 300*time.Millisecond)
	if after(e.notes.times("WATCHDOG=1"), good) == 0 {
		t.Fatal("no ping during the startup window of 1.1.0")
	}
	n := len(e.notes.times("WATCHDOG=1"))
	time.Sleep(3 * wd)
	if m := len(e.notes.times("WATCHDOG=1")); m != n {
		t.Fatalf("%d pings past the startup window of a running child", m-n)
	}
}

func TestLauncherDoesNotFeedWatchdogInProcess(t *testing.T) {
	e := newLauncherEnv(t)
	e.restart = true // the first in-process run asks for a restart
	l := e.launcher()
	l.Watchdog = 200 * time.Millisecond
	_, _ = runLauncher(t, l)
	e.waitInProcess(t)
	e.waitInProcess(t)
	t0 := time.Now()
	time.Sleep(600 * time.Millisecond)
	if n := after(e.notes.times("WATCHDOG=1"), t0); n != 0 {
		t.Fatalf("%d watchdog pings while the agent runs in process", n)
	}
}

func TestLauncherSendsStopping(t *testing.T) {
	tests := []struct {
		name  string
		setup func(t *testing.T, e *launcherEnv, l *Launcher)
		ready func(t *testing.T, e *launcherEnv)
		want  int // STOPPING=1 sent by the launcher
	}{
		{"child running", func(t *testing.T, e *launcherEnv, l *Launcher) { e.installCommitted(t, "1.1.0") },
			func(t *testing.T, e *launcherEnv) {
				e.waitLog(t, "1.1.0 runs", func(ls []string) bool { return count(ls, "1.1.0 run") == 1 })
			}, 1},
		{"between starts of a crashing trial", func(t *testing.T, e *launcherEnv, l *Launcher) {
			e.installScript(t, "1.1.0", time.Minute)
			e.setMode(t, "crash")
			l.RestartDelay = time.Minute
		}, func(t *testing.T, e *launcherEnv) {
			e.waitLog(t, "1.1.0 crashed", func(ls []string) bool { return count(ls, "1.1.0 run") == 1 })
			time.Sleep(100 * time.Millisecond)
		}, 1},
		// The in-process agent says it itself.
		{"in process", func(*testing.T, *launcherEnv, *Launcher) {}, func(t *testing.T, e *launcherEnv) { e.waitInProcess(t) }, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newLauncherEnv(t)
			l := e.launcher()
			tc.setup(t, e, l)
			cancel, done := runLauncher(t, l)
			tc.ready(t, e)
			if n := len(e.notes.times("STOPPING=1")); n != 0 {
				t.Fatalf("STOPPING=1 sent %d times before the stop", n)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatalf("run: %v", err)
			}
			if n := len(e.notes.times("STOPPING=1")); n != tc.want {
				t.Fatalf("STOPPING=1 sent %d times, want %d", n, tc.want)
			}
		})
	}
}

func TestLauncherRestartLoopIsDelayed(t *testing.T) {
	e := newLauncherEnv(t)
	e.installCommitted(t, "1.1.0")
	e.setMode(t, "restartloop")
	l := e.launcher()
	l.RestartDelay = 300 * time.Millisecond
	_, _ = runLauncher(t, l)
	time.Sleep(1200 * time.Millisecond)
	// About one start per RestartDelay; without the delay, hundreds.
	if n := count(e.lines(), "1.1.0 run"); n < 2 || n > 6 {
		t.Fatalf("%d starts in 1.2 s with a restart delay of 300 ms", n)
	}
}

func TestLauncherTrialExitZeroCountsAsCrash(t *testing.T) {
	e := newLauncherEnv(t)
	e.installCommitted(t, "1.1.0")
	e.installScript(t, "1.2.0", time.Minute)
	e.setMode(t, "exit0:1.2.0")
	_, done := runLauncher(t, e.launcher())
	e.waitLog(t, "the crash loop rolled back to 1.1.0", func(ls []string) bool {
		return count(ls, "1.2.0 run") == CrashLoopStarts-1 && count(ls, "1.1.0 run") == 1
	})
	select {
	case err := <-done:
		t.Fatalf("the launcher ended (%v) on an exit 0 of a slot on trial", err)
	default:
	}
	st, _ := e.s.Status()
	if st.Current != "a" || st.LastRollback == nil || !strings.Contains(st.LastRollback.Reason, "crash loop") {
		t.Fatalf("state: %+v", st)
	}
}

func TestLauncherCommittedUnstartableRunsPackaged(t *testing.T) {
	e := newLauncherEnv(t)
	// Signed, verified, committed, and still no program (exec format error).
	b := makeBundle(t, e.priv, testManifest("1.1.0"), map[string][]byte{Binary: []byte("\x7fELF truncated")})
	if _, err := e.s.Install(bytes.NewReader(b), e.kr, slotTarget, 0, time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	_, done := runLauncher(t, e.launcher())
	select {
	case <-e.inProc:
	case err := <-done:
		t.Fatalf("run = %v, want the packaged binary running", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the packaged binary did not run")
	}
}

func TestLauncherCommitWhileRunningIsNoLongerATrial(t *testing.T) {
	e := newLauncherEnv(t)
	e.installScript(t, "1.1.0", time.Minute)
	_, done := runLauncher(t, e.launcher())
	e.waitLog(t, "1.1.0 on trial", func(ls []string) bool { return count(ls, "1.1.0 run") == 1 })
	if err := e.s.Commit(); err != nil { // the agent passed its health check
		t.Fatal(err)
	}
	e.setMode(t, "crashlater")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "status 3") {
			t.Fatalf("run = %v, want the child's status 3", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the launcher did not return the committed child's failure")
	}
	if n := count(e.lines(), "1.1.0 run"); n != 1 {
		t.Fatalf("the committed slot was started %d times, as if still on trial", n)
	}
}

func TestLauncherVerifiesSlotBeforeRunning(t *testing.T) {
	tamperBinary := func(t *testing.T, slot string) {
		if err := os.WriteFile(filepath.Join(slot, Binary), childScript("evil"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name      string
		committed bool // 1.2.0 committed (else on trial)
		tamper    func(t *testing.T, slot string)
		noKeys    bool
		want      string // "1.2.0": it runs; "1.1.0": rolled back; "packaged": in process
	}{
		{name: "valid slot on trial runs", want: "1.2.0"},
		{name: "valid committed slot runs", committed: true, want: "1.2.0"},
		{name: "modified binary on trial is rolled back", tamper: tamperBinary, want: "1.1.0"},
		{name: "modified binary committed: packaged runs", committed: true, tamper: tamperBinary, want: "packaged"},
		{name: "program added to a committed slot: packaged runs", committed: true, want: "packaged",
			tamper: func(t *testing.T, slot string) {
				os.WriteFile(filepath.Join(slot, "helper"), childScript("evil"), 0o755)
			}},
		{name: "no stored manifest: packaged runs", committed: true, want: "packaged",
			tamper: func(t *testing.T, slot string) { os.Remove(filepath.Join(slot, SlotManifest)) }},
		{name: "no trusted keys: packaged runs", committed: true, noKeys: true, want: "packaged"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newLauncherEnv(t)
			e.installCommitted(t, "1.1.0")
			e.installScript(t, "1.2.0", time.Minute)
			if tc.committed {
				if err := e.s.Commit(); err != nil {
					t.Fatal(err)
				}
			}
			if tc.tamper != nil {
				tc.tamper(t, filepath.Join(e.s.Dir, SlotB))
			}
			l := e.launcher()
			if tc.noKeys {
				l.Keys = nil
			}
			_, _ = runLauncher(t, l)
			switch tc.want {
			case "packaged":
				e.waitInProcess(t)
				time.Sleep(200 * time.Millisecond)
			default:
				e.waitLog(t, tc.want+" runs", func(ls []string) bool { return count(ls, tc.want+" run") == 1 })
			}
			ls := e.lines()
			if n := count(ls, "evil"); n != 0 {
				t.Fatalf("the modified slot ran: %q", ls)
			}
			if tc.want != "1.2.0" && count(ls, "1.2.0") != 0 {
				t.Fatalf("1.2.0 ran: %q", ls)
			}
			st, _ := e.s.Status()
			switch tc.want {
			case "1.1.0":
				if st.Current != SlotA || st.LastRollback == nil || !strings.Contains(st.LastRollback.Reason, "modified") {
					t.Fatalf("state after the rollback: %+v", st)
				}
			default:
				if st.Current != SlotB || st.LastRollback != nil {
					t.Fatalf("state: %+v", st)
				}
			}
		})
	}
}
