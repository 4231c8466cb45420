package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"syscall"
	"time"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
)

// brokerFlags are the connection flags of the consumer commands: either an
// agent's file (its broker section and fleet) or explicit flags, which win.
type brokerFlags struct {
	config, url, user, password, ca, cert, key, fleet, clientID *string
	timeout                                                     *time.Duration
}

func addBrokerFlags(fs *flag.FlagSet) *brokerFlags {
	return &brokerFlags{
		config:   fs.String("config", "", "take the broker and fleet from this agent file (agent.yaml)"),
		url:      fs.String("broker", "", "broker URL, e.g. tcp://127.0.0.1:1883 or ssl://host:8883 (default from --config, else tcp://127.0.0.1:1883)"),
		user:     fs.String("username", "", "MQTT user name"),
		password: fs.String("password", "", "MQTT password (or the STREAMQC_BROKER_PASSWORD environment variable)"),
		ca:       fs.String("ca", "", "CA certificate file to trust (TLS)"),
		cert:     fs.String("cert", "", "client certificate file (mutual TLS)"),
		key:      fs.String("key", "", "client key file (mutual TLS)"),
		fleet:    fs.String("fleet", "", "fleet name (default from --config, else every fleet / \"default\")"),
		clientID: fs.String("client-id", "", "MQTT client id (default: a random one)"),
		timeout:  fs.Duration("connect-timeout", 10*time.Second, "give up when the broker cannot be reached in this time"),
	}
}

// resolve merges the flags over the agent file.
func (b *brokerFlags) resolve() (config.Broker, string, error) {
	br := config.DefaultAgent().Broker
	fleet := ""
	if *b.config != "" {
		a, err := config.LoadAgent(*b.config)
		if err != nil {
			return br, "", err
		}
		br, fleet = a.Broker, a.Fleet
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&br.URL, *b.url)
	set(&br.Username, *b.user)
	set(&br.Password, os.Getenv("STREAMQC_BROKER_PASSWORD"))
	set(&br.Password, *b.password)
	set(&br.CAFile, *b.ca)
	set(&br.CertFile, *b.cert)
	set(&br.KeyFile, *b.key)
	set(&fleet, *b.fleet)
	return br, fleet, nil
}

// connect opens a client session and waits until it is connected.
func (b *brokerFlags) connect(ctx context.Context, clean bool, logger *slog.Logger) (*mqtt.Client, string, error) {
	return b.connectWith(ctx, clean, logger, nil)
}

// connectWith runs setup (subscriptions) before connecting; a durable
// consumer acknowledges messages only after its handlers ran.
func (b *brokerFlags) connectWith(ctx context.Context, clean bool, logger *slog.Logger, setup func(c *mqtt.Client, fleet string)) (*mqtt.Client, string, error) {
	br, fleet, err := b.resolve()
	if err != nil {
		return nil, "", err
	}
	if err := reachable(ctx, br.URL); err != nil {
		return nil, "", fmt.Errorf("broker %s: %w", br.URL, err)
	}
	id := *b.clientID
	if id == "" {
		id = "streamqc-cli-" + newSuffix()
	}
	mo := agent.ClientOptions(br, id, logger)
	mo.CleanSession, mo.AckAfterHandlers = &clean, !clean
	c, err := mqtt.New(mo)
	if err != nil {
		return nil, "", err
	}
	if setup != nil {
		setup(c, fleet)
	}
	c.Start(ctx)
	wctx, cancel := context.WithTimeout(ctx, *b.timeout)
	defer cancel()
	if err := c.WaitConnected(wctx); err != nil {
		c.Close(time.Second)
		return nil, "", fmt.Errorf("broker %s: %w", br.URL, err)
	}
	return c, fleet, nil
}

func newSuffix() string {
	return fmt.Sprintf("%d-%d", os.Getpid(), time.Now().UnixNano()%1e9)
}

func quietLogger(verbose bool) *slog.Logger {
	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
}

// reachable fails at once, with the cause, when the broker's host refuses
// the connection or does not exist: a command run by hand says so once and
// exits instead of retrying until its timeout. Anything else (no answer
// yet, a firewall dropping packets) is left to the client's retries.
func reachable(ctx context.Context, raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil // the client reports a malformed URL in its own words
	}
	port := u.Port()
	if port == "" {
		port = map[string]string{"tcp": "1883", "mqtt": "1883", "ssl": "8883", "tls": "8883", "mqtts": "8883", "ws": "80", "wss": "443"}[u.Scheme]
	}
	if port == "" {
		return nil
	}
	d := net.Dialer{Timeout: 3 * time.Second}
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(u.Hostname(), port))
	var dns *net.DNSError
	switch {
	case err == nil:
		c.Close()
		return nil
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("connection refused (nothing listens on %s)", net.JoinHostPort(u.Hostname(), port))
	case errors.As(err, &dns) && dns.IsNotFound:
		return fmt.Errorf("no such host %q", u.Hostname())
	}
	return nil
}
