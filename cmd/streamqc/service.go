package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/streamqc/streamqc/agent/service"
)

const serviceUsage = `usage: streamqc service install|uninstall|start|stop|restart|status|unit [flags]

  install     write the service (systemd unit / Windows service), create the
              streamqc user (Linux) and enable it; start it with "start"
  unit        print the systemd unit that install writes (for packages)
  status      print running, stopped or not installed (exit 3 unless running)

streamqc service ACTION --help: the flags.
`

func serviceCmd(_ context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args) {
		return groupUsage(args, serviceUsage, stdout, stderr)
	}
	action := args[0]
	fs := newFlags("service "+action, "[flags]", "", stdout, stderr)
	cfg := fs.String("config", service.DefaultConfigPath(), "the agent file the service runs with")
	exe := fs.String("executable", "", "the streamqc binary the service runs (default: /usr/bin/streamqc for unit, this binary otherwise)")
	user := fs.String("user", "streamqc", "the system user the service runs as (Linux)")
	watchdog := fs.Duration("watchdog", 30*time.Second, "systemd WatchdogSec")
	if code, done := fs.parse(args[1:]); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	o := service.Options{Executable: *exe, Config: *cfg, User: *user, Watchdog: *watchdog, Logger: quietLogger(true)}
	if o.Executable == "" && action != "unit" {
		self, err := os.Executable()
		if err == nil {
			self, err = filepath.EvalSymlinks(self)
		}
		if err != nil {
			fmt.Fprintf(stderr, "streamqc service: %v\n", err)
			return 1
		}
		o.Executable = self
	}
	switch action {
	case "unit":
		u, err := service.Unit(o)
		if err != nil {
			fmt.Fprintf(stderr, "streamqc service unit: %v\n", err)
			return 2
		}
		fmt.Fprint(stdout, u)
		return 0
	case "status":
		st, err := service.Status(o)
		if err != nil {
			fmt.Fprintf(stderr, "streamqc service status: %v\n", err)
			return 1
		}
		fmt.Fprintln(stdout, st)
		if st != "running" {
			return 3 // as systemctl is-active and LSB status say
		}
		return 0
	case "install", "uninstall", "start", "stop", "restart":
		if err := service.Control(o, action); err != nil {
			fmt.Fprintf(stderr, "streamqc service %s: %v\n", action, err)
			return 1
		}
		fmt.Fprintf(stdout, "streamqc service %s: done\n", action)
		return 0
	}
	return groupUsage(args, serviceUsage, stdout, stderr)
}
