package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/consumer"
)

func eventsCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("events", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	agent := fs.String("agent", "", "only this agent")
	stream := fs.String("stream", "", "only this stream")
	follow := fs.Bool("follow", false, "keep printing until interrupted")
	idle := fs.Duration("idle", 2*time.Second, "without --follow: stop once nothing arrived for this long")
	format := fs.String("format", "text", "text or json (the event payloads, one per line)")
	session := fs.String("session", "", "durable subscription name: the broker keeps events for it while this command is not running, and delivers them at the next run")
	verbose := fs.Bool("v", false, "log connection changes to stderr")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: streamqc events [--fleet F] [--agent A] [--stream S] [--follow] [--format text|json] [broker flags]\n\nflags:")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *format != "text" && *format != "json" {
		fmt.Fprintf(stderr, "streamqc events: --format %q: text or json\n", *format)
		return 2
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
			Follow: *follow, Idle: *idle, Format: *format, Color: isTerminal(stdout),
		}, stdout)
	})
	if err != nil {
		fmt.Fprintf(stderr, "streamqc events: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	if _, err = printer.Wait(ctx); err != nil {
		fmt.Fprintf(stderr, "streamqc events: %v\n", err)
		return 1
	}
	return 0
}
