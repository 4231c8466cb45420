package main

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/streamqc/streamqc/agent/fleet"
	"github.com/streamqc/streamqc/consumer"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

const fleetUsage = `usage: streamqc fleet agents [--fleet F] [--format text|json] [broker flags]
       streamqc fleet config get --agent A [--fleet F] [broker flags]
       streamqc fleet config push FILE (--agent A | --fleet-wide) [--fleet F] [--sign KEY] [--wait 30s] [broker flags]
`

func fleetCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
	case args[0] == "agents":
		return fleetAgents(ctx, args[1:], stdout, stderr)
	case args[0] == "config" && len(args) > 1 && args[1] == "get":
		return fleetConfigGet(ctx, args[2:], stdout, stderr)
	case args[0] == "config" && len(args) > 1 && args[1] == "push":
		return fleetConfigPush(ctx, args[2:], stdout, stderr)
	}
	return groupUsage(args, fleetUsage, stdout, stderr)
}

func fleetAgents(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("fleet agents", "[--fleet F] [--format text|json] [broker flags]",
		"Lists the agents of a fleet as the broker retains them: status, version, metrics, streams, config.", stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	format := fs.String("format", "text", "text or json")
	settle := fs.Duration("settle", 500*time.Millisecond, "wait this long after the last retained message")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	if *format != "text" && *format != "json" {
		return fs.fail("--format %q: want text or json", *format)
	}
	c, fleetName, err := bf.connect(ctx, true, quietLogger(false))
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet agents: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	list, err := consumer.Agents(ctx, c, fleetName, *settle, prefixed{stderr, "streamqc fleet agents: "})
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
	fs := newFlags("fleet config get", "--agent A [--fleet F] [broker flags]",
		"Prints an agent's desired config and what it reported of it.", stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	agent := fs.String("agent", "", "the agent (required)")
	if code, done := fs.parse(args); done {
		return code
	}
	if *agent == "" {
		return fs.fail("--agent is required")
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
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
	schemas, err := schema.Load()
	if err != nil {
		fmt.Fprintf(stderr, "streamqc fleet config get: %v\n", err)
		return 1
	}
	t := schema.NewTopics(fleetName, *agent)
	out := map[string]json.RawMessage{}
	for name, topic := range map[string]string{"desired": t.Desired, "reported": t.Reported, "fleet_desired": t.FleetDesired} {
		p, err := consumer.Retained(ctx, c, topic, time.Second)
		if err != nil {
			fmt.Fprintf(stderr, "streamqc fleet config get: %v\n", err)
			return 1
		}
		if schema.IsEnvelope(p) {
			// Show the document inside and who says they signed it (not
			// verified here: the agents hold the trusted keys).
			if e, doc, _, err := schemas.DecodeEnvelope(p); err == nil && json.Valid(doc) {
				sig, _ := json.Marshal(map[string]string{"key_id": e.KeyID, "scope": e.Scope, "fleet": e.Fleet, "agent": e.Agent})
				out[name], out[name+"_signature"] = doc, sig
				continue
			}
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
	fs := newFlags("fleet config push", "FILE (--agent A | --fleet-wide) [--fleet F] [--sign KEY] [--wait 30s] [broker flags]",
		"Checks a desired config document, publishes it (retained) and waits for the agent's verdict.", stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	agent := fs.String("agent", "", "the agent whose desired config this is")
	fleetWide := fs.Bool("fleet-wide", false, "push fleet-wide defaults (detectors, publish) instead")
	wait := fs.Duration("wait", 30*time.Second, "wait this long for the agent's verdict")
	signKey := fs.String("sign", "", "sign the document for its target with this Ed25519 private key (PEM); streamqc firmware keygen makes one; agents with config.trusted_keys want it")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) != 1 || (*agent == "") == !*fleetWide {
		return fs.fail("FILE and one of --agent or --fleet-wide are required")
	}
	file := fs.operands[0]
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
	var priv ed25519.PrivateKey
	if *signKey != "" {
		if priv, err = firmware.LoadPrivateKey(*signKey); err != nil {
			fmt.Fprintf(stderr, "streamqc fleet config push: --sign: %v\n", err)
			return 2
		}
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
	if priv != nil {
		t := fleet.Target{Scope: fleet.ScopeAgent, Fleet: fleetName, Agent: *agent}
		if *fleetWide {
			t = fleet.Target{Scope: fleet.ScopeFleet, Fleet: fleetName}
		}
		if doc, err = fleet.Sign(priv, t, doc); err != nil {
			fmt.Fprintf(stderr, "streamqc fleet config push: %v\n", err)
			return 1
		}
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

// prefixed writes each write to w after a prefix (one line per write).
type prefixed struct {
	w      io.Writer
	prefix string
}

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, p.prefix); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}
