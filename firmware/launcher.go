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
	"syscall"
	"time"
)

// The launcher (issue 6, item 3) is the first streamqc process of every
// start of the service: the binary the package installed, never replaced by
// an update. It runs Boot, then the binary of the current slot as its child
// (or the agent in its own process when no slot is installed), and watches a
// slot on trial from outside: a new version that hangs, never reports
// healthy, or crashes again and again is rolled back by the old, known-good
// launcher, not by trusting the new code to judge itself. Elastic Agent's
// upgrade watcher works the same way.

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

// Launcher runs the agent from the current slot and watches its trial.
type Launcher struct {
	Slots *Slots
	// Version of this (the packaged) binary: a slot older than it is not run
	// once its update is committed, so a package upgrade wins over an older
	// over-the-air version.
	Version string
	// Args are the child's arguments (without the program name).
	Args []string
	// InProcess runs the agent in this process: when no slot is installed,
	// or the current slot is this binary. It returns ErrRestart to have the
	// current slot started again.
	InProcess func(ctx context.Context) error
	// StopTimeout is how long a child has to stop after SIGTERM before it
	// is killed (default 25 s).
	StopTimeout time.Duration
	// Grace is how long after the trial deadline the launcher waits for the
	// child to decide itself before it stops it and rolls back (default 30 s).
	Grace time.Duration
	// RestartDelay separates the starts of a slot on trial that exited
	// (default 2 s, systemd's RestartSec).
	RestartDelay time.Duration
	Logger       *slog.Logger
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
	for ctx.Err() == nil {
		bin, st, err := l.boot(self)
		if err != nil {
			// A broken firmware directory must not keep the box unmonitored:
			// run the packaged agent, say why.
			l.Logger.Error("firmware slots unusable; running the packaged binary", "err", err)
			bin = ""
		}
		if bin == "" {
			err := l.InProcess(ctx)
			if errors.Is(err, ErrRestart) {
				continue
			}
			return err
		}
		code, err := l.child(ctx, bin, st)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil && !errors.Is(err, errTrialExpired):
			return err
		case errors.Is(err, errTrialExpired), code == RestartExitCode:
			continue
		case code == 0:
			return nil // stopped by someone else's SIGTERM: a clean stop
		}
		if st.Pending == "" {
			return fmt.Errorf("launcher: %s exited with status %d", bin, code)
		}
		// On trial: start it again; Boot counts the starts and rolls a crash
		// loop back.
		l.Logger.Error("firmware on trial exited; starting it again", "binary", bin, "status", code)
		select {
		case <-ctx.Done():
		case <-time.After(l.RestartDelay):
		}
	}
	return nil
}

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
	return bin, st, nil
}

// olderThan reports whether version a is older than b (both semantic
// versions; anything else compares as not older).
func olderThan(a, b string) bool {
	va, err1 := ParseVersion(strings.TrimPrefix(a, "v"))
	vb, err2 := ParseVersion(strings.TrimPrefix(b, "v"))
	return err1 == nil && err2 == nil && va.Compare(vb) < 0
}

var errTrialExpired = errors.New("trial deadline passed")

// child runs bin until it exits; on trial it is stopped and rolled back once
// the deadline and the grace period pass without a commit.
func (l *Launcher) child(ctx context.Context, bin string, st State) (int, error) {
	cmd := exec.Command(bin, l.Args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, os.Stdout, os.Stderr
	cmd.Env = childEnv(os.Environ(), st.Current)
	if err := cmd.Start(); err != nil {
		if st.Pending != "" {
			// A binary that cannot even start (wrong format, missing
			// library) is the worst crash of all: count it like one.
			l.Logger.Error("firmware on trial does not start", "binary", bin, "err", err)
			return 127, nil
		}
		return 0, fmt.Errorf("launcher: start %s: %w", bin, err)
	}
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
			return exitCode(err)
		case <-ctx.Done():
			l.stop(cmd, exited)
			return 0, nil
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
			l.stop(cmd, exited)
			if cur, err = l.Slots.Status(); err == nil && cur.Pending != "" {
				reason := fmt.Sprintf("health check not passed by the deadline %s (stopped by the launcher)",
					st.TrialDeadline.UTC().Format(time.RFC3339))
				if err := l.Slots.Rollback(reason); err != nil {
					return 0, fmt.Errorf("launcher: rollback: %w", err)
				}
			}
			return 0, errTrialExpired
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
