package mqtt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

var (
	// ErrNotConnected: the client has no connection to the broker now;
	// nothing was sent.
	ErrNotConnected = errors.New("mqtt: not connected")
	// ErrConnectionLost: the connection was lost before the broker
	// acknowledged; the message may or may not have arrived.
	ErrConnectionLost = errors.New("mqtt: connection lost before the broker acknowledged")
	// ErrClosed: Close was called.
	ErrClosed = errors.New("mqtt: client closed")
)

// subBuffer is the number of messages each subscription buffers ahead of
// its handler before paho's router waits.
const subBuffer = 1024

// Client is an MQTT session that reconnects by itself. Its methods are safe
// for concurrent use.
type Client struct {
	o      Options
	broker string // URL, for logs and errors
	pc     paho.Client
	log    *slog.Logger
	maxGap time.Duration // cap of the reconnect backoff

	closing   chan struct{} // closed by Close
	closeOnce sync.Once

	mu        sync.Mutex
	started   bool
	closed    bool
	runDone   chan struct{} // closed when the connect loop returns
	cur       *conn         // the current connection; nil between connections
	lostEarly bool          // paho reported a loss before cur was installed
	changed   chan struct{} // closed (and replaced) whenever cur or cur.ready changes
	lastErr   error         // why the last connection failed or was lost
	subList   []*subscription

	subs atomic.Pointer[[]*subscription] // copy of subList for the router
}

// conn is one connection: lost is closed when paho reports it gone (before
// the next connect starts) or on Close.
type conn struct {
	lost   chan struct{}
	ctx    context.Context // for OnConnect; cancelled with lost
	cancel context.CancelFunc
	up     time.Time
	ready  bool // subscriptions made; guarded by Client.mu
	dead   bool // lost is closed; guarded by Client.mu
	// calls counts the paho Publish calls in progress on this connection.
	// paho hands a publish that is still waiting for its writer when the
	// connection dies to the next connection's writer, ahead of everything
	// else: the next connection must not start before they have returned
	// (within the write timeout).
	calls sync.WaitGroup
}

type subscription struct {
	filter string
	qos    byte
	h      func(Message)
	ch     chan Message
}

// New checks o, loads its TLS files and returns a client that is not
// connected yet (see Start).
func New(o Options) (*Client, error) {
	u, secure, err := brokerURL(o.Broker)
	if err != nil {
		return nil, fmt.Errorf("mqtt options: %w", err)
	}
	clean := o.CleanSession == nil || *o.CleanSession
	if !clean && o.ClientID == "" {
		return nil, errors.New("mqtt options: CleanSession false needs a fixed ClientID")
	}
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"KeepAlive", &o.KeepAlive, defaultKeepAlive},
		{"ConnectTimeout", &o.ConnectTimeout, defaultConnectTimeout},
		{"MaxReconnectInterval", &o.MaxReconnectInterval, defaultMaxReconnect},
	} {
		switch {
		case *d.v < 0:
			return nil, fmt.Errorf("mqtt options: %s %s is negative", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	if o.KeepAlive < time.Second {
		return nil, fmt.Errorf("mqtt options: KeepAlive %s is under 1s", o.KeepAlive)
	}
	if o.Will != nil {
		if err := TopicOK(o.Will.Topic); err != nil {
			return nil, fmt.Errorf("mqtt options: Will: %w", err)
		}
		if o.Will.QoS > 2 {
			return nil, fmt.Errorf("mqtt options: Will QoS %d, want 0, 1 or 2", o.Will.QoS)
		}
	}
	if !secure && (o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" || o.ServerName != "") {
		return nil, fmt.Errorf("mqtt options: CAFile/CertFile/KeyFile/ServerName given but broker %s is not TLS (use ssl://, mqtts:// or wss://)", u)
	}

	logger := o.Logger
	if logger == nil {
		logger = slog.Default()
	}
	c := &Client{
		o:       o,
		broker:  u.String(),
		log:     logger.With("broker", u.String(), "client_id", o.ClientID),
		maxGap:  o.MaxReconnectInterval,
		closing: make(chan struct{}),
		changed: make(chan struct{}),
	}

	po := paho.NewClientOptions()
	po.AddBroker(u.String())
	po.SetClientID(o.ClientID)
	po.SetUsername(o.Username)
	po.SetPassword(o.Password)
	po.SetCleanSession(clean)
	po.SetProtocolVersion(4) // no silent fallback to 3.1 after a refused CONNECT
	po.SetKeepAlive(o.KeepAlive)
	po.SetConnectTimeout(o.ConnectTimeout)
	po.SetWriteTimeout(writeTimeout)
	po.SetMaxReconnectInterval(o.MaxReconnectInterval)
	// Reconnection is ours (see the package doc), and so are subscriptions.
	po.SetAutoReconnect(false)
	po.SetConnectRetry(false)
	po.SetResumeSubs(false)
	po.SetOrderMatters(true)
	po.SetAutoAckDisabled(o.AckAfterHandlers)
	// A durable session's resent publishes go out in their original order.
	po.SetStore(paho.NewOrderedMemoryStore())
	// Every message goes through our router, never paho's routes: queued
	// messages of a durable session can arrive before the SUBSCRIBEs.
	po.SetDefaultPublishHandler(c.route)
	po.SetConnectionLostHandler(c.onLost)
	po.SetCustomOpenConnectionFn(openConn)
	if secure {
		cfg, err := tlsConfig(&o)
		if err != nil {
			return nil, fmt.Errorf("mqtt options: %w", err)
		}
		po.SetTLSConfig(cfg)
	}
	if w := o.Will; w != nil {
		po.SetBinaryWill(w.Topic, w.Payload, w.QoS, w.Retained)
	}
	c.pc = paho.NewClient(po)
	return c, nil
}

// Start connects in the background and reconnects after every loss until
// Close; it never blocks. ctx is the parent of the contexts given to
// OnConnect; once it is done no new connection is attempted (call Close to
// disconnect). Calls after the first do nothing.
func (c *Client) Start(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closed {
		return
	}
	c.started = true
	c.runDone = make(chan struct{})
	go c.run(ctx, c.runDone)
}

// run is the connect loop.
func (c *Client) run(ctx context.Context, done chan struct{}) {
	defer close(done)
	var backoff, delay time.Duration
	failures := 0
	for {
		if delay > 0 {
			t := time.NewTimer(delay)
			select {
			case <-t.C:
			case <-ctx.Done():
			case <-c.closing:
			}
			t.Stop()
		}
		if ctx.Err() != nil {
			return
		}
		c.mu.Lock()
		if c.closed {
			c.mu.Unlock()
			return
		}
		// Under mu so that Close cannot slip between its check and Connect.
		tok := c.pc.Connect()
		c.mu.Unlock()
		select {
		case <-tok.Done():
		case <-c.closing:
			return // Close's Disconnect waits for the attempt to end
		}
		if err := tok.Error(); err != nil {
			failures++
			err = fmt.Errorf("connect to %s: %w", c.broker, err)
			c.mu.Lock()
			c.lastErr = err
			c.mu.Unlock()
			backoff = c.nextBackoff(backoff)
			delay = jitter(backoff)
			c.log.Warn("mqtt connect failed", "err", err, "attempt", failures, "retry_in", delay.Round(time.Millisecond))
			continue
		}
		failures = 0
		sessionPresent := false
		if ct, ok := tok.(*paho.ConnectToken); ok {
			sessionPresent = ct.SessionPresent()
		}
		cn := c.install(ctx)
		if cn == nil {
			return
		}
		c.log.Info("mqtt connected", "session_present", sessionPresent)
		c.setup(cn)
		select {
		case <-cn.lost:
		case <-c.closing:
			return
		}
		cn.calls.Wait()
		if time.Since(cn.up) >= c.maxGap {
			// It was a stable connection: try again at once (spread a little
			// so that a fleet does not hit a restarted broker together).
			backoff = 0
			delay = time.Duration(rand.Int64N(int64(min(time.Second, c.maxGap))))
		} else {
			// Lost soon after connecting (e.g. another client with our
			// ClientID): back off as after a failure.
			backoff = c.nextBackoff(backoff)
			delay = jitter(backoff)
		}
	}
}

func (c *Client) nextBackoff(d time.Duration) time.Duration {
	if d <= 0 {
		return min(time.Second, c.maxGap)
	}
	return min(2*d, c.maxGap)
}

// jitter takes up to a fifth off d.
func jitter(d time.Duration) time.Duration {
	return d - time.Duration(rand.Int64N(int64(d/5)+1))
}

// install makes a new connection current; nil if the client was closed.
func (c *Client) install(ctx context.Context) *conn {
	cctx, cancel := context.WithCancel(ctx)
	cn := &conn{lost: make(chan struct{}), ctx: cctx, cancel: cancel, up: time.Now()}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		cancel()
		return nil
	}
	if c.lostEarly { // paho's loss handler ran before us
		c.lostEarly = false
		cn.dead = true
		close(cn.lost)
		cancel()
		return cn
	}
	c.cur = cn
	c.broadcast()
	return cn
}

// setup subscribes, marks the connection ready and runs OnConnect.
func (c *Client) setup(cn *conn) {
	c.mu.Lock()
	subs := slices.Clone(c.subList)
	c.mu.Unlock()
	c.subscribe(cn, subs)
	c.mu.Lock()
	ready := c.cur == cn
	if ready {
		cn.ready = true
		c.broadcast()
	}
	c.mu.Unlock()
	if ready && c.o.OnConnect != nil {
		go c.o.OnConnect(cn.ctx, c)
	}
}

// subscribe sends the SUBSCRIBEs of subs on cn and waits for their SUBACKs.
// Failures are logged: the subscription is tried again on the next connection.
func (c *Client) subscribe(cn *conn, subs []*subscription) {
	if len(subs) == 0 {
		return
	}
	toks := make([]paho.Token, len(subs))
	for i, s := range subs {
		toks[i] = c.pc.Subscribe(s.filter, s.qos, nil) // nil: no paho route, c.route gets everything
	}
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()
	for i, tok := range toks {
		s := subs[i]
		select {
		case <-tok.Done():
		case <-cn.lost:
			return
		case <-c.closing:
			return
		case <-timer.C:
			c.log.Error("mqtt subscribe: no SUBACK", "filter", s.filter, "timeout", publishTimeout)
			return
		}
		if err := tok.Error(); err != nil {
			c.log.Error("mqtt subscribe failed", "filter", s.filter, "err", err)
			continue
		}
		if st, ok := tok.(*paho.SubscribeToken); ok {
			if rc, ok := st.Result()[s.filter]; ok && rc > 2 {
				c.log.Error("mqtt subscribe refused by the broker (not authorized?)", "filter", s.filter, "code", rc)
				continue
			}
		}
		c.log.Debug("mqtt subscribed", "filter", s.filter, "qos", s.qos)
	}
}

// onLost is paho's connection-lost handler (run in a goroutine of its own,
// before we connect again).
func (c *Client) onLost(_ paho.Client, err error) {
	c.mu.Lock()
	c.lastErr = fmt.Errorf("connection to %s lost: %w", c.broker, err)
	if c.cur != nil {
		c.markLost(c.cur)
	} else if !c.closed {
		c.lostEarly = true
	}
	c.mu.Unlock()
	c.log.Warn("mqtt connection lost", "err", err)
}

// markLost ends cn; c.mu must be held.
func (c *Client) markLost(cn *conn) {
	cn.dead = true
	close(cn.lost)
	cn.cancel()
	if c.cur == cn {
		c.cur = nil
	}
	c.broadcast()
}

// broadcast wakes the waiters on c.changed; c.mu must be held.
func (c *Client) broadcast() {
	close(c.changed)
	c.changed = make(chan struct{})
}

// publish calls paho's Publish unless cn is gone (nil then); see conn.calls.
func (c *Client) publish(cn *conn, topic string, qos byte, retained bool, payload []byte) paho.Token {
	c.mu.Lock()
	if cn.dead {
		c.mu.Unlock()
		return nil
	}
	cn.calls.Add(1)
	c.mu.Unlock()
	defer cn.calls.Done()
	return c.pc.Publish(topic, qos, retained, payload)
}

// current returns the connection if it is ready, else nil.
func (c *Client) current() *conn {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != nil && c.cur.ready {
		return c.cur
	}
	return nil
}

// waitReady waits for a ready connection; nil when ctx is done or the
// client closed.
func (c *Client) waitReady(ctx context.Context) *conn {
	for {
		c.mu.Lock()
		cn, closed, changed := c.cur, c.closed, c.changed
		ready := cn != nil && cn.ready
		c.mu.Unlock()
		if closed {
			return nil
		}
		if ready {
			return cn
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return nil
		}
	}
}

// Connected reports whether the client is connected now, subscriptions
// made. It may change at any moment.
func (c *Client) Connected() bool { return c.current() != nil }

// WaitConnected waits until the client is connected (subscriptions made)
// or ctx is done. Its error then says why the last attempt failed (TLS
// handshake, not authorized, refused...). For command-line tools; the
// agent does not wait.
func (c *Client) WaitConnected(ctx context.Context) error {
	if c.waitReady(ctx) != nil {
		return nil
	}
	c.mu.Lock()
	closed, started, last := c.closed, c.started, c.lastErr
	c.mu.Unlock()
	switch {
	case closed:
		return ErrClosed
	case last != nil:
		return fmt.Errorf("mqtt: not connected (%w): %w", ctx.Err(), last)
	case !started:
		return fmt.Errorf("mqtt: not connected to %s (Start not called): %w", c.broker, ctx.Err())
	default:
		return fmt.Errorf("mqtt: not connected to %s yet: %w", c.broker, ctx.Err())
	}
}

// Subscribe adds a subscription, made now if connected and again on every
// connection. h runs on a goroutine of this subscription, one message at a
// time in arrival order; see the package doc for what happens when it is
// slower than the messages. An invalid filter or QoS is logged and ignored.
// Messages matching several subscriptions go to each of them, with the same
// Payload: handlers must not modify it.
func (c *Client) Subscribe(topic string, qos byte, h func(Message)) {
	if err := filterOK(topic); err != nil {
		c.log.Error("mqtt subscribe: bad filter, ignored", "err", err)
		return
	}
	if qos > 2 || h == nil {
		c.log.Error("mqtt subscribe: QoS above 2 or nil handler, ignored", "filter", topic, "qos", qos)
		return
	}
	s := &subscription{filter: topic, qos: qos, h: h, ch: make(chan Message, subBuffer)}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.subList = append(c.subList, s)
	snapshot := slices.Clone(c.subList)
	c.subs.Store(&snapshot)
	cn := c.cur
	c.mu.Unlock()
	go c.dispatch(s)
	if cn != nil {
		// setup may or may not have seen s: subscribing twice is harmless.
		go c.subscribe(cn, []*subscription{s})
	}
}

// route is paho's handler for every incoming message (on paho's router
// goroutine): it only hands the message to the matching subscriptions.
func (c *Client) route(_ paho.Client, pm paho.Message) {
	subs := c.subs.Load()
	if subs == nil {
		return
	}
	m := Message{Topic: pm.Topic(), Payload: pm.Payload(), QoS: pm.Qos(), Retained: pm.Retained()}
	var targets []*subscription
	for _, s := range *subs {
		if match(s.filter, m.Topic) {
			targets = append(targets, s)
		}
	}
	if c.o.AckAfterHandlers {
		if len(targets) == 0 {
			return // not acknowledged: the broker sends it again next session
		}
		m.done = &pendingAck{ack: pm.Ack}
		m.done.left.Store(int32(len(targets)))
	}
	for _, s := range targets {
		select {
		case s.ch <- m: // waits when the buffer is full: never drop
		case <-c.closing:
			return
		}
	}
}

func (c *Client) dispatch(s *subscription) {
	for {
		select {
		case m := <-s.ch:
			c.handle(s, m)
		case <-c.closing:
			return
		}
	}
}

func (c *Client) handle(s *subscription, m Message) {
	// Acknowledged after the handler, even one that panicked: redelivering
	// a message that crashes its handler would only crash it again.
	defer m.done.handled()
	defer func() {
		if r := recover(); r != nil {
			c.log.Error("mqtt message handler panicked", "filter", s.filter, "topic", m.Topic,
				"panic", r, "stack", string(debug.Stack()))
		}
	}()
	s.h(m)
}

// Publish publishes m and waits until it is complete (PUBACK for QoS 1,
// written for QoS 0), at most about 10 s or until ctx is done. Without a
// connection it fails at once with ErrNotConnected: paho never queues it.
// ErrConnectionLost means it may or may not have arrived. m.Payload must
// not be modified afterwards.
func (c *Client) Publish(ctx context.Context, m Message) error {
	if err := TopicOK(m.Topic); err != nil {
		return fmt.Errorf("publish: %w", err)
	}
	if m.QoS > 2 {
		return fmt.Errorf("publish %s: QoS %d, want 0, 1 or 2", m.Topic, m.QoS)
	}
	what := "publish " + m.Topic
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	cn := c.current()
	if cn == nil {
		return fmt.Errorf("%s: %w", what, ErrNotConnected)
	}
	tok := c.publish(cn, m.Topic, m.QoS, m.Retained, m.Payload)
	if tok == nil {
		return fmt.Errorf("%s: %w", what, ErrNotConnected)
	}
	timer := time.NewTimer(publishTimeout)
	defer timer.Stop()
	select {
	case <-tok.Done():
	case <-cn.lost:
		// The token may still report success later, when a durable session
		// resends it: unknown outcome.
		return fmt.Errorf("%s: %w", what, ErrConnectionLost)
	case <-ctx.Done():
		return fmt.Errorf("%s: %w", what, ctx.Err())
	case <-timer.C:
		return fmt.Errorf("%s: not acknowledged within %s", what, publishTimeout)
	}
	if err := tok.Error(); err != nil {
		switch {
		case errors.Is(err, paho.ErrNotConnected):
			return fmt.Errorf("%s: %w", what, ErrNotConnected)
		case closedChan(cn.lost):
			return fmt.Errorf("%s: %w: %w", what, ErrConnectionLost, err)
		}
		return fmt.Errorf("%s: %w", what, err)
	}
	if m.QoS > 0 && closedChan(cn.lost) {
		return fmt.Errorf("%s: %w", what, ErrConnectionLost)
	}
	return nil
}

func closedChan(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// Close disconnects gracefully (the broker does not publish the will),
// waiting up to timeout for the DISCONNECT to be sent, and stops the
// subscription goroutines. Idempotent. Publish, Drain and WaitConnected
// in progress return.
func (c *Client) Close(timeout time.Duration) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.closed = true
		close(c.closing)
		if c.cur != nil {
			c.markLost(c.cur)
		} else {
			c.broadcast()
		}
		runDone := c.runDone
		c.mu.Unlock()
		// A zero quiesce may skip the DISCONNECT, and then the will is sent.
		quiesce := max(timeout, 250*time.Millisecond)
		c.pc.Disconnect(uint(quiesce.Milliseconds()))
		if runDone != nil {
			t := time.NewTimer(quiesce)
			select {
			case <-runDone:
			case <-t.C:
			}
			t.Stop()
		}
		c.log.Info("mqtt closed")
	})
}
