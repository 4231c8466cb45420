package agent

import (
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/agent/supervisor"
)

func TestWedged(t *testing.T) {
	t0 := time.Now()
	last := map[string]seen{}
	run := func(id string, n int64, st supervisor.State, stalled bool) supervisor.Status {
		return supervisor.Status{ID: id, Frames: n, State: st, Stalled: stalled}
	}
	steps := []struct {
		at   time.Duration
		list []supervisor.Status
		want []string
	}{
		{0, []supervisor.Status{run("flowing", 10, "running", false), run("stuck", 5, "running", false), run("lost", 5, "running", true), run("retry", 0, "retrying", false)}, nil},
		{10 * time.Second, []supervisor.Status{run("flowing", 300, "running", false), run("stuck", 5, "running", false), run("lost", 5, "running", true), run("retry", 0, "retrying", false)}, nil},
		{25 * time.Second, []supervisor.Status{run("flowing", 700, "running", false), run("stuck", 5, "running", false), run("lost", 5, "running", true), run("retry", 0, "retrying", false)}, []string{"stuck"}},
		{26 * time.Second, []supervisor.Status{run("flowing", 720, "running", false), run("stuck", 6, "running", false), run("lost", 5, "running", false), run("retry", 0, "retrying", false)}, nil},
	}
	for i, s := range steps {
		if got := wedged(last, s.list, t0.Add(s.at)); !slices.Equal(got, s.want) {
			t.Errorf("step %d: wedged %v, want %v", i, got, s.want)
		}
	}
}

// TestSystemdNotify: under systemd (Type=notify, WatchdogSec) the agent says
// READY=1 once its streams run, pings the watchdog while they progress, and
// says STOPPING=1 on the way out.
func TestSystemdNotify(t *testing.T) {
	media := clipDir(t, "black")
	b := mqtttest.Start(t, mqtttest.Options{}) // before NOTIFY_SOCKET: Mosquitto speaks sd_notify too
	sock := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "600000") // pings every 200 ms
	t.Setenv("WATCHDOG_PID", strconv.Itoa(os.Getpid()))
	c := agentConfig(t, b, media)
	c.Streams = []config.Stream{{ID: "a", URL: "black.mkv", Loop: true, Realtime: true}}
	a := startAgent(t, c)
	got := map[string]int{}
	buf := make([]byte, 256)
	deadline := time.Now().Add(10 * time.Second)
	for got["WATCHDOG=1"] < 3 && time.Now().Before(deadline) {
		_ = conn.SetReadDeadline(deadline)
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		got[string(buf[:n])]++
	}
	if got["READY=1"] != 1 || got["WATCHDOG=1"] < 3 {
		t.Fatalf("notifications %v, want READY=1 once and watchdog pings", got)
	}
	a.stop(t)
	_ = conn.SetReadDeadline(time.Now().Add(2 * time.Second))
	stopping := false
	for !stopping {
		n, err := conn.Read(buf)
		if err != nil {
			break
		}
		stopping = string(buf[:n]) == "STOPPING=1"
	}
	if !stopping {
		t.Error("no STOPPING=1")
	}
}
