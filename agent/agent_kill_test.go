package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtttest"
)

// childAgent runs the agent in a child process of the test binary, so the
// test can kill it with SIGKILL.
func childAgent() int {
	b, err := os.ReadFile(os.Getenv("STREAMQC_AGENT_CHILD"))
	if err != nil {
		return 3
	}
	var c config.Agent
	if err := json.Unmarshal(b, &c); err != nil {
		return 3
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	if err := Run(ctx, Options{Config: c, Version: "child", Logger: slog.New(slog.NewTextHandler(os.Stderr, nil))}); err != nil {
		return 1
	}
	return 0
}

func TestKill9LosesNothing(t *testing.T) {
	if testing.Short() {
		t.Skip("kill -9 test runs a child agent: skipped with -short")
	}
	media := clipDir(t, "black", "silence")
	b := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	w := watch(t, b, "durable-consumer-kill")
	c := agentConfig(t, b, media)
	c.Streams = []config.Stream{
		{ID: "a", URL: "black.mkv", Loop: true},
		{ID: "s", URL: "silence.mkv", Loop: true},
	}
	cfgFile := filepath.Join(t.TempDir(), "agent.json")
	raw, _ := json.Marshal(c)
	if err := os.WriteFile(cfgFile, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	start := func() *exec.Cmd {
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "STREAMQC_AGENT_CHILD="+cfgFile)
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		return cmd
	}
	defer func() {
		if t.Failed() {
			t.Log(logs.String())
		}
	}()
	child := start()
	w.waitFor("events from the first agent", 30*time.Second, func() bool { return len(w.eventList()) >= 6 })
	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	w.waitFor("the will (offline, connection lost)", 10*time.Second, func() bool {
		s := string(w.last("status"))
		return strings.Contains(s, `"offline"`) && strings.Contains(s, "connection lost")
	})
	child = start()
	n := len(w.eventList())
	w.waitFor("events from the restarted agent", 30*time.Second, func() bool { return len(w.eventList()) >= n+4 })
	if err := child.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := child.Wait(); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	st := spoolStats(t, c)
	w.waitFor("every event", 15*time.Second, func() bool {
		return uint64(len(firstArrivals(w.eventList()))) >= st.NextSeq-1
	})
	checkComplete(t, firstArrivals(w.eventList()), st.NextSeq-1)
	checkEventsAfterCrash(t, w.eventList(), true) // alarms raised before the kill were cleared by the restart
	t.Logf("%d events across a kill -9, %d deliveries", st.NextSeq-1, len(w.eventList()))
}
