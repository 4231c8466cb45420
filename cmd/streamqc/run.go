package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/service"
)

func runCmd(ctx context.Context, args []string, stderr io.Writer) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", service.DefaultConfigPath(), "the agent's file")
	logFormat := fs.String("log-format", "text", "text or json log lines on stderr")
	verbose := fs.Bool("v", false, "debug logging")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: streamqc run [--config FILE]\n\nRuns the agent: the streams of its fleet config, events and metrics to MQTT.\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
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
		return agent.Run(ctx, agent.Options{Config: cfg, Version: version, Logger: logger})
	}
	if runtime.GOOS == "windows" && !service.Interactive() {
		// Started by the Windows service manager: it asks us to stop.
		err = service.RunManaged(service.Options{Config: *cfgFile, Logger: logger}, runAgent)
	} else {
		err = runAgent(ctx) // systemd and terminals stop us with SIGTERM / Ctrl-C
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamqc run: %v\n", err)
		return 1
	}
	return 0
}
