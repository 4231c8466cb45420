package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/testdata/clips"
)

// TestFleetCommands drives a running agent with the operator's commands:
// config push (accepted and rejected), config get, fleet agents, events.
func TestFleetCommands(t *testing.T) {
	tr, err := clips.Ensure(context.Background(), "black")
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	cfg := config.DefaultAgent()
	cfg.Fleet, cfg.ID, cfg.StateDir, cfg.MediaDir = "ops", "box9", t.TempDir(), filepath.Dir(tr[0].File)
	cfg.Broker.URL = b.URL
	cfg.MetricsInterval = config.Duration(time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Config: cfg, Version: "v-test", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	dir := t.TempDir()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	conn := []string{"--broker", b.URL, "--fleet", "ops"}
	cmd := func(f func(context.Context, []string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
		var out, errb bytes.Buffer
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code := f(c, append(args, conn...), &out, &errb)
		return code, out.String(), errb.String()
	}
	fleet := func(c context.Context, a []string, o, e *bytes.Buffer) int { return fleetCmd(c, a, o, e) }
	events := func(c context.Context, a []string, o, e *bytes.Buffer) int { return eventsCmd(c, a, o, e) }

	good := write("v1.json", `{"version":1,"publish":{"metrics_interval":1},"streams":[{"id":"cam","url":"black.mkv","loop":true,"realtime":true}]}`)
	code, out, errs := cmd(fleet, "config", "push", good, "--agent", "box9")
	if code != 0 || !strings.Contains(out, "version 1 accepted") || !strings.Contains(out, "cam") {
		t.Fatalf("push v1: %d\n%s%s", code, out, errs)
	}
	bad := write("v2.json", `{"version":2,"streams":[{"id":"cam","url":"pipe:0"}]}`)
	code, out, _ = cmd(fleet, "config", "push", bad, "--agent", "box9")
	if code != 1 || !strings.Contains(out, "REJECTED") || !strings.Contains(out, "not allowed") || !strings.Contains(out, "running version 1") {
		t.Fatalf("push of a hostile URL: %d\n%s", code, out)
	}
	// The same version fixed: the earlier, retained verdict is not this push's.
	fixed := write("v2b.json", `{"version":2,"publish":{"metrics_interval":1},"streams":[{"id":"cam","url":"black.mkv","loop":true,"realtime":true}]}`)
	code, out, _ = cmd(fleet, "config", "push", fixed, "--agent", "box9")
	if code != 0 || !strings.Contains(out, "version 2 accepted") {
		t.Fatalf("push of the fixed version 2 after its rejection: %d\n%s", code, out)
	}
	invalid := write("v3.json", `{"version":3,"streams":[{"id":"cam"}]}`)
	if code, _, errs = cmd(fleet, "config", "push", invalid, "--agent", "box9"); code != 2 || !strings.Contains(errs, "url") {
		t.Fatalf("schema-invalid push was sent: %d %s", code, errs)
	}
	code, out, _ = cmd(fleet, "config", "get", "--agent", "box9")
	if code != 0 || !strings.Contains(out, `"desired"`) || !strings.Contains(out, `"reported"`) || !strings.Contains(out, `"version": 2`) {
		t.Fatalf("config get: %d\n%s", code, out)
	}
	var listing string
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		_, listing, _ = cmd(fleet, "agents")
		if strings.Contains(listing, "1/1") {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !strings.Contains(listing, "box9") || !strings.Contains(listing, "online") || !strings.Contains(listing, "v-test") ||
		!strings.Contains(listing, "1/1") || !strings.Contains(listing, "v2") {
		t.Fatalf("fleet agents:\n%s", listing)
	}
	// The clip plays in real time: black from 4 s to 7 s, raised after 2 s.
	var eo, ee bytes.Buffer
	ectx, ecancel := context.WithTimeout(context.Background(), 10*time.Second)
	code = eventsCmd(ectx, append([]string{"--agent", "box9", "--follow"}, conn...), &eo, &ee)
	ecancel()
	out, errs = eo.String(), ee.String()
	if code != 0 || !strings.Contains(out, "ops/box9/cam") || !strings.Contains(out, "RAISED  black") {
		t.Fatalf("events: %d\n%s%s", code, out, errs)
	}
	code, _, errs = cmd(events, "--format", "xml")
	if code != 2 || !strings.Contains(errs, "text or json") {
		t.Fatalf("events --format xml: %d %s", code, errs)
	}
	var o, e bytes.Buffer
	c, cc := context.WithTimeout(context.Background(), 5*time.Second)
	defer cc()
	if code := eventsCmd(c, []string{"--broker", fmt.Sprintf("tcp://127.0.0.1:%d", freePort(t)), "--connect-timeout", "1s"}, &o, &e); code != 1 || !strings.Contains(e.String(), "broker") {
		t.Fatalf("unreachable broker: %d %s", code, e.String())
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestFleetConfigPushSigned: `fleet config push --sign KEY` is what an agent
// with config.trusted_keys applies; the same document unsigned is refused
// with the reason, and so is one signed with another key.
func TestFleetConfigPushSigned(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	dir := t.TempDir()
	key, pub := filepath.Join(dir, "ops.key"), filepath.Join(dir, "ops.pub")
	other := filepath.Join(dir, "other.key")
	if err := firmware.GenerateKey(key, pub); err != nil {
		t.Fatal(err)
	}
	if err := firmware.GenerateKey(other, filepath.Join(dir, "other.pub")); err != nil {
		t.Fatal(err)
	}
	cfg := config.DefaultAgent()
	cfg.Fleet, cfg.ID, cfg.StateDir = "ops", "box9", t.TempDir()
	cfg.Broker.URL = b.URL
	cfg.Config.TrustedKeys = []string{pub}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agent.Run(ctx, agent.Options{Config: cfg, Version: "v-test", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	write := func(name, doc string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	push := func(args ...string) (int, string) {
		var out, errb bytes.Buffer
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		code := fleetCmd(c, append(append([]string{"config", "push"}, args...), "--broker", b.URL, "--fleet", "ops"), &out, &errb)
		return code, out.String() + errb.String()
	}
	v1 := write("v1.json", `{"version":1,"streams":[]}`)
	if code, out := push(v1, "--agent", "box9"); code != 1 || !strings.Contains(out, "version 1 REJECTED: unsigned document refused") {
		t.Fatalf("unsigned push: %d %s", code, out)
	}
	if code, out := push(v1, "--agent", "box9", "--sign", other); code != 1 || !strings.Contains(out, "not in config.trusted_keys") {
		t.Fatalf("push signed with another key: %d %s", code, out)
	}
	if code, out := push(v1, "--agent", "box9", "--sign", key); code != 0 || !strings.Contains(out, "version 1 accepted") {
		t.Fatalf("signed push: %d %s", code, out)
	}
	fleetDoc := write("fleet.json", `{"version":4,"detectors":{"black":{"min_duration":3}}}`)
	if code, out := push(fleetDoc, "--fleet-wide", "--sign", key); code != 0 || !strings.Contains(out, "defaults version 4 published") {
		t.Fatalf("signed fleet push: %d %s", code, out)
	}
	if code, out := push(v1, "--agent", "box9", "--sign", filepath.Join(dir, "none.key")); code != 2 || !strings.Contains(out, "--sign") {
		t.Fatalf("push with a missing key: %d %s", code, out)
	}
	var out, errb bytes.Buffer
	gctx, gcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer gcancel()
	if code := fleetCmd(gctx, []string{"config", "get", "--agent", "box9", "--broker", b.URL, "--fleet", "ops"}, &out, &errb); code != 0 ||
		!strings.Contains(out.String(), `"desired": {`) || !strings.Contains(out.String(), `"version": 1`) ||
		!strings.Contains(out.String(), `"desired_signature": {`) || !strings.Contains(out.String(), `"fleet_desired_signature": {`) {
		t.Fatalf("config get of signed documents: %d\n%s%s", code, &out, &errb)
	}
}
