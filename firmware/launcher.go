package firmware

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// The launcher (issue 6, item 3) is the first streamqc process of every
// start of the service: the binary the package installed, never replaced by
// an update. It runs Boot, then the binary of the current slot as its child
// (or the agent in its own process when no slot is installed), and watches a
// slot on trial from outside: a new version that hangs, never reports
// healthy, or crashes again and again is rolled back by the old, known-good
// launcher, not by trusting the new code to judge itself. Elastic Agent's
// upgrade watcher works the same way. Before each run the slot is verified
// against the trusted keys again: the service user can write to it.

// EnvSlot is set in the environment of a slot's child process to the slot
// it runs from: that process runs the agent and never launches again.
const EnvSlot = "STREAMQC_SLOT"

// RestartExitCode is how an agent asks its launcher to start the current
// slot again (after installing an update or rolling one back): EX_TEMPFAIL.
const RestartExitCode = 75

// ErrRestart is returned by an in-process agent to ask for the same.
var ErrRestart = errors.New("restart to run the current firmware slot")

// Binary is the file of a slot the launcher runs.
const Binary = "streamqc"

// quickExit: a child that asks for a restart (RestartExitCode) sooner than
// this after its start waits RestartDelay first, so a restart loop cannot
// spin.
const quickExit = 10 * time.Second

// Launcher runs the agent from the current slot and watches its trial.
type Launcher struct {
	Slots *Slots
	// Keys are the trusted firmware keys: before every run the slot is
	// verified against the signed manifest Install kept in it. Without
	// keys no slot can be verified, and the packaged binary runs in process.
	Keys *Keyring
	// Version of this (the packaged) binary: a slot older than it is not run
	// once its update is committed, so a package upgrade wins over an older
	// over-the-air version.
	Version string
	// Args are the child's arguments (without the program name).
	Args []string
	// InProcess runs the agent in this process: when no slot is installed,
	// the current slot is this binary, or a slot cannot be verified or
	// started. It returns ErrRestart to have the current slot started again.
	InProcess func(ctx context.Context) error
	// StopTimeout is how long a child has to stop after SIGTERM before it
	// is killed (default 25 s).
	StopTimeout time.Duration
	// Grace is how long after the trial deadline the launcher waits for the
	// child to decide itself before it stops it and rolls back (default 30 s).
	Grace time.Duration
	// RestartDelay separates the starts of a slot on trial that exited, and
	// of a child that asked for a restart soon after its start (default 2 s,
	// systemd's RestartSec).
	RestartDelay time.Duration
	// Notify sends a state to the service manager (default: sd_notify,
	// which does nothing without NOTIFY_SOCKET).
	Notify func(state string) error
	// Watchdog is the service manager's watchdog timeout (0: from
	// WATCHDOG_USEC when WATCHDOG_PID names this process; negative: none).
	// The launcher feeds it only between children and while a new child
	// starts, never while a child runs past StartupWindow nor while the
	// agent runs in process: those feed it themselves, only when healthy.
	Watchdog time.Duration
	// StartupWindow is how long after a child's start the launcher goes on
	// feeding the watchdog, until the child's own pings take over (default
	// 30 s, at least Watchdog).
	StartupWindow time.Duration
	Logger        *slog.Logger
}

func (l *Launcher) defaults() {
	if l.StopTimeout <= 0 {
		l.StopTimeout = 25 * time.Second
	}
	if l.Grace <= 0 {
		l.Grace = 30 * time.Second
	}
	if l.RestartDelay <= 0 {
		l.RestartDelay = 2 * time.Second
	}
	if l.Logger == nil {
		l.Logger = slog.Default()
	}
	if l.Notify == nil {
		l.Notify = func(state string) error {
			_, err := daemon.SdNotify(false, state)
			return err
		}
	}
	if l.Watchdog == 0 {
		// The launcher is the service's main process, so WATCHDOG_PID is ours.
		iv, err := daemon.SdWatchdogEnabled(false)
		if err != nil {
			l.Logger.Warn("watchdog settings unreadable; not feeding the watchdog", "err", err)
		}
		l.Watchdog = iv
	}
	if l.StartupWindow <= 0 {
		l.StartupWindow = max(30*time.Second, l.Watchdog)
	}
}

// session is the state of one Run.
type session struct {
	l        *Launcher
	wd       *feeder // nil: no watchdog
	stopSent bool
}

// stopping tells the service manager the service is stopping, once: the
// launcher's ctx ended (a child does not say it: it only stops because
// the launcher asked).
func (s *session) stopping() {
	if s.stopSent {
		return
	}
	s.stopSent = true
	if err := s.l.Notify(daemon.SdNotifyStopping); err != nil {
		s.l.Logger.Warn("sd_notify", "state", daemon.SdNotifyStopping, "err", err)
	}
}

// wait sleeps d; false when ctx ended first.
func (s *session) wait(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		s.stopping()
		return false
	case <-time.After(d):
		return true
	}
}

// Run runs until ctx is done (a clean stop returns nil) or the agent fails
// outside a trial (its error; the service manager restarts the launcher).
func (l *Launcher) Run(ctx context.Context) error {
	l.defaults()
	self, err := os.Executable()
	if err == nil {
		self, err = filepath.EvalSymlinks(self)
	}
	if err != nil {
		return fmt.Errorf("launcher: own executable: %w", err)
	}
	s := &session{l: l}
	if l.Watchdog > 0 {
		// Its own context: a child being stopped at the end is still covered.
		life, cancel := context.WithCancel(context.Background())
		defer cancel()
		s.wd = &feeder{notify: l.Notify, log: l.Logger, every: l.Watchdog / 4, kick: make(chan struct{}, 1)}
		go s.wd.run(life)
	}
	for {
		if ctx.Err() != nil {
			s.stopping()
			return nil
		}
		// Between agents nobody else feeds the watchdog.
		s.wd.feed(0)
		bin, st, err := l.boot(self)
		if errors.Is(err, errBootAgain) {
			continue
		}
		if err != nil {
			// A broken firmware directory must not keep the box unmonitored:
			// run the packaged agent, say why.
			l.Logger.Error("firmware slots unusable; running the packaged binary", "err", err)
			bin = ""
		}
		if bin == "" {
			if again, err := s.inProcess(ctx); !again {
				return err
			}
			continue
		}
		ex, err := l.child(ctx, s, bin, st)
		switch {
		case ex.stopped:
			return nil
		case ctx.Err() != nil:
			// The child ended on the same stop (a signal to the whole group).
			s.stopping()
			return nil
		case err != nil:
			return err
		case ex.expired:
			continue
		case ex.startErr != nil:
			// A committed slot that cannot be exec'd (the binary deleted or
			// not executable) would fail every start: run the packaged one.
			l.Logger.Error("firmware slot cannot be started; running the packaged binary",
				"slot", st.Current, "binary", bin, "err", ex.startErr)
			if again, err := s.inProcess(ctx); !again {
				return err
			}
			continue
		}
		// The child may have committed (or rolled back) while it ran.
		onTrial := l.onTrial(st)
		switch {
		case ex.code == RestartExitCode:
			if ex.ran < quickExit && !s.wait(ctx, l.RestartDelay) {
				return nil
			}
			continue
		case !onTrial && ex.code == 0:
			return nil // stopped by someone else's SIGTERM: a clean stop
		case !onTrial:
			return fmt.Errorf("launcher: %s exited with status %d", bin, ex.code)
		}
		// On trial, an exit the launcher did not ask for is a crash, 0 too
		// (under Restart=on-failure it would end the service): start it
		// again; Boot counts the starts and rolls a crash loop back.
		l.Logger.Error("firmware on trial exited; starting it again", "binary", bin, "status", ex.code)
		if !s.wait(ctx, l.RestartDelay) {
			return nil
		}
	}
}

// inProcess runs the packaged agent; again is true when it asked for the
// current slot to be started again.
func (s *session) inProcess(ctx context.Context) (again bool, err error) {
	// The in-process agent feeds the watchdog itself, only while healthy.
	s.wd.stop()
	err = s.l.InProcess(ctx)
	if errors.Is(err, ErrRestart) {
		return true, nil
	}
	return false, err
}

// onTrial reports whether the slot started under st is still on trial,
// from state.json as it is now.
func (l *Launcher) onTrial(st State) bool {
	cur, err := l.Slots.Status()
	if err != nil {
		// The next Boot repairs it; until then the state seen at the start holds.
		l.Logger.Warn("firmware slots unreadable after the child exited", "err", err)
		return st.Pending != ""
	}
	return cur.Pending != "" && cur.Pending == st.Current
}

// errBootAgain: boot changed the slots (it rolled back a slot on trial
// that failed verification); boot again.
var errBootAgain = errors.New("boot again")

// boot runs Slots.Boot and returns the binary to start as a child ("" to
// run in process) and the state it runs under.
func (l *Launcher) boot(self string) (string, State, error) {
	d, err := l.Slots.Boot()
	if err != nil {
		return "", State{}, err
	}
	if d.RolledBack || d.Repaired {
		l.Logger.Warn("firmware slots", "rolled_back", d.RolledBack, "repaired", d.Repaired, "reason", d.Reason)
	}
	st, err := l.Slots.Status()
	if err != nil {
		return "", State{}, err
	}
	if st.Current == "" {
		return "", st, nil
	}
	bin := filepath.Join(l.Slots.Dir, CurrentLink, Binary)
	real, err := filepath.EvalSymlinks(bin)
	if err != nil {
		return "", st, fmt.Errorf("slot %s: %w", st.Current, err)
	}
	if real == self {
		return "", st, nil
	}
	if st.Pending == "" && olderThan(st.Versions[st.Current], l.Version) {
		l.Logger.Warn("the packaged binary is newer than the firmware slot; running the packaged binary",
			"packaged", l.Version, "slot", st.Current, "slot_version", st.Versions[st.Current])
		return "", st, nil
	}
	if l.Keys.Len() == 0 {
		// An update cannot be installed without keys, but an operator may
		// have removed them since: the packaged binary is the safe choice.
		l.Logger.Error("no trusted firmware keys to verify the slot with; running the packaged binary",
			"slot", st.Current, "slot_version", st.Versions[st.Current])
		return "", st, nil
	}
	if _, err := l.Slots.Verify(st.Current, l.Keys); err != nil {
		if st.Pending == "" {
			l.Logger.Error("firmware slot does not verify; running the packaged binary",
				"slot", st.Current, "slot_version", st.Versions[st.Current], "err", err)
			return "", st, nil
		}
		l.Logger.Error("firmware on trial does not verify; rolling it back",
			"slot", st.Current, "slot_version", st.Versions[st.Current], "err", err)
		if rerr := l.Slots.Rollback(fmt.Sprintf("slot modified after install: %v", err)); rerr != nil {
			return "", st, fmt.Errorf("launcher: rollback: %w", rerr)
		}
		return "", st, errBootAgain
	}
	return bin, st, nil
}

// olderThan reports whether version a is older than b (both semantic
// versions; anything else compares as not older).
func olderThan(a, b string) bool {
	va, err1 := ParseVersion(strings.TrimPrefix(a, "v"))
	vb, err2 := ParseVersion(strings.TrimPrefix(b, "v"))
	return err1 == nil && err2 == nil && va.Compare(vb) < 0
}

// childExit is how a child ended.
type childExit struct {
	code     int
	ran      time.Duration
	stopped  bool  // the launcher's ctx ended: stopped on its behalf
	expired  bool  // on trial past the deadline: stopped and rolled back
	startErr error // a committed slot could not be started
}

// child runs bin until it exits; on trial it is stopped and rolled back once
// the deadline and the grace period pass without a commit.
func (l *Launcher) child(ctx context.Context, s *session, bin string, st State) (childExit, error) {
	cmd := exec.Command(bin, l.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.Env = childEnv(os.Environ(), st.Current)
	if err := cmd.Start(); err != nil {
		if st.Pending != "" {
			// A binary that cannot even start (wrong format, missing
			// library) is the worst crash of all: count it like one.
			l.Logger.Error("firmware on trial does not start", "binary", bin, "err", err)
			return childExit{code: 127}, nil
		}
		return childExit{startErr: err}, nil
	}
	started := time.Now()
	// Feed the watchdog until the child's own pings can take over.
	s.wd.feed(l.StartupWindow)
	l.Logger.Info("firmware slot started", "slot", st.Current, "version", st.Versions[st.Current],
		"pid", cmd.Process.Pid, "on_trial", st.Pending != "")
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var check <-chan time.Time
	if st.Pending != "" {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		check = t.C
	}
	for {
		select {
		case err := <-exited:
			s.wd.feed(0)
			code, err := exitCode(err)
			return childExit{code: code, ran: time.Since(started)}, err
		case <-ctx.Done():
			s.stopping()
			s.wd.feed(0)
			l.stop(cmd, exited)
			return childExit{stopped: true}, nil
		case <-check:
			now := l.Slots.now()
			if now.Before(st.TrialDeadline.Add(l.Grace)) {
				continue
			}
			cur, err := l.Slots.Status()
			if err == nil && cur.Pending == "" {
				check = nil // committed, or rolled back by the agent itself
				continue
			}
			l.Logger.Error("firmware on trial did not pass its health check in time; stopping it", "slot", st.Current,
				"version", st.Versions[st.Current], "deadline", st.TrialDeadline.UTC().Format(time.RFC3339))
			// A hung child does not feed the watchdog while it is stopped.
			s.wd.feed(0)
			l.stop(cmd, exited)
			if cur, err = l.Slots.Status(); err == nil && cur.Pending != "" {
				reason := fmt.Sprintf("health check not passed by the deadline %s (stopped by the launcher)",
					st.TrialDeadline.UTC().Format(time.RFC3339))
				if err := l.Slots.Rollback(reason); err != nil {
					return childExit{}, fmt.Errorf("launcher: rollback: %w", err)
				}
			}
			return childExit{expired: true}, nil
		}
	}
}

// stop sends SIGTERM, then SIGKILL after StopTimeout, and waits.
func (l *Launcher) stop(cmd *exec.Cmd, exited <-chan error) {
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
		return
	case <-time.After(l.StopTimeout):
	}
	l.Logger.Error("agent did not stop in time; killing it", "pid", cmd.Process.Pid)
	_ = cmd.Process.Kill()
	<-exited
}

func exitCode(err error) (int, error) {
	if err == nil {
		return 0, nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ee.ExitCode(), nil
	}
	return 0, fmt.Errorf("launcher: wait: %w", err)
}

// childEnv passes the environment on, marks the slot, and drops
// WATCHDOG_PID: systemd names the launcher's pid there, and the child (with
// NotifyAccess=all) feeds the watchdog itself.
func childEnv(env []string, slot string) []string {
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if strings.HasPrefix(kv, "WATCHDOG_PID=") || strings.HasPrefix(kv, EnvSlot+"=") {
			continue
		}
		out = append(out, kv)
	}
	return append(out, EnvSlot+"="+slot)
}

// feeder pings the service manager's watchdog on the launcher's behalf
// while no agent can: between children and while a new child starts.
// All methods are no-ops on a nil feeder (no watchdog).
type feeder struct {
	notify func(string) error
	log    *slog.Logger
	every  time.Duration
	kick   chan struct{}

	mu    sync.Mutex
	on    bool
	until time.Time // zero: until stop or the next feed
}

func (f *feeder) run(ctx context.Context) {
	t := time.NewTicker(f.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-f.kick:
		}
		f.ping()
	}
}

// ping feeds the watchdog if feeding is on; under the lock, so no ping
// follows a stop.
func (f *feeder) ping() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.on {
		return
	}
	if !f.until.IsZero() && time.Now().After(f.until) {
		f.on = false
		return
	}
	if err := f.notify(daemon.SdNotifyWatchdog); err != nil {
		f.log.Warn("watchdog ping", "err", err)
	}
}

// feed pings now, then on until stop, the next feed, or d has passed (0:
// no end).
func (f *feeder) feed(d time.Duration) {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.on, f.until = true, time.Time{}
	if d > 0 {
		f.until = time.Now().Add(d)
	}
	f.mu.Unlock()
	select {
	case f.kick <- struct{}{}:
	default: // a ping is due anyway
	}
}

// stop ends feeding; no ping is sent after it returns.
func (f *feeder) stop() {
	if f == nil {
		return
	}
	f.mu.Lock()
	f.on = false
	f.mu.Unlock()
}
