package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/streamqc/streamqc/consumer"
	"github.com/streamqc/streamqc/schema"
)

const fleetUsage = `usage:
  streamqc fleet agents [--fleet F] [--format text|json] [broker flags]
  streamqc fleet config get --agent A [--fleet F] [broker flags]
  streamqc fleet config push FILE (--agent A | --fleet-wide) [--fleet F] [--wait 30s] [broker flags]
`

func fleetCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, fleetUsage)
		return 2
	}
	switch {
	case args[0] == "agents":
		return fleetAgents(ctx, args[1:], stdout, stderr)
	case args[0] == "config" && len(args) > 1 && args[1] == "get":
		return fleetConfigGet(ctx, args[2:], stdout, stderr)
	case args[0] == "config" && len(args) > 1 && args[1] == "push":
		return fleetConfigPush(ctx, args[2:], stdout, stderr)
	}
	fmt.Fprint(stderr, fleetUsage)
	return 2
}

func fleetAgents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet agents", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	format := fs.String("format", "text", "text or json")
	settle := fs.Duration("settle", 500*time.Millisecond, "wait this long after the last retained message")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	c, fleetName, err := bf.connect(ctx, true, quietLogger(false))
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet agents: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	list, err := consumer.Agents(ctx, c, fleetName, *settle)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet agents: %v\n", err)
		return 1
	}
	if *format == "json" {
		enc := json.NewEncoder(stdout)
		for _, a := range list {
			_ = enc.Encode(map[string]any{"fleet": a.Fleet, "agent": a.ID, "status": a.Status, "metrics": a.Metrics, "reported": a.Reported})
		}
		return 0
	}
	consumer.PrintAgents(stdout, list)
	return 0
}

func fleetConfigGet(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet config get", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	agent := fs.String("agent", "", "the agent (required)")
	if err := fs.Parse(args); err != nil {
		return flagExit(err)
	}
	if *agent == "" {
		fmt.Fprintln(stderr, "streamqc fleet config get: --agent is required")
		return 2
	}
	c, fleetName, err := bf.connect(ctx, true, quietLogger(false))
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config get: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	if fleetName == "" {
		fleetName = "default"
	}
	t := schema.NewTopics(fleetName, *agent)
	out := map[string]json.RawMessage{}
	for name, topic := range map[string]string{"desired": t.Desired, "reported": t.Reported, "fleet_desired": t.FleetDesired} {
		p, err := consumer.Retained(ctx, c, topic, time.Second)
		if err != nil {
			fmt.Fprintf(stderr, "streamqc fleet config get: %v\n", err)
			return 1
		}
		if json.Valid(p) {
			out[name] = p
		}
	}
	b, _ := json.MarshalIndent(out, "", "  ")
	fmt.Fprintln(stdout, string(b))
	return 0
}

func fleetConfigPush(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("fleet config push", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	agent := fs.String("agent", "", "the agent whose desired config this is")
	fleetWide := fs.Bool("fleet-wide", false, "push fleet-wide defaults (detectors, publish) instead")
	wait := fs.Duration("wait", 30*time.Second, "wait this long for the agent's verdict")
	file, err := parseInterleaved(fs, args)
	if err != nil {
		return flagExit(err)
	}
	if file == "" || (*agent == "") == !*fleetWide {
		fmt.Fprint(stderr, "streamqc fleet config push: FILE and one of --agent or --fleet-wide are required\n"+fleetUsage)
		return 2
	}
	doc, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config push: %v\n", err)
		return 2
	}
	// Check locally first: a document the agent would refuse never leaves.
	schemas, err := schema.Load()
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config push: %v\n", err)
		return 1
	}
	name := schema.Desired
	if *fleetWide {
		name = schema.FleetDesired
	}
	if err := schemas.Validate(name, doc); err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config push: %s: %v\n", file, err)
		return 2
	}
	c, fleetName, err := bf.connect(ctx, true, quietLogger(false))
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config push: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	if fleetName == "" {
		fleetName = "default"
	}
	wctx, cancel := context.WithTimeout(ctx, *wait)
	defer cancel()
	if *fleetWide {
		if err := consumer.PushFleet(wctx, c, fleetName, doc); err != nil {
			fmt.Fprintf(stderr, "streamqc fleet config push: %v\n", err)
			return 1
		}
		fmt.Fprintf(stdout, "fleet %s: defaults version %d published\n", fleetName, schema.PeekVersion(doc))
		return 0
	}
	v, err := consumer.Push(wctx, c, fleetName, *agent, doc)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config push: %v\n", err)
		return 1
	}
	if v.Status != "accepted" {
		fmt.Fprintf(stdout, "%s/%s: version %d REJECTED: %s (running version %d)\n", fleetName, *agent, v.Version, v.Reason, v.AppliedVersion)
		return 1
	}
	fmt.Fprintf(stdout, "%s/%s: version %d accepted\n", fleetName, *agent, v.Version)
	for _, s := range v.Streams {
		line := fmt.Sprintf("  %-24s %s", s.ID, s.State)
		if s.Error != "" {
			line += "  " + s.Error
		}
		fmt.Fprintln(stdout, line)
	}
	return 0
}

func flagExit(err error) int {
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	return 2
}
