package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
)

// TestDashboardSecurity: loopback may go bare; anything else needs TLS and
// a token from a file.
func TestDashboardSecurity(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "token")
	short := filepath.Join(dir, "short")
	if err := os.WriteFile(good, []byte("  0123456789abcdef-xyz\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(short, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		listen, cert, key, auth string
		token, err              string
	}{
		{"127.0.0.1:8090", "", "", "", "", ""},
		{"localhost:0", "", "", "", "", ""},
		{"[::1]:8090", "", "", good, "0123456789abcdef-xyz", ""},
		{":8090", "", "", "", "", "not a loopback address"},
		{"0.0.0.0:8090", "c.pem", "k.pem", "", "", "not a loopback address"},
		{"192.0.2.1:8090", "", "", good, "", "not a loopback address"},
		{"192.0.2.1:8090", "c.pem", "k.pem", good, "0123456789abcdef-xyz", ""},
		{"192.0.2.1:8090", "c.pem", "", good, "", "go together"},
		{"127.0.0.1:8090", "", "", short, "", "at least 16"},
		{"127.0.0.1:8090", "", "", filepath.Join(dir, "absent"), "", "no such file"},
		{"8090", "", "", "", "", "--listen"},
	}
	for _, tc := range tests {
		token, err := dashboardSecurity(tc.listen, tc.cert, tc.key, tc.auth)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.listen, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s %s %s %s: err %v, want %q", tc.listen, tc.cert, tc.key, tc.auth, err, tc.err)
		case token != tc.token:
			t.Errorf("%s: token %q, want %q", tc.listen, token, tc.token)
		}
	}
}

// lineWriter hands the lines written to it to a channel.
type lineWriter struct{ lines chan string }

func (w lineWriter) Write(p []byte) (int, error) {
	for _, l := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		select {
		case w.lines <- l:
		default:
		}
	}
	return len(p), nil
}

// TestDashboardCommand: `streamqc dashboard` serves its page, records
// events as the consumer of record (a StoredDoc per agent, the events in
// its database, kept across a restart), and stops cleanly.
func TestDashboardCommand(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	db := filepath.Join(t.TempDir(), "state", "history.db")
	start := func() (string, func() int) {
		ctx, cancel := context.WithCancel(context.Background())
		out := lineWriter{make(chan string, 16)}
		var errb bytes.Buffer
		code := make(chan int, 1)
		go func() {
			code <- dashboardCmd(ctx, []string{"--broker", b.URL, "--fleet", "f", "--listen", "127.0.0.1:0", "--db", db}, out, &errb)
		}()
		select {
		case l := <-out.lines:
			url, _, ok := strings.Cut(strings.TrimPrefix(l, "streamqc dashboard: "), " ")
			if !ok || !strings.HasPrefix(url, "http://127.0.0.1:") {
				t.Fatalf("first line %q, want the page's URL", l)
			}
			return url, func() int {
				cancel()
				select {
				case c := <-code:
					if c != 0 {
						t.Errorf("exit %d: %s", c, errb.String())
					}
					return c
				case <-time.After(10 * time.Second):
					t.Fatal("the dashboard did not stop within 10 s")
					return -1
				}
			}
		case c := <-code:
			t.Fatalf("exit %d: %s", c, errb.String())
		case <-time.After(15 * time.Second):
			t.Fatal("no URL within 15 s")
		}
		return "", nil
	}
	url, stop := start()
	pub, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "agent-sim"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stored := make(chan string, 16)
	pub.Subscribe("streamqc/v1/f/a/events/stored", 1, func(m mqtt.Message) { stored <- string(m.Payload) })
	pub.Start(ctx)
	defer pub.Close(time.Second)
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 3; i++ {
		ev := fmt.Sprintf(`{"type":"defect","id":"%032x","seq":%d,"fleet":"f","agent":"a","stream":"s","defect":"black","state":"raised","start":1,"time":"2026-12-04T07:00:0%dZ"}`, i, i, i)
		if err := pub.Publish(ctx, mqtt.Message{Topic: "streamqc/v1/f/a/events", Payload: []byte(ev), QoS: 1}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for done := false; !done; {
		select {
		case s := <-stored:
			done = strings.Contains(s, `"seq":3`)
		case <-deadline:
			t.Fatal("no StoredDoc with seq 3 within 10 s")
		}
	}
	get := func(url string) string {
		t.Helper()
		res, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %s %s", url, res.Status, body)
		}
		return string(body)
	}
	if body := get(url); !strings.Contains(body, "streamqc dashboard") {
		t.Errorf("page: %.200s", body)
	}
	if n := strings.Count(get(url+"api/events"), `"type":"defect"`); n != 3 {
		t.Errorf("timeline: %d events, want 3", n)
	}
	stop()
	// Restarted, it has them from its database (and the open alarm).
	url, stop = start()
	defer stop()
	if n := strings.Count(get(url+"api/events?limit=2"), `"type":"defect"`); n != 2 {
		t.Errorf("timeline after a restart: page of %d events, want 2", n)
	}
	if body := get(url + "api/snapshot"); !strings.Contains(body, `"defect":"black"`) {
		t.Errorf("the open alarm is not in the snapshot after a restart: %.300s", body)
	}
}

// TestDashboardNoRecord: without recording, the page follows the broker on
// a clean session and its timeline holds what it saw.
func TestDashboardNoRecord(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	out := lineWriter{make(chan string, 16)}
	var errb bytes.Buffer
	code := make(chan int, 1)
	go func() {
		code <- dashboardCmd(ctx, []string{"--broker", b.URL, "--fleet", "f", "--listen", "127.0.0.1:0", "--no-record"}, out, &errb)
	}()
	var url string
	select {
	case l := <-out.lines:
		url, _, _ = strings.Cut(strings.TrimPrefix(l, "streamqc dashboard: "), " ")
	case c := <-code:
		t.Fatalf("exit %d: %s", c, errb.String())
	case <-time.After(15 * time.Second):
		t.Fatal("no URL within 15 s")
	}
	pub, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "agent-sim"})
	if err != nil {
		t.Fatal(err)
	}
	pub.Start(ctx)
	defer pub.Close(time.Second)
	if err := pub.WaitConnected(ctx); err != nil {
		t.Fatal(err)
	}
	ev := `{"type":"defect","id":"0123456789abcdef0123456789abcdef","seq":1,"fleet":"f","agent":"a","stream":"s","defect":"freeze","state":"raised","start":1,"time":"2026-12-04T07:00:00Z"}`
	if err := pub.Publish(ctx, mqtt.Message{Topic: "streamqc/v1/f/a/events", Payload: []byte(ev), QoS: 1}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(url + "api/events?defect=freeze")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if strings.Contains(string(body), "0123456789abcdef0123456789abcdef") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the event is not in the timeline: %s", body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if c := <-code; c != 0 {
		t.Errorf("exit %d: %s", c, errb.String())
	}
	if c := dashboardCmd(context.Background(), []string{"--no-record", "--db", "x.db"}, io.Discard, io.Discard); c != 2 {
		t.Errorf("--no-record --db: exit %d, want 2", c)
	}
}
