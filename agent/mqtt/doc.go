// Package mqtt is the agent's and the consumer tools' MQTT session, a thin
// layer over paho.mqtt.golang (MQTT 3.1.1).
//
// # Connection
//
// New validates the options and loads the TLS files; Start connects in the
// background and reconnects after every loss, with a jittered exponential
// backoff capped by Options.MaxReconnectInterval, until Close. Subscriptions
// are remembered and made again on every connection (a clean session forgets
// them), before the connection counts as connected and before
// Options.OnConnect runs. Close disconnects gracefully, so the broker drops
// the last will; the will is published only when the connection dies
// otherwise (process killed, network gone, keepalive expired).
//
// The reconnect loop is ours, not paho's AutoReconnect/ConnectRetry: on a
// paho reconnect, paho resends its in-flight QoS 1 publishes and, in doing
// so, completes the tokens of the originals with no error although no PUBACK
// for them was seen. Reconnecting ourselves, with a connection generation
// that is closed before the next connect starts, lets Publish and Drain tell
// a real PUBACK from that false success. Also, a paho Publish call still
// waiting for paho's writer when the connection dies is written first on the
// next connection (ahead of the records before it); so a reconnect waits
// until such calls have returned (at most the 3 s write timeout).
//
// # Subscriptions
//
// Each Subscribe gets one goroutine that runs its handler, fed by a buffered
// channel: handlers see messages in arrival order, one at a time, and a slow
// handler does not stall paho. When a subscription's buffer is full the
// paho router waits for room (messages are never dropped), which stalls
// delivery to every subscription of the client until the handler catches up.
// A message is acknowledged to the broker once it is in the buffer, so
// messages still buffered when the process dies are lost to a durable
// (CleanSession false) consumer; consumers dedupe by event id anyway.
//
// # Drain: at-least-once forwarding of the spool
//
// Drain publishes an Outbox (the agent's spool) with QoS 1 and acknowledges
// a record to the Outbox only after the broker's PUBACK for it, on the
// connection it was published on. It promises:
//   - at least once: a record is published again and again, across lost
//     connections and broker restarts, until it is acknowledged;
//   - in order of first arrival: on every connection Drain publishes from
//     the first unacknowledged record upwards, never record n+1 before
//     record n, so the broker receives each record for the first time in
//     Seq order (and forwards it so to each subscriber);
//   - acknowledgements in Seq order (in publish order after a rewind),
//     never without a PUBACK, never for a publish whose connection was
//     lost before its PUBACK was seen;
//   - nothing published while disconnected.
//
// An Outbox may keep a record after Ack (the agent's stored mode: a PUBACK
// marks it sent, the consumer of record's watermark deletes it). Every new
// connection then publishes again all the records the Outbox still holds,
// and an Outbox that is a Rewinder asks Drain to publish again from a seq on
// the live connection (after a gap report); the window of publishes
// awaiting their PUBACK is unchanged by a rewind (its FIFO just holds the
// republished records after the ones in flight).
//
// It does not promise exactly once: after a lost connection or a failed or
// timed-out publish, everything not yet acknowledged is published again, so
// the broker and consumers may see a record twice (the same bytes, perhaps
// after later records' duplicates; consumers dedupe by the event id inside
// the payload). With CleanSession false, paho also resends its own
// unacknowledged publishes after a reconnect: more duplicates, first
// arrivals still in order. The agent uses a clean session.
package mqtt
