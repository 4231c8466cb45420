// Package service installs and runs streamqc as a system service: a
// hardened systemd unit of our own on Linux, a Windows service with recovery
// actions and an Event Log source, through kardianos/service. It wraps the
// agent's run function and stays free of cgo, so that `GOOS=windows go vet`
// covers it.
package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/kardianos/service"
)

// Name of the service everywhere.
const Name = "streamqc"

// Options of the service.
type Options struct {
	// Executable is the streamqc binary the service runs (default
	// /usr/bin/streamqc on Linux, the running binary elsewhere).
	Executable string
	// Config is the agent file (default /etc/streamqc/agent.yaml, on Windows
	// %ProgramData%\streamqc\agent.yaml).
	Config string
	// User runs the service on Linux (default streamqc).
	User string
	// Watchdog is systemd's WatchdogSec: the agent pings it only while its
	// pipelines make progress (default 30 s).
	Watchdog time.Duration
	// StopTimeout bounds Stop on Windows.
	StopTimeout time.Duration
	Logger      *slog.Logger
}

func (o Options) withDefaults() Options {
	if o.Executable == "" {
		o.Executable = "/usr/bin/streamqc"
	}
	if o.Config == "" {
		o.Config = DefaultConfigPath()
	}
	if o.User == "" {
		o.User = "streamqc"
	}
	if o.Watchdog <= 0 {
		o.Watchdog = 30 * time.Second
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// DefaultConfigPath is where the agent file lives on this system.
func DefaultConfigPath() string {
	if runtime.GOOS == "windows" {
		return `C:\ProgramData\streamqc\agent.yaml`
	}
	return "/etc/streamqc/agent.yaml"
}

// config is kardianos' view of the service.
func (o Options) config() (*service.Config, error) {
	o = o.withDefaults()
	c := &service.Config{
		Name:        Name,
		DisplayName: "streamqc monitoring agent",
		Description: "Watches live audio/video streams and reports defects to MQTT.",
		Executable:  o.Executable,
		Arguments:   []string{"run", "--config", o.Config},
		Option: service.KeyValue{
			// Windows: restart after a failure (the library sets no recovery
			// action unless asked), start after the network is up.
			"OnFailure":              "restart",
			"OnFailureDelayDuration": "5s",
			"OnFailureResetPeriod":   86400,
			"DelayedAutoStart":       true,
		},
	}
	if runtime.GOOS == "linux" {
		unit, err := Unit(o)
		if err != nil {
			return nil, err
		}
		c.Option["SystemdScript"] = unit
	}
	return c, nil
}

// program adapts the agent's run function to kardianos' Start/Stop.
type program struct {
	run     func(ctx context.Context) error
	cancel  context.CancelFunc
	done    chan error
	timeout time.Duration
	log     *slog.Logger
}

func (p *program) Start(service.Service) error {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan error, 1)
	go func() { p.done <- p.run(ctx) }()
	return nil
}

func (p *program) Stop(service.Service) error {
	p.cancel()
	select {
	case err := <-p.done:
		return err
	case <-time.After(p.timeout):
		return fmt.Errorf("agent did not stop within %s", p.timeout)
	}
}

// Interactive reports whether the process runs from a terminal or script
// rather than under a service manager that speaks kardianos' protocol
// (Windows SCM).
func Interactive() bool { return service.Interactive() }

// RunManaged runs run under the service manager (Windows SCM) until it asks
// the service to stop.
func RunManaged(o Options, run func(ctx context.Context) error) error {
	o = o.withDefaults()
	c, err := o.config()
	if err != nil {
		return err
	}
	p := &program{run: run, timeout: o.StopTimeout, log: o.Logger}
	s, err := service.New(p, c)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	return s.Run()
}

// Control runs one of install, uninstall, start, stop, restart.
func Control(o Options, action string) error {
	o = o.withDefaults()
	c, err := o.config()
	if err != nil {
		return err
	}
	s, err := service.New(&program{}, c)
	if err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if action == "install" && runtime.GOOS == "linux" {
		if err := ensureUser(o.User, o.Logger); err != nil {
			return err
		}
	}
	if err := service.Control(s, action); err != nil {
		return fmt.Errorf("service %s: %w", action, err)
	}
	return nil
}

// Status says whether the service is installed and running.
func Status(o Options) (string, error) {
	c, err := o.config()
	if err != nil {
		return "", err
	}
	s, err := service.New(&program{}, c)
	if err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	st, err := s.Status()
	switch {
	case errors.Is(err, service.ErrNotInstalled):
		return "not installed", nil
	case err != nil && runtime.GOOS == "linux" && !linuxInstalled():
		// No service manager answers (no systemd running, a container),
		// and nothing was installed for one: say so rather than its error.
		return "not installed", nil
	case err != nil:
		return "", fmt.Errorf("service status: %w", err)
	case st == service.StatusRunning:
		return "running", nil
	case st == service.StatusStopped:
		return "stopped", nil
	}
	return "unknown", nil
}

// ensureUser creates the system user the unit runs as, in the groups that
// own the GPU and VAAPI devices, unless it exists (the .deb's postinst does
// the same).
func ensureUser(user string, log *slog.Logger) error {
	if exec.Command("getent", "passwd", user).Run() == nil {
		return nil
	}
	out, err := exec.Command("useradd", "--system", "--user-group", "--home-dir", "/var/lib/streamqc",
		"--no-create-home", "--shell", "/usr/sbin/nologin", user).CombinedOutput()
	if err != nil {
		return fmt.Errorf("create user %s: %w: %s", user, err, strings.TrimSpace(string(out)))
	}
	for _, g := range []string{"video", "render"} {
		if exec.Command("getent", "group", g).Run() != nil {
			continue
		}
		if out, err := exec.Command("usermod", "-aG", g, user).CombinedOutput(); err != nil {
			log.Warn("user not added to group", "user", user, "group", g, "err", err, "out", strings.TrimSpace(string(out)))
		}
	}
	log.Info("created system user", "user", user)
	return nil
}

// linuxInstalled reports whether a unit or init script of the service exists.
func linuxInstalled() bool {
	for _, p := range []string{"/etc/systemd/system/", "/lib/systemd/system/", "/usr/lib/systemd/system/", "/run/systemd/system/"} {
		if _, err := os.Stat(p + Name + ".service"); err == nil {
			return true
		}
	}
	_, err := os.Stat("/etc/init.d/" + Name)
	return err == nil
}
