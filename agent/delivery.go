package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/schema"
)

// delivery is the agent's side of the consumer-of-record protocol
// (README "Delivery end to end"): in stored mode a PUBACK only marks an
// event sent; the consumer of record's stored watermark (Topics.Stored)
// deletes it from the spool; a gap it reports, or a watermark that stays
// behind what was sent for spool.resend_after, has the drain send again from
// the watermark, after declaring (Topics.Missing) the seqs the spool will
// never send.
type delivery struct {
	a           *Agent
	log         *slog.Logger
	keepUntil   string // config.Keep*
	resendAfter time.Duration
	docs        chan storedMsg
	rewindC     chan struct{}
	startNext   uint64 // the spool's next seq when the agent started: seqs from it on are this process's

	mu         sync.Mutex
	stored     bool   // stored mode (keep_until stored, or auto after a StoredDoc)
	rewindFrom uint64 // the lowest seq the drain is asked to send again from; 0: none
	highSent   uint64 // the highest seq the broker acknowledged
	watermark  uint64 // the last stored watermark received
	consumer   string // the consumer of record that sent it
	armedFor   uint64 // the resend timer is armed: highSent when it was; 0: not armed
	armedW     uint64 // the watermark when the timer was armed (or last found moving)
	// The last gap resend: gapSeq the watermark of the last gap report,
	// gapHigh the spool's last seq when the resend was asked, the last it
	// sends again (0: no gap open). A gap report whose watermark moved up
	// from gapSeq but is still below gapHigh is that resend being stored:
	// no new resend (gapResend).
	gapSeq, gapHigh uint64
	missing         uint64 // seqs declared missing since the start
	resends         uint64 // resends from a watermark since the start
}

// storedMsg is a StoredDoc as it arrived.
type storedMsg struct {
	topic   string
	payload []byte
}

func newDelivery(a *Agent) *delivery {
	d := &delivery{
		a: a, log: a.log.With("delivery", a.cfg.Spool.KeepUntil),
		keepUntil:   a.cfg.Spool.KeepUntil,
		resendAfter: time.Duration(a.cfg.Spool.ResendAfter),
		docs:        make(chan storedMsg, 16),
		rewindC:     make(chan struct{}, 1),
		startNext:   a.spool.Stats().NextSeq,
	}
	if d.keepUntil == "" {
		d.keepUntil = config.KeepAuto
	}
	if d.resendAfter <= 0 {
		d.resendAfter = 10 * time.Second
	}
	d.stored = d.keepUntil == config.KeepStored
	if d.keepUntil == config.KeepAuto {
		// A consumer of record seen before a restart: stored mode at once,
		// not only once its retained watermark arrives (the drain may get
		// PUBACKs for the backlog before that).
		if b, err := os.ReadFile(d.markerPath()); err == nil {
			d.stored = true
			d.log.Info("stored mode: a consumer of record was seen before", "consumer", string(bytes.TrimSpace(b)), "file", d.markerPath())
		} else if !errors.Is(err, os.ErrNotExist) {
			d.log.Warn("stored mode marker unreadable; broker mode until a watermark arrives", "err", err)
		}
	}
	return d
}

// markerName, in state_dir, says that auto mode switched to stored mode
// (it holds the consumer of record's name). Delete it, or set keep_until:
// broker, when a fleet stops running a consumer of record.
const markerName = "stored-mode"

func (d *delivery) markerPath() string { return filepath.Join(d.a.cfg.StateDir, markerName) }

// writeMarker persists the switch to stored mode (atomically, best effort).
func (d *delivery) writeMarker(consumer string) error {
	tmp := d.markerPath() + ".tmp"
	if err := os.WriteFile(tmp, []byte(consumer+"\n"), 0o640); err != nil {
		return fmt.Errorf("stored mode marker: %w", err)
	}
	if err := os.Rename(tmp, d.markerPath()); err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("stored mode marker: %w", err)
	}
	return nil
}

// subscribe subscribes to the agent's stored watermark (not in broker mode).
func (d *delivery) subscribe(ctx context.Context, c *mqtt.Client) {
	if d.keepUntil == config.KeepBroker {
		return
	}
	c.Subscribe(d.a.topics.Stored, 1, func(m mqtt.Message) {
		select { // the handler hands over, the loop does the work (and publishes)
		case d.docs <- storedMsg{topic: m.Topic, payload: m.Payload}:
		case <-ctx.Done():
		}
	})
}

// storedMode reports whether a PUBACK keeps the event in the spool.
func (d *delivery) storedMode() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.stored
}

// sent records a PUBACK for seq: in stored mode the record stays in the
// spool, marked sent, unless the last watermark covers it already (see
// onStored: a watermark that came before the PUBACK, or one of this agent
// before its state was wiped); in broker mode it is acknowledged (deleted,
// and deleted reports true).
func (d *delivery) sent(seq uint64) (deleted bool, err error) {
	d.mu.Lock()
	keep := d.stored && seq > d.watermark
	d.highSent = max(d.highSent, seq)
	d.mu.Unlock()
	if keep {
		return false, d.a.spool.MarkSent(seq)
	}
	return true, d.a.spool.Ack(seq)
}

// rewind asks the drain to send again from seq.
func (d *delivery) rewind(from uint64) {
	d.mu.Lock()
	if d.rewindFrom == 0 || from < d.rewindFrom {
		d.rewindFrom = from
	}
	d.resends++
	d.mu.Unlock()
	select {
	case d.rewindC <- struct{}{}:
	default:
	}
}

func (d *delivery) takeRewind() (uint64, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	from := d.rewindFrom
	d.rewindFrom = 0
	return from, from > 0
}

// deliveryFigures are the delivery figures of the metrics.
type deliveryFigures struct {
	keepUntil string
	stored    uint64
	missing   uint64
	resends   uint64
}

func (d *delivery) figures() deliveryFigures {
	d.mu.Lock()
	defer d.mu.Unlock()
	f := deliveryFigures{keepUntil: config.KeepBroker, stored: d.watermark, missing: d.missing, resends: d.resends}
	if d.stored {
		f.keepUntil = config.KeepStored
	}
	return f
}

// run handles stored watermarks and the resend timer until ctx is done.
func (d *delivery) run(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case m := <-d.docs:
			if d.onStored(ctx, m) {
				timer.Reset(d.resendAfter)
			}
		case <-timer.C:
			if d.resendTimer(ctx) {
				timer.Reset(d.resendAfter)
			}
		}
	}
}

// onStored applies one StoredDoc and reports whether the resend timer is to
// be armed. A document that is not valid is logged and ignored.
func (d *delivery) onStored(ctx context.Context, m storedMsg) (arm bool) {
	if m.topic != d.a.topics.Stored {
		d.log.Warn("stored watermark on another agent's topic ignored", "topic", m.topic)
		return false
	}
	if len(m.payload) == 0 {
		return false // the retained watermark was cleared
	}
	if err := d.a.schemas.Validate(schema.Stored, m.payload); err != nil {
		d.log.Warn("invalid stored watermark ignored", "err", err, "payload", fmt.Sprintf("%.200q", m.payload))
		return false
	}
	var doc schema.StoredDoc
	if err := json.Unmarshal(m.payload, &doc); err != nil {
		d.log.Warn("invalid stored watermark ignored", "err", err)
		return false
	}
	st := d.a.spool.Stats()
	d.mu.Lock()
	switched := !d.stored
	d.stored = true
	d.mu.Unlock()
	if switched {
		d.log.Info("consumer of record seen: events now stay in the spool until it has stored them",
			"consumer", doc.Consumer, "stored", doc.Seq)
		if err := d.writeMarker(doc.Consumer); err != nil {
			d.log.Warn("stored mode not remembered across a restart", "err", err)
		}
	}
	d.mu.Lock()
	through := doc.Seq
	switch {
	case doc.Seq >= st.NextSeq:
		// The consumer remembers seqs this spool never handed out: its
		// state was wiped. New events go on above the watermark; only
		// what the broker acknowledged counts as stored.
		through = min(doc.Seq, d.highSent)
		d.mu.Unlock()
		d.log.Warn("the consumer of record's watermark is ahead of this agent's events (state directory wiped?): skipping seqs past it",
			"stored", doc.Seq, "next_seq", st.NextSeq, "consumer", doc.Consumer)
		d.a.spool.SkipTo(doc.Seq + 1)
		d.mu.Lock()
	case doc.Seq >= d.startNext && doc.Seq > d.highSent:
		// It covers seqs this process handed out and the broker never
		// acknowledged: not these events (the consumer cannot have them),
		// those of this agent before its state was wiped, which had more
		// seqs than this one has handed out yet. Only what the broker
		// acknowledged counts as stored; the rest is sent first (else
		// deleted unsent: lost).
		through = d.highSent
		d.log.Warn("the consumer of record's watermark covers events this agent never sent (state directory wiped?): only those the broker acknowledged count as stored",
			"stored", doc.Seq, "sent", d.highSent, "next_seq", st.NextSeq, "consumer", doc.Consumer)
	}
	d.watermark, d.consumer = doc.Seq, doc.Consumer
	behind := doc.Seq < d.highSent
	if behind && d.armedFor == 0 {
		d.armedFor, d.armedW = d.highSent, doc.Seq
		arm = true
	}
	d.mu.Unlock()
	if _, err := d.a.spool.AckThrough(through); err != nil {
		d.log.Warn("stored watermark not applied", "err", err)
		return false
	}
	switch resend, closing := d.gapResend(doc); {
	case resend:
		d.resendFrom(ctx, doc.Seq, "gap")
	case closing:
		// The resend goes on; what it cannot send is declared now.
		d.declareGone(ctx, doc.Seq)
	}
	return arm
}

// gapResend reports whether a StoredDoc asks for a resend from its
// watermark (resend): a gap that is new, or that did not move since the
// last report (the consumer republishes it every few seconds while it
// lasts: what was sent again was lost too). While a gap closes (closing),
// the consumer reports it again at every step of its watermark (up to 5 a
// second); sending from the watermark again at each would send the backlog
// again, once per report, behind the one being stored (seen end to end: 3
// times over for a backlog of 3000 with a consumer slower than the drain).
func (d *delivery) gapResend(doc schema.StoredDoc) (resend, closing bool) {
	last := d.a.spool.Stats().NextSeq - 1
	d.mu.Lock()
	defer d.mu.Unlock()
	if !doc.Gap {
		d.gapSeq, d.gapHigh = 0, 0
		return false, false
	}
	closing = d.gapHigh > 0 && doc.Seq > d.gapSeq && doc.Seq < d.gapHigh
	d.gapSeq = doc.Seq
	if closing {
		return false, true
	}
	d.gapHigh = max(last, doc.Seq+1)
	return true, false
}

// resendTimer runs when the resend timer fires: events sent when it was
// armed and still not stored are sent again, unless the watermark moved up
// since the timer was armed: the consumer is storing them (a backlog, or
// what was sent again), slower than resend_after; it reports that the timer
// is to be armed again, and a watermark that stops moving has them sent
// again one period later (without this, a backlog that takes n periods to
// store was sent again about n times over). If they were stored but later
// ones are not yet, it is to be armed again for those (the consumer is
// alive and may not publish again if it lost them). After a resend it is
// not: the next watermark arms it, so that an absent consumer does not have
// the backlog queued for it again and again.
func (d *delivery) resendTimer(ctx context.Context) (rearm bool) {
	d.mu.Lock()
	armedFor, armedW, w, high := d.armedFor, d.armedW, d.watermark, d.highSent
	d.armedFor = 0
	resend := false
	switch {
	case armedFor == 0:
	case w >= armedFor:
		if w < high {
			d.armedFor, d.armedW, rearm = high, w, true
		}
	case w > armedW:
		d.armedFor, d.armedW, rearm = armedFor, w, true
	default:
		resend = true
	}
	d.mu.Unlock()
	if resend {
		d.resendFrom(ctx, w, "resend_after")
	}
	return rearm
}

// resendFrom declares what the spool will never send above w, then asks the
// drain to send again from w+1.
func (d *delivery) resendFrom(ctx context.Context, w uint64, why string) {
	next := d.declareGone(ctx, w)
	d.log.Info("sending again the events not stored", "from", next, "stored", w, "why", why)
	d.rewind(next)
}

// declareGone declares what the spool will never send above w (a
// MissingDoc, when the first record it holds above w is not w+1) and
// returns that first record's seq.
func (d *delivery) declareGone(ctx context.Context, w uint64) (next uint64) {
	next, reason := d.a.spool.Missing(w)
	if reason != "" {
		d.declareMissing(ctx, w+1, next-1, reason)
	}
	return next
}

// declareMissing publishes a MissingDoc (QoS 1) and waits for its PUBACK,
// so that it reaches the broker before the events sent again after it.
func (d *delivery) declareMissing(ctx context.Context, from, to uint64, reason string) {
	b, err := json.Marshal(schema.MissingDoc{Type: "missing", From: from, To: to, Reason: reason,
		Time: time.Now().UTC().Format(time.RFC3339Nano)})
	if err != nil {
		d.log.Error("missing events", "err", err)
		return
	}
	d.log.Warn("declaring events that will never be sent", "from", from, "to", to, "reason", reason)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := d.a.client.Publish(pctx, mqtt.Message{Topic: d.a.topics.Missing, Payload: b, QoS: 1}); err != nil {
		d.log.Warn("missing events not declared; the next gap report asks again", "err", err)
		return
	}
	d.mu.Lock()
	d.missing += to - from + 1
	d.mu.Unlock()
}

// Rewind and TakeRewind make the outbox a mqtt.Rewinder.
func (o outbox) Rewind() <-chan struct{}    { return o.a.dlv.rewindC }
func (o outbox) TakeRewind() (uint64, bool) { return o.a.dlv.takeRewind() }
