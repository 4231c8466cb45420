package mqtt

import (
	"bytes"
	"context"
	"fmt"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/streamqc/streamqc/agent/spool"
)

// Outbox is what Drain forwards: the agent's spool.
type Outbox interface {
	// Read returns, in increasing Seq order, at most max records not yet
	// acknowledged whose Seq is above after (after 0: from the first
	// unacknowledged one), reusing buf's storage if it likes. Drain does not
	// keep the returned Data beyond the call (it copies it).
	Read(after uint64, max int, buf []spool.Record) []spool.Record
	// Ack marks seq as delivered to the broker (it may keep the record,
	// to be read again: see Rewinder). Drain acknowledges in the order it
	// published, increasing Seq order unless a rewind published records
	// again; after an error it reads again from the first unacknowledged
	// record.
	Ack(seq uint64) error
	// Notify is signalled when records are added.
	Notify() <-chan struct{}
}

// Rewinder is an Outbox that may ask Drain to publish again, on the live
// connection, records it has published already (a consumer of record
// reported a gap). Drain checks for it with a type assertion.
type Rewinder interface {
	// Rewind is signalled when TakeRewind has something.
	Rewind() <-chan struct{}
	// TakeRewind returns the lowest seq asked for since the last call
	// (ok false if none) and forgets it. Drain then publishes again every
	// record Read returns from that seq upwards.
	TakeRewind() (from uint64, ok bool)
}

const (
	// drainPoll is how often an idle Drain looks for records without a Notify.
	drainPoll = 500 * time.Millisecond
	// drainRetry is the pause after a failed publish on a live connection.
	drainRetry = time.Second
)

// Drain forwards box to topic with QoS 1 until ctx is done or the client
// closed, keeping at most window publishes awaiting their PUBACK. A record
// is acknowledged to box only after its PUBACK on the connection it was
// published on. After a lost connection, a failed or timed-out publish, it
// starts again from the first unacknowledged record (on the next connection
// if the connection is gone). See the package doc for what is promised.
// An invalid topic is logged and Drain returns at once.
func (c *Client) Drain(ctx context.Context, topic string, box Outbox, window int) {
	log := c.log.With("topic", topic)
	if err := TopicOK(topic); err != nil {
		log.Error("mqtt drain: bad topic", "err", err)
		return
	}
	window = max(window, 1)
	for {
		cn := c.waitReady(ctx)
		if cn == nil {
			return
		}
		err := c.drainConn(ctx, cn, topic, box, window)
		switch {
		case ctx.Err() != nil || closedChan(c.closing):
			return
		case closedChan(cn.lost):
			log.Info("mqtt drain: connection lost; resending from the first unacknowledged record once reconnected", "err", err)
			continue
		}
		log.Warn("mqtt drain: publish failed; resending from the first unacknowledged record", "err", err, "retry_in", drainRetry)
		t := time.NewTimer(drainRetry)
		select {
		case <-t.C:
		case <-cn.lost:
		case <-ctx.Done():
		case <-c.closing:
		}
		t.Stop()
	}
}

type inflight struct {
	seq  uint64
	tok  paho.Token
	sent time.Time
}

// drainConn publishes on cn until something goes wrong; it always returns
// an error saying what.
func (c *Client) drainConn(ctx context.Context, cn *conn, topic string, box Outbox, window int) error {
	ring := make([]inflight, window) // FIFO of publishes awaiting PUBACK
	head, n := 0, 0
	buf := make([]spool.Record, 0, window)
	var after uint64 // 0: from the first unacknowledged record
	var rewind <-chan struct{}
	rw, _ := box.(Rewinder)
	if rw != nil {
		rewind = rw.Rewind()
		rw.TakeRewind() // a new connection publishes everything from the first unacknowledged record anyway
	}
	// rewound moves after back to publish again from the seq asked for.
	rewound := func() {
		if from, ok := rw.TakeRewind(); ok && from <= after {
			after = max(from, 1) - 1
		}
	}
	poll := time.NewTicker(drainPoll)
	defer poll.Stop()
	timeout := time.NewTimer(publishTimeout)
	defer timeout.Stop()

	for {
		// Fill the window, in Seq order, from a single goroutine: paho
		// writes publishes in the order of the Publish calls.
		for n < window {
			if closedChan(cn.lost) {
				return ErrConnectionLost
			}
			recs := box.Read(after, window-n, buf[:0])
			if len(recs) == 0 {
				break
			}
			for _, r := range recs {
				if r.Seq <= after {
					continue // published on this connection (a rewind moves after back)
				}
				// Copy: box may reuse the storage, paho keeps the payload
				// until the PUBACK.
				tok := c.publish(cn, topic, 1, false, bytes.Clone(r.Data))
				if tok == nil {
					return ErrConnectionLost
				}
				ring[(head+n)%window] = inflight{seq: r.Seq, tok: tok, sent: time.Now()}
				n++
				after = r.Seq
				if n == window {
					break
				}
			}
		}

		var notify <-chan struct{}
		var tick <-chan time.Time
		if n < window {
			notify, tick = box.Notify(), poll.C
		}
		if n == 0 {
			select {
			case <-notify:
			case <-tick:
			case <-rewind:
				rewound()
			case <-cn.lost:
				return ErrConnectionLost
			case <-ctx.Done():
				return ctx.Err()
			case <-c.closing:
				return ErrClosed
			}
			continue
		}

		first := ring[head]
		timeout.Reset(time.Until(first.sent.Add(publishTimeout)))
		select {
		case <-first.tok.Done():
			if err := first.tok.Error(); err != nil {
				return fmt.Errorf("record %d: %w", first.seq, err)
			}
			// A success seen after the loss may be paho completing the
			// token without a PUBACK (it does when it resends): not trusted.
			if closedChan(cn.lost) {
				return ErrConnectionLost
			}
			if err := box.Ack(first.seq); err != nil {
				// Start again from it: a duplicate, not a loss, and acks
				// stay in Seq order.
				return fmt.Errorf("ack record %d: %w", first.seq, err)
			}
			ring[head] = inflight{}
			head = (head + 1) % window
			n--
		case <-notify:
		case <-tick:
		case <-rewind:
			rewound()
		case <-timeout.C:
			return fmt.Errorf("record %d: no PUBACK within %s", first.seq, publishTimeout)
		case <-cn.lost:
			return ErrConnectionLost
		case <-ctx.Done():
			return ctx.Err()
		case <-c.closing:
			return ErrClosed
		}
	}
}
