package mqtt

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/agent/spool"
)

// keepBox is an Outbox in stored mode: Ack marks a record sent and keeps
// it; store deletes records up to a watermark; it is a Rewinder.
type keepBox struct {
	mu      sync.Mutex
	recs    []spool.Record
	stored  int // records 1..stored are deleted
	sent    map[uint64]int
	from    uint64 // pending rewind, 0: none
	notify  chan struct{}
	rewindC chan struct{}
}

func newKeepBox(n int) *keepBox {
	b := &keepBox{sent: map[uint64]int{}, notify: make(chan struct{}, 1), rewindC: make(chan struct{}, 1)}
	for i := 1; i <= n; i++ {
		b.recs = append(b.recs, spool.Record{Seq: uint64(i), Data: payload(uint64(i))})
	}
	return b
}

func (b *keepBox) Read(after uint64, limit int, buf []spool.Record) []spool.Record {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := max(int(after), b.stored); i < len(b.recs) && len(buf) < limit; i++ {
		buf = append(buf, b.recs[i])
	}
	return buf
}

func (b *keepBox) Ack(seq uint64) error {
	b.mu.Lock()
	b.sent[seq]++
	b.mu.Unlock()
	return nil
}

func (b *keepBox) Notify() <-chan struct{} { return b.notify }
func (b *keepBox) Rewind() <-chan struct{} { return b.rewindC }

func (b *keepBox) TakeRewind() (uint64, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	from := b.from
	b.from = 0
	return from, from > 0
}

func (b *keepBox) rewind(from uint64) {
	b.mu.Lock()
	if b.from == 0 || from < b.from {
		b.from = from
	}
	b.mu.Unlock()
	select {
	case b.rewindC <- struct{}{}:
	default:
	}
}

func (b *keepBox) store(through int) {
	b.mu.Lock()
	b.stored = through
	b.mu.Unlock()
}

// sentAll reports whether every record was acknowledged by the broker at
// least min times.
func (b *keepBox) sentAll(min int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, r := range b.recs {
		if b.sent[r.Seq] < min {
			return false
		}
	}
	return true
}

// counts returns how many times each seq arrived.
func (c *collector) counts() map[uint64]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := map[uint64]int{}
	for _, s := range c.seqs {
		m[s]++
	}
	return m
}

// cut drops the proxied connections (as a dead network would) but keeps
// accepting new ones.
func (p *proxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// TestDrainRewind: records kept after their PUBACK are published again on
// request on the live connection (from the seq asked for, not before), in
// the middle of a full window too, and all of them after a reconnect.
func TestDrainRewind(t *testing.T) {
	t.Parallel()
	const n = 300
	b := mqtttest.Start(t, mqtttest.Options{})
	var got collector
	consumer := newClient(t, Options{Broker: b.URL, ClientID: "consumer"})
	consumer.Subscribe("qc/events", 1, got.handle)
	startConnected(t, consumer)

	px := newProxy(t, b.Port)
	box := newKeepBox(n)
	agent := newClient(t, Options{Broker: px.URL(), ClientID: "agent"})
	startConnected(t, agent)
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan struct{})
	go func() { agent.Drain(ctx, "qc/events", box, 8); close(drained) }()
	defer func() { cancel(); <-drained }()

	eventually(t, 10*time.Second, "every record sent once", func() bool { return box.sentAll(1) && got.distinct() == n })
	got.check(t, n)
	if c := got.counts(); len(c) != n {
		t.Fatalf("%d distinct records arrived", len(c))
	}
	for seq, k := range got.counts() {
		if k != 1 {
			t.Fatalf("record %d arrived %d times before any rewind", seq, k)
		}
	}

	// Rewind after everything was sent: exactly from..n again.
	const from = 250
	box.rewind(from)
	eventually(t, 10*time.Second, "records from the rewind sent again", func() bool {
		c := got.counts()
		return c[n] == 2 && c[from] == 2
	})
	for seq, k := range got.counts() {
		want := 1
		if seq >= from {
			want = 2
		}
		if k != want {
			t.Fatalf("record %d arrived %d times, want %d", seq, k, want)
		}
	}
	// Rewinds in a row coalesce to the lowest seq; stored records are not sent.
	box.store(100)
	box.rewind(290)
	box.rewind(50) // below the stored watermark: from 101
	eventually(t, 10*time.Second, "unstored records sent a third time", func() bool {
		c := got.counts()
		return c[101] == 2 && c[n] == 3
	})
	if c := got.counts(); c[100] != 1 || c[50] != 1 {
		t.Fatalf("stored records sent again: 50 x%d, 100 x%d", c[50], c[100])
	}

	// A lost connection: everything unstored (101..n) is sent again.
	before := got.counts()
	px.cut()
	eventually(t, 10*time.Second, "everything unstored sent again after the reconnect", func() bool {
		c := got.counts()
		for seq := uint64(101); seq <= n; seq++ {
			if c[seq] <= before[seq] {
				return false
			}
		}
		return true
	})
	if c := got.counts(); c[100] != before[100] {
		t.Fatalf("stored record 100 sent again after the reconnect")
	}
}

// TestDrainRewindMidWindow: a rewind while the window is full of publishes
// awaiting their PUBACK; every record still arrives, and the one rewound to
// twice.
func TestDrainRewindMidWindow(t *testing.T) {
	t.Parallel()
	const n = 3000
	b := mqtttest.Start(t, mqtttest.Options{})
	var got collector
	consumer := newClient(t, Options{Broker: b.URL, ClientID: "consumer"})
	consumer.Subscribe("qc/events", 1, got.handle)
	startConnected(t, consumer)

	box := newKeepBox(n)
	agent := newClient(t, Options{Broker: b.URL, ClientID: "agent"})
	startConnected(t, agent)
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan struct{})
	go func() { agent.Drain(ctx, "qc/events", box, 32); close(drained) }()
	defer func() { cancel(); <-drained }()

	eventually(t, 10*time.Second, "records arriving", func() bool { return got.distinct() >= 100 })
	box.rewind(10)
	eventually(t, 20*time.Second, "every record sent", func() bool { return box.sentAll(1) && got.distinct() == n })
	c := got.counts()
	if c[10] < 2 || c[11] < 2 {
		t.Fatalf("records 10, 11 arrived %d, %d times after a rewind to 10", c[10], c[11])
	}
	if c[9] != 1 {
		t.Fatalf("record 9 arrived %d times, want 1", c[9])
	}
	t.Logf("%d arrivals for %d records", len(got.seqs), n)
}
