package mqtt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/agent/spool"
)

// tlog sends slog output to t.Log until the test's cleanups run (t.Log after
// the end of a test panics, and paho's goroutines may outlive Close a bit).
type tlog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *tlog) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

func testLogger(t testing.TB) *slog.Logger {
	w := &tlog{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newClient makes a client with fast reconnects, closed at the end of the test.
func newClient(t testing.TB, o Options) *Client {
	t.Helper()
	if o.MaxReconnectInterval == 0 {
		o.MaxReconnectInterval = 200 * time.Millisecond
	}
	if o.ConnectTimeout == 0 {
		o.ConnectTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = testLogger(t).With("who", o.ClientID)
	}
	c, err := New(o)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { c.Close(time.Second) })
	return c
}

func startConnected(t testing.TB, c *Client) {
	t.Helper()
	c.Start(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.WaitConnected(ctx); err != nil {
		t.Fatalf("WaitConnected: %v", err)
	}
}

func eventually(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", timeout, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func receive(t testing.TB, ch <-chan Message, timeout time.Duration) Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(timeout):
		t.Fatalf("no message within %s", timeout)
		return Message{}
	}
}

func quiet(t testing.TB, ch <-chan Message, d time.Duration) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("unexpected message %s %q", m.Topic, m.Payload)
	case <-time.After(d):
	}
}

func TestPublishSubscribe(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.Options{})
	ctx := context.Background()

	got := make(chan Message, 100)
	connects := make(chan struct{}, 10)
	sub := newClient(t, Options{Broker: b.URL, ClientID: "sub",
		OnConnect: func(context.Context, *Client) { connects <- struct{}{} }})
	sub.Subscribe("qc/+/events", 1, func(m Message) { got <- m })
	startConnected(t, sub)
	<-connects
	pub := newClient(t, Options{Broker: b.URL, ClientID: "pub"})
	startConnected(t, pub)

	roundtrip := func(t *testing.T, payload string) {
		t.Helper()
		for _, qos := range []byte{0, 1} {
			p := fmt.Sprintf("%s qos%d", payload, qos)
			if err := pub.Publish(ctx, Message{Topic: "qc/cam1/other", Payload: []byte("not for sub"), QoS: qos}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			if err := pub.Publish(ctx, Message{Topic: "qc/cam1/events", Payload: []byte(p), QoS: qos}); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			m := receive(t, got, 5*time.Second)
			if m.Topic != "qc/cam1/events" || string(m.Payload) != p || m.QoS != qos || m.Retained {
				t.Fatalf("got %+v, want topic qc/cam1/events payload %q qos %d", m, p, qos)
			}
		}
	}
	roundtrip(t, "before restart")

	b.Stop()
	eventually(t, 5*time.Second, "clients see the broker gone", func() bool {
		return !pub.Connected() && !sub.Connected()
	})
	if err := pub.Publish(ctx, Message{Topic: "qc/cam1/events", Payload: []byte("lost"), QoS: 1}); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish while the broker is down: %v, want ErrNotConnected", err)
	}
	b.Start()
	select {
	case <-connects: // sub reconnected, subscription restored (clean session)
	case <-time.After(10 * time.Second):
		t.Fatal("subscriber did not reconnect")
	}
	startConnected(t, pub)
	roundtrip(t, "after restart")
	quiet(t, got, 100*time.Millisecond)
}

// memBox is an in-memory Outbox: Seq n is recs[n-1].
type memBox struct {
	mu     sync.Mutex
	recs   []spool.Record
	acked  int // records 1..acked are acknowledged
	errs   []string
	down   bool // the broker is known down: no Ack allowed
	notify chan struct{}
}

func newMemBox() *memBox { return &memBox{notify: make(chan struct{}, 1)} }

func payload(seq uint64) []byte {
	return fmt.Appendf(nil, `{"id":"ev-%06d","seq":%d,"kind":"freeze"}`, seq, seq)
}

func (b *memBox) add(n int) {
	b.mu.Lock()
	for range n {
		seq := uint64(len(b.recs) + 1)
		b.recs = append(b.recs, spool.Record{Seq: seq, Data: payload(seq)})
	}
	b.mu.Unlock()
	select {
	case b.notify <- struct{}{}:
	default:
	}
}

func (b *memBox) Read(after uint64, limit int, buf []spool.Record) []spool.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := max(int(after), b.acked); i < len(b.recs) && len(buf) < limit; i++ {
		buf = append(buf, b.recs[i])
	}
	return buf
}

func (b *memBox) Ack(seq uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if seq != uint64(b.acked)+1 {
		b.errs = append(b.errs, fmt.Sprintf("ack %d after %d", seq, b.acked))
		return fmt.Errorf("ack %d out of order", seq)
	}
	if b.down {
		b.errs = append(b.errs, fmt.Sprintf("ack %d while the broker is down", seq))
	}
	b.acked = int(seq)
	return nil
}

func (b *memBox) Notify() <-chan struct{} { return b.notify }

func (b *memBox) state() (acked, total int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.acked, len(b.recs)
}

func (b *memBox) setDown(down bool) {
	b.mu.Lock()
	b.down = down
	b.mu.Unlock()
}

// collector records the seq of every event a consumer receives.
type collector struct {
	mu    sync.Mutex
	seqs  []uint64
	errs  []string
	trace []string
}

func (c *collector) handle(m Message) {
	var seq uint64
	_, err := fmt.Sscanf(string(m.Payload), `{"id":"ev-%06d"`, &seq)
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case err != nil:
		c.errs = append(c.errs, fmt.Sprintf("payload %q: %v", m.Payload, err))
	case string(m.Payload) != string(payload(seq)):
		c.errs = append(c.errs, fmt.Sprintf("seq %d: payload %q is not its record's", seq, m.Payload))
	}
	c.seqs = append(c.seqs, seq)
	c.trace = append(c.trace, fmt.Sprintf("%d@%s", seq, time.Now().Format("05.000")))
}

// check verifies that every record 1..n arrived, first arrivals in order.
func (c *collector) check(t *testing.T, n int) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.errs {
		t.Error(e)
	}
	var next uint64 = 1 // the next first arrival expected
	dups := 0
	for _, s := range c.seqs {
		switch {
		case s == next:
			next++
		case s < next:
			dups++
		default:
			t.Fatalf("record %d arrived before record %d (arrivals %v)", s, next, c.trace)
		}
	}
	if next != uint64(n)+1 {
		t.Fatalf("received records 1..%d, want 1..%d", next-1, n)
	}
	t.Logf("%d arrivals for %d records (%d duplicates)", len(c.seqs), n, dups)
}

func (c *collector) distinct() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[uint64]bool{}
	for _, s := range c.seqs {
		seen[s] = true
	}
	return len(seen)
}

func TestDrain(t *testing.T) {
	t.Parallel()
	const n = 500
	b := mqtttest.Start(t, mqtttest.Options{})
	var got collector
	consumer := newClient(t, Options{Broker: b.URL, ClientID: "consumer"})
	consumer.Subscribe("qc/events", 1, got.handle)
	startConnected(t, consumer)

	box := newMemBox()
	box.add(n)
	agent := newClient(t, Options{Broker: b.URL, ClientID: "agent"})
	agent.Start(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan struct{})
	go func() { agent.Drain(ctx, "qc/events", box, 32); close(drained) }()

	eventually(t, 10*time.Second, "all records acked and received", func() bool {
		acked, _ := box.state()
		return acked == n && got.distinct() == n
	})
	got.check(t, n)

	// More records later: Notify wakes the idle Drain.
	box.add(10)
	eventually(t, 5*time.Second, "late records acked and received", func() bool {
		acked, _ := box.state()
		return acked == n+10 && got.distinct() == n+10
	})
	got.check(t, n+10)
	cancel()
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after its context was cancelled")
	}
	if len(box.errs) > 0 {
		t.Fatalf("outbox: %v", box.errs)
	}
}

func TestDrainAcrossBrokerRestart(t *testing.T) {
	t.Parallel()
	const n = 500
	b := mqtttest.Start(t, mqtttest.Options{Persistence: true})
	var got collector
	durable := false
	consumer := newClient(t, Options{Broker: b.URL, ClientID: "durable-consumer", CleanSession: &durable})
	consumer.Subscribe("qc/events", 1, got.handle)
	startConnected(t, consumer)

	box := newMemBox()
	box.add(100)
	produced := make(chan struct{})
	go func() { // the agent keeps producing, broker up or down
		defer close(produced)
		for _, total := box.state(); total < n; _, total = box.state() {
			box.add(5)
			time.Sleep(5 * time.Millisecond)
		}
	}()
	agent := newClient(t, Options{Broker: b.URL, ClientID: "agent"})
	agent.Start(context.Background())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go agent.Drain(ctx, "qc/events", box, 32)

	eventually(t, 10*time.Second, "a third acked", func() bool { acked, _ := box.state(); return acked >= n/3 })
	b.Stop()
	eventually(t, 5*time.Second, "agent sees the broker gone", func() bool { return !agent.Connected() })
	// A PUBACK read just before the broker died may still be in paho's hands.
	time.Sleep(100 * time.Millisecond)
	box.setDown(true)
	ackedDown, _ := box.state()
	time.Sleep(500 * time.Millisecond)
	if acked, _ := box.state(); acked != ackedDown {
		t.Errorf("acked %d -> %d while the broker was down", ackedDown, acked)
	}
	box.setDown(false)
	b.Start()

	<-produced
	eventually(t, 20*time.Second, "all records acked and received", func() bool {
		acked, _ := box.state()
		return acked == n && got.distinct() == n
	})
	t.Logf("acked %d when the broker stopped", ackedDown)
	got.check(t, n)
	box.mu.Lock()
	defer box.mu.Unlock()
	for _, e := range box.errs {
		t.Error(e)
	}
}

// proxy forwards TCP connections to a broker; Close cuts them all, as a
// dead network would (no DISCONNECT).
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t testing.TB, port int) *proxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	t.Cleanup(p.Close)
	target := fmt.Sprintf("127.0.0.1:%d", port)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			u, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(u, c); u.Close(); c.Close() }()
			go func() { _, _ = io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
	return p
}

func (p *proxy) URL() string { return "tcp://" + p.l.Addr().String() }

func (p *proxy) Close() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

func TestWill(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.Options{})
	tests := []struct {
		name     string
		viaProxy bool
		end      func(c *Client, p *proxy)
		wantWill bool
	}{
		{"connection dies: will published", true, func(_ *Client, p *proxy) { p.Close() }, true},
		{"Close: no will", false, func(c *Client, _ *proxy) { c.Close(time.Second) }, false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status := fmt.Sprintf("qc/agent%d/status", i)
			got := make(chan Message, 10)
			watcher := newClient(t, Options{Broker: b.URL, ClientID: fmt.Sprintf("watcher%d", i)})
			watcher.Subscribe(status, 1, func(m Message) { got <- m })
			startConnected(t, watcher)

			broker := b.URL
			var p *proxy
			if tc.viaProxy {
				p = newProxy(t, b.Port)
				broker = p.URL()
			}
			online := make(chan error, 10)
			agent := newClient(t, Options{Broker: broker, ClientID: fmt.Sprintf("agent%d", i),
				Will: &Message{Topic: status, Payload: []byte("offline"), QoS: 1, Retained: true},
				OnConnect: func(ctx context.Context, c *Client) {
					online <- c.Publish(ctx, Message{Topic: status, Payload: []byte("online"), QoS: 1, Retained: true})
				}})
			startConnected(t, agent)
			select {
			case err := <-online:
				if err != nil {
					t.Fatalf("publish online: %v", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("OnConnect did not run")
			}
			if m := receive(t, got, 5*time.Second); string(m.Payload) != "online" {
				t.Fatalf("got %q, want online", m.Payload)
			}

			tc.end(agent, p)
			want := "online"
			if tc.wantWill {
				want = "offline"
				m := receive(t, got, 5*time.Second)
				if string(m.Payload) != "offline" {
					t.Fatalf("got %q, want the will (offline)", m.Payload)
				}
			} else {
				quiet(t, got, time.Second)
			}
			// What a newcomer sees: the retained status.
			late := make(chan Message, 10)
			newcomer := newClient(t, Options{Broker: b.URL, ClientID: fmt.Sprintf("newcomer%d", i)})
			newcomer.Subscribe(status, 1, func(m Message) { late <- m })
			startConnected(t, newcomer)
			if m := receive(t, late, 5*time.Second); string(m.Payload) != want || !m.Retained {
				t.Fatalf("newcomer got %q retained=%v, want %q retained", m.Payload, m.Retained, want)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.Options{TLS: true})
	c := b.Certs
	tests := []struct {
		name          string
		broker        string
		ca, cert, key string
		serverName    string
		wantErr       string // "" for success
	}{
		{name: "client certificate of the CA", ca: c.CA, cert: c.ClientCert, key: c.ClientKey},
		{name: "localhost name", broker: fmt.Sprintf("mqtts://localhost:%d", b.Port), ca: c.CA, cert: c.ClientCert, key: c.ClientKey},
		{name: "rogue certificate", ca: c.CA, cert: c.RogueCert, key: c.RogueKey, wantErr: "TLS"},
		{name: "no certificate", ca: c.CA, wantErr: "TLS"},
		{name: "server not trusted", cert: c.ClientCert, key: c.ClientKey, wantErr: "certificate"},
		{name: "wrong server name", ca: c.CA, cert: c.ClientCert, key: c.ClientKey, serverName: "broker.example.com", wantErr: "broker.example.com"},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			broker := tc.broker
			if broker == "" {
				broker = b.URL
			}
			cl := newClient(t, Options{Broker: broker, ClientID: fmt.Sprintf("tls%d", i),
				CAFile: tc.ca, CertFile: tc.cert, KeyFile: tc.key, ServerName: tc.serverName})
			cl.Start(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err := cl.WaitConnected(ctx)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("WaitConnected: %v", err)
				}
				if err := cl.Publish(ctx, Message{Topic: "qc/tls", Payload: []byte("x"), QoS: 1}); err != nil {
					t.Fatalf("Publish: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("WaitConnected: %v, want an error about %q", err, tc.wantErr)
			}
			t.Logf("refused as expected: %v", err)
		})
	}
}

func TestUserPassword(t *testing.T) {
	t.Parallel()
	b := mqtttest.Start(t, mqtttest.Options{Users: map[string]string{"agent": "s3cret"}})
	tests := []struct {
		name, user, pass string
		ok               bool
	}{
		{"right password", "agent", "s3cret", true},
		{"wrong password", "agent", "guess", false},
		{"unknown user", "mallory", "s3cret", false},
		{"anonymous", "", "", false},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := newClient(t, Options{Broker: b.URL, ClientID: fmt.Sprintf("user%d", i), Username: tc.user, Password: tc.pass})
			c.Start(context.Background())
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			err := c.WaitConnected(ctx)
			switch {
			case tc.ok && err != nil:
				t.Fatalf("WaitConnected: %v", err)
			case !tc.ok && (err == nil || !strings.Contains(strings.ToLower(err.Error()), "not authorized")):
				t.Fatalf("WaitConnected: %v, want not authorized", err)
			}
		})
	}
}

func TestNotConnected(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	// A "broker" that hangs up at once (a closed port could be reused by
	// another test's broker).
	defer l.Close()
	go func() {
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			conn.Close()
		}
	}()
	addr := l.Addr().String()
	c := newClient(t, Options{Broker: "tcp://" + addr, ClientID: "lonely"})
	ctx := context.Background()
	msg := Message{Topic: "qc/x", Payload: []byte("x"), QoS: 1}
	if err := c.Publish(ctx, msg); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish before Start: %v, want ErrNotConnected", err)
	}
	c.Start(ctx)
	time.Sleep(300 * time.Millisecond) // a few failed attempts
	start := time.Now()
	if err := c.Publish(ctx, msg); !errors.Is(err, ErrNotConnected) {
		t.Fatalf("Publish: %v, want ErrNotConnected", err)
	}
	if d := time.Since(start); d > 100*time.Millisecond {
		t.Fatalf("Publish took %s", d)
	}
	wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := c.WaitConnected(wctx); err == nil || !strings.Contains(err.Error(), "connect to tcp://"+addr) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitConnected: %v, want the deadline and the last attempt's error", err)
	}

	// Close ends Drain and WaitConnected, and is idempotent.
	drained := make(chan struct{})
	go func() { c.Drain(ctx, "qc/events", newMemBox(), 8); close(drained) }()
	c.Close(time.Second)
	c.Close(time.Second)
	select {
	case <-drained:
	case <-time.After(5 * time.Second):
		t.Fatal("Drain did not return after Close")
	}
	if err := c.WaitConnected(ctx); !errors.Is(err, ErrClosed) {
		t.Fatalf("WaitConnected after Close: %v", err)
	}
}

func TestNewErrors(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(notPEM, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing-ca.pem")
	durable := false
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"empty broker", Options{}, "broker"},
		{"no scheme", Options{Broker: "localhost:1883"}, "scheme"},
		{"bad scheme", Options{Broker: "http://localhost"}, "unsupported scheme"},
		{"no host", Options{Broker: "tcp://:1883"}, "no host"},
		{"missing CA file", Options{Broker: "ssl://localhost", CAFile: missing}, missing},
		{"CA file without PEM", Options{Broker: "ssl://localhost", CAFile: notPEM}, notPEM},
		{"cert without key", Options{Broker: "mqtts://localhost", CertFile: notPEM}, "KeyFile"},
		{"missing client cert", Options{Broker: "mqtts://localhost", CertFile: missing, KeyFile: missing}, missing},
		{"TLS files with tcp", Options{Broker: "tcp://localhost", CAFile: notPEM}, "not TLS"},
		{"durable without ClientID", Options{Broker: "tcp://localhost", CleanSession: &durable}, "ClientID"},
		{"negative keepalive", Options{Broker: "tcp://localhost", KeepAlive: -time.Second}, "KeepAlive"},
		{"will with wildcard", Options{Broker: "tcp://localhost", Will: &Message{Topic: "qc/+/status"}}, "wildcard"},
		{"credentials in URL", Options{Broker: "tcp://u:p@localhost"}, "Username"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: %v, want an error containing %q", err, tc.want)
			}
		})
	}
	for _, ok := range []string{"tcp://localhost", "mqtt://h:1", "ssl://h", "tls://h:8883", "mqtts://h", "ws://h:8080/mqtt", "wss://h/mqtt"} {
		if _, err := New(Options{Broker: ok}); err != nil {
			t.Errorf("New(%s): %v", ok, err)
		}
	}
}

func TestTopicOK(t *testing.T) {
	for _, tc := range []struct {
		topic string
		ok    bool
	}{
		{"qc/cam1/events", true},
		{"$aws/things/x/shadow/update", true},
		{"/leading/slash", true},
		{"", false},
		{"qc/+/events", false},
		{"qc/#", false},
		{"qc/a\x00b", false},
		{"qc/\xff", false},
	} {
		if err := TopicOK(tc.topic); (err == nil) != tc.ok {
			t.Errorf("TopicOK(%q) = %v, want ok=%v", tc.topic, err, tc.ok)
		}
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		filter, topic string
		want          bool
	}{
		{"a/b", "a/b", true},
		{"a/b", "a/c", false},
		{"a/+", "a/b", true},
		{"a/+", "a/b/c", false},
		{"a/+/c", "a/b/c", true},
		{"a/#", "a", true},
		{"a/#", "a/b/c", true},
		{"#", "a/b", true},
		{"+", "a", true},
		{"+/+", "/a", true},
		{"a/+", "a/", true},
		{"a", "a/b", false},
		{"a/b/c", "a/b", false},
		{"#", "$SYS/x", false},
		{"+/x", "$SYS/x", false},
		{"$SYS/#", "$SYS/x", true},
		{"$share/g/a/+", "a/b", true},
	} {
		if got := match(tc.filter, tc.topic); got != tc.want {
			t.Errorf("match(%q, %q) = %v, want %v", tc.filter, tc.topic, got, tc.want)
		}
	}
	for _, bad := range []string{"", "a/#/b", "a#", "a/b+", "$share/g"} {
		if filterOK(bad) == nil {
			t.Errorf("filterOK(%q) = nil, want an error", bad)
		}
	}
}
