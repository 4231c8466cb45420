package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
)

// cancelAfter is stdout for a consumer that is interrupted after n lines.
type cancelAfter struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	n      int
	cancel context.CancelFunc
}

func (w *cancelAfter) Write(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond) // a slow terminal: events pile up behind it
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if w.n -= bytes.Count(p, []byte("\n")); w.n <= 0 && w.cancel != nil {
		w.cancel()
	}
	return len(p), nil
}

func (w *cancelAfter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

// TestEventsSessionLosesNothing: a durable `streamqc events --session`
// interrupted in the middle of a backlog prints the rest at its next run;
// an event is acknowledged to the broker only once printed.
func TestEventsSessionLosesNothing(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	args := []string{"--broker", b.URL, "--fleet", "f", "--session", "ops", "--format", "json", "--idle", "700ms"}
	run := func(w *cancelAfter) int {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		w.cancel = cancel
		var errb bytes.Buffer
		// Interrupted while still connecting (the backlog arrives at once),
		// it may say it could not finish connecting: that is not a failure.
		if code := eventsCmd(ctx, args, w, &errb); code != 0 && ctx.Err() == nil {
			t.Fatalf("events: exit %d: %s", code, errb.String())
		}
		return strings.Count(w.String(), "\n")
	}
	if n := run(&cancelAfter{n: 1 << 30}); n != 0 {
		t.Fatalf("first run printed %d events", n)
	}
	pub, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "agent-sim"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub.Start(ctx)
	defer pub.Close(time.Second)
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	const total = 300
	for i := 1; i <= total; i++ {
		ev := fmt.Sprintf(`{"type":"defect","id":"%032x","seq":%d,"fleet":"f","agent":"a","stream":"s","defect":"black","state":"raised","start":1,"time":"2026-11-22T07:00:00Z"}`, i, i)
		if err := pub.Publish(ctx, mqtt.Message{Topic: "streamqc/v1/f/a/events", Payload: []byte(ev), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	first := &cancelAfter{n: 40}
	run(first)
	second := &cancelAfter{n: 1 << 30}
	run(second)
	seen := map[string]bool{}
	for _, l := range strings.Split(first.String()+second.String(), "\n") {
		if i := strings.Index(l, `"id":"`); i >= 0 {
			seen[l[i+6:i+38]] = true
		}
	}
	var missing []int
	for i := 1; i <= total; i++ {
		if !seen[fmt.Sprintf("%032x", i)] {
			missing = append(missing, i)
		}
	}
	t.Logf("first %d, second %d", strings.Count(first.String(), "\n"), strings.Count(second.String(), "\n"))
	if len(missing) > 0 {
		t.Fatalf("%d of %d events never printed across an interrupted run: %v", len(missing), total, missing)
	}
	if strings.Count(first.String(), "\n") >= total {
		t.Fatalf("the interrupted run printed everything: the test did not interrupt anything")
	}
}

// TestEventsDropsForeignEvents: `streamqc events` shows an event only on its
// own agent's topic and says how many it dropped.
func TestEventsDropsForeignEvents(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	args := []string{"--broker", b.URL, "--fleet", "f", "--session", "ops", "--format", "json", "--idle", "700ms"}
	run := func() (string, string) {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		var out, errb bytes.Buffer
		if code := eventsCmd(ctx, args, &out, &errb); code != 0 {
			t.Fatalf("events: exit %d: %s", code, errb.String())
		}
		return out.String(), errb.String()
	}
	run() // the durable session exists from now on
	pub, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "agent-sim"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pub.Start(ctx)
	defer pub.Close(time.Second)
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	for i, agent := range []string{"a", "b", "a"} {
		ev := fmt.Sprintf(`{"type":"defect","id":"%032x","seq":%d,"fleet":"f","agent":"%s","stream":"s","defect":"black","state":"raised","start":1,"time":"2026-11-22T07:00:00Z"}`, i, i, agent)
		if err := pub.Publish(ctx, mqtt.Message{Topic: "streamqc/v1/f/a/events", Payload: []byte(ev), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	out, errs := run()
	if n := strings.Count(out, "\n"); n != 2 || strings.Contains(out, `"agent":"b"`) {
		t.Fatalf("printed %d events:\n%s", n, out)
	}
	if !strings.Contains(errs, `streamqc/v1/f/a/events: its payload claims to be from "f"/"b"`) || !strings.Contains(errs, "1 events dropped") {
		t.Fatalf("stderr: %s", errs)
	}
}
