package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/service"
	"github.com/streamqc/streamqc/firmware"
)

func runCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := newFlags("run", "[--config FILE]", "Runs the agent: the streams of its fleet config, events and metrics to MQTT.", os.Stdout, stderr)
	cfgFile := fs.String("config", service.DefaultConfigPath(), "the agent's file")
	logFormat := fs.String("log-format", "text", "text or json log lines on stderr")
	verbose := fs.Bool("v", false, "debug logging")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	if *logFormat != "text" && *logFormat != "json" {
		return fs.fail("--log-format %q: want text or json", *logFormat)
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	var h slog.Handler = slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level})
	if *logFormat == "json" {
		h = slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level})
	}
	logger := slog.New(h)
	slog.SetDefault(logger)
	cfg, err := config.LoadAgent(*cfgFile)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc run: %v\n", err)
		return 2
	}
	runAgent := func(ctx context.Context) error {
		return agent.Run(ctx, agent.Options{Config: cfg, Version: version, Logger: logger, Accel: accelerator()})
	}
	switch {
	case runtime.GOOS == "windows" && !service.Interactive():
		// Started by the Windows service manager: it asks us to stop.
		err = service.RunManaged(service.Options{Config: *cfgFile, Logger: logger}, runAgent)
	case os.Getenv(firmware.EnvSlot) != "":
		// A firmware slot started by the launcher: restarts go through it.
		if err = runAgent(ctx); errors.Is(err, firmware.ErrRestart) {
			return firmware.RestartExitCode
		}
	case runtime.GOOS == "windows":
		err = runAgent(ctx)
	default:
		// The first process of a start (systemd, a terminal): the launcher
		// runs the current firmware slot and watches an update on trial.
		l := &firmware.Launcher{
			Slots:   &firmware.Slots{Dir: filepath.Join(cfg.StateDir, "firmware")},
			Version: version, Args: append([]string{"run"}, args...), InProcess: runAgent, Logger: logger,
			StopTimeout: time.Duration(cfg.StopTimeout) + 10*time.Second,
		}
		if len(cfg.Firmware.TrustedKeys) > 0 {
			// Without keys the launcher verifies no slot and runs this binary.
			if l.Keys, err = firmware.LoadTrusted(cfg.Firmware.TrustedKeys); err != nil {
				logger.Error("trusted firmware keys unreadable: no firmware slot can be verified", "err", err)
			}
		}
		err = l.Run(ctx) // systemd and terminals stop us with SIGTERM / Ctrl-C
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamqc run: %v\n", err)
		return 1
	}
	return 0
}
