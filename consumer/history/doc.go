// Package history is the fleet's consumer of record (issue 15 item 3): it
// keeps every defect event in an embedded SQLite database for the
// dashboard's timeline and queries, and tells each agent, with a retained
// StoredDoc, the highest event seq it has durably stored without a gap, so
// that agents keep events in their spool until they are stored and resend
// what is missing (the protocol: /work/notes/protocol.md, schema.StoredDoc,
// schema.MissingDoc).
//
// # Store
//
// Open opens or creates the database (StateDir/history.db by default) in
// WAL mode with synchronous=FULL: a watermark tells agents they may delete
// events, so it must only cover commits that survive a power cut, not just
// a crash of the process (NORMAL would lose the last commits on power loss
// while the agents had deleted them). The fsync per commit is shared by a
// whole batch: one writer goroutine takes everything queued (up to
// Options.Batch writes) into one transaction, the agents' watermarks in the
// same transaction as the events they cover. Queries (Events, OpenAlarms,
// Thumbnail, Marks) run beside it.
//
// # Recorder
//
// The Recorder subscribes (QoS 1) to the fleet's events, events/missing and
// alarm thumbnails, validates every payload against its schema and its
// topic (refused ones are counted and logged, never stored), stores events
// by id, and publishes StoredDocs. Its client must be durable and call
// Recorder.OnConnect after every connection:
//
//	var rec *history.Recorder
//	c, err := mqtt.New(mqtt.Options{
//		Broker: broker, ClientID: "streamqc-recorder-" + fleet,
//		CleanSession: &durable, // false
//		OnConnect: func(ctx context.Context, c *mqtt.Client) { rec.OnConnect(ctx, c) },
//	})
//	st, err := history.Open(ctx, history.Options{StateDir: stateDir})
//	rec, err = history.NewRecorder(st, history.RecorderOptions{Fleet: fleet, Name: "dashboard", Client: c, OnEvent: live})
//	c.Start(ctx) // after NewRecorder: a durable session's queued events need their handlers
//	go rec.Run(ctx)
package history
