package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/consumer"
)

func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("events", "[--fleet F] [--agent A] [--stream S] [--follow] [--format text|json] [broker flags]",
		"Prints the defect events of a fleet as they arrive, each once (deduplicated by id).", stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	agent := fs.String("agent", "", "only this agent")
	stream := fs.String("stream", "", "only this stream")
	follow := fs.Bool("follow", false, "keep printing until interrupted")
	idle := fs.Duration("idle", 2*time.Second, "without --follow: stop once nothing arrived for this long")
	format := fs.String("format", "text", "text or json (the event payloads, one per line)")
	session := fs.String("session", "", "durable subscription name: the broker keeps events for it while this command is not running, and delivers them at the next run")
	verbose := fs.Bool("v", false, "log connection changes to stderr")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	if *format != "text" && *format != "json" {
		return fs.fail("--format %q: want text or json", *format)
	}
	clean := true
	if *session != "" {
		clean = false
		*bf.clientID = "streamqc-events-" + *session
	}
	var printer *consumer.EventPrinter
	c, _, err := bf.connectWith(ctx, clean, quietLogger(*verbose), func(c *mqtt.Client, fleet string) {
		printer = consumer.PrintEvents(c, consumer.EventOptions{
			Filter: consumer.EventFilter{Fleet: fleet, Agent: *agent, Stream: *stream},
			Follow: *follow, Idle: *idle, Format: *format, Color: isTerminal(stdout), Warn: prefixed{stderr, "streamqc events: "},
		}, stdout)
	})
	if err != nil {
		fmt.Fprintf(stderr, "streamqc events: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	_, err = printer.Wait(ctx)
	if n := printer.Dropped(); n > 0 {
		fmt.Fprintf(stderr, "streamqc events: %d events dropped: their fleet or agent was not the topic's (forged, or a broker without the streamqc ACL)\n", n)
	}
	if err != nil {
		fmt.Fprintf(stderr, "streamqc events: %v\n", err)
		return 1
	}
	return 0
}
