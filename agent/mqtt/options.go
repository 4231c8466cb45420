package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// Options configures a Client. Broker is required; zero durations take
// their defaults.
type Options struct {
	// Broker is the broker's URL: tcp:// or mqtt:// (default port 1883),
	// ssl://, tls:// or mqtts:// (default port 8883), ws:// or wss:// (with
	// the path, e.g. wss://host/mqtt).
	Broker   string
	ClientID string // required with CleanSession false; empty: the broker picks one
	Username string
	Password string
	// CAFile is the PEM bundle of CAs to trust (default: system roots);
	// CertFile and KeyFile, together, are the client certificate for mutual
	// TLS (as AWS IoT Core requires). Only with a TLS broker URL.
	CAFile, CertFile, KeyFile string
	// ServerName overrides the name used for SNI and verification of the
	// broker's certificate (default: the URL's host).
	ServerName string

	KeepAlive            time.Duration // default 30s; at least 1s
	ConnectTimeout       time.Duration // default 10s (TCP, TLS and CONNACK)
	MaxReconnectInterval time.Duration // default 10s: cap of the reconnect backoff

	// CleanSession defaults to true. Durable consumers set it false with a
	// fixed ClientID, so the broker queues QoS 1 messages while they are away.
	CleanSession *bool
	// AckAfterHandlers makes the client acknowledge a received QoS 1 message
	// only once every matching handler has returned, so a consumer that
	// stops (or dies) between receiving and processing gets it again in its
	// next session instead of losing it. A message no handler matches is
	// not acknowledged: subscribe before Start.
	AckAfterHandlers bool
	// Will is the last will, published by the broker when the connection
	// dies without a DISCONNECT (not on Close).
	Will *Message
	// OnConnect runs in its own goroutine after every (re)connection, once
	// the subscriptions are in place. Its context is cancelled when that
	// connection is lost or the client closed.
	OnConnect func(ctx context.Context, c *Client)
	Logger    *slog.Logger // default slog.Default()
}

// Message is one MQTT application message.
type Message struct {
	Topic    string
	Payload  []byte
	QoS      byte
	Retained bool
	// done, when set, counts down the handlers still to run; the last one
	// acknowledges the message (Options.AckAfterHandlers).
	done *pendingAck
}

// pendingAck acknowledges a message once its last handler returned.
type pendingAck struct {
	left atomic.Int32
	ack  func()
}

func (p *pendingAck) handled() {
	if p != nil && p.left.Add(-1) == 0 {
		p.ack()
	}
}

const (
	defaultKeepAlive      = 30 * time.Second
	defaultConnectTimeout = 10 * time.Second
	defaultMaxReconnect   = 10 * time.Second
	// publishTimeout bounds the wait for one publish's completion (PUBACK
	// for QoS 1) and for a SUBACK.
	publishTimeout = 10 * time.Second
	// writeTimeout bounds one socket write and paho's hand-over of a
	// publish to its writer; a reconnect waits for such hand-overs.
	writeTimeout = 3 * time.Second
)

// brokerURL checks the broker URL and returns it with the default port
// added, and whether it is a TLS one.
func brokerURL(s string) (*url.URL, bool, error) {
	if s == "" {
		return nil, false, errors.New("broker: empty (want e.g. tcp://host:1883 or ssl://host:8883)")
	}
	if !strings.Contains(s, "://") {
		return nil, false, fmt.Errorf("broker %q: no scheme (want tcp://, mqtt://, ssl://, tls://, mqtts://, ws:// or wss://)", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return nil, false, fmt.Errorf("broker %q: %w", s, err)
	}
	var port string
	var secure bool
	switch strings.ToLower(u.Scheme) {
	case "tcp", "mqtt":
		port = "1883"
	case "ssl", "tls", "mqtts":
		port, secure = "8883", true
	case "ws":
	case "wss":
		secure = true
	default:
		return nil, false, fmt.Errorf("broker %q: unsupported scheme %q (want tcp, mqtt, ssl, tls, mqtts, ws or wss)", s, u.Scheme)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	if u.Hostname() == "" {
		return nil, false, fmt.Errorf("broker %q: no host", s)
	}
	if u.User != nil {
		return nil, false, fmt.Errorf("broker %q: put credentials in Username/Password, not in the URL", redact(u))
	}
	if port != "" {
		if u.Path != "" && u.Path != "/" {
			return nil, false, fmt.Errorf("broker %q: unexpected path %q", s, u.Path)
		}
		u.Path = ""
		if u.Port() == "" {
			u.Host = net.JoinHostPort(u.Hostname(), port)
		}
	}
	return u, secure, nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	return c.String()
}

// LoadCA reads the PEM certificates of a CA file into a pool of roots.
func LoadCA(path string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("CA file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("CA file %s: no PEM certificate in it", path)
	}
	return pool, nil
}

// tlsConfig builds the TLS configuration, loading the files of o.
func tlsConfig(o *Options) (*tls.Config, error) {
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: o.ServerName}
	if o.CAFile != "" {
		pool, err := LoadCA(o.CAFile)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	switch {
	case o.CertFile != "" && o.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("client certificate %s / key %s: %w", o.CertFile, o.KeyFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	case o.CertFile != "":
		return nil, fmt.Errorf("client certificate %s given without KeyFile", o.CertFile)
	case o.KeyFile != "":
		return nil, fmt.Errorf("client key %s given without CertFile", o.KeyFile)
	}
	return cfg, nil
}

// TopicOK reports why t cannot be published to: empty, wildcards (+ #),
// NUL, invalid UTF-8 or too long. Nil when it can.
func TopicOK(t string) error {
	if err := topicChars(t); err != nil {
		return err
	}
	if strings.ContainsAny(t, "+#") {
		return fmt.Errorf("topic %q: wildcards (+ #) are for subscriptions, not publish", t)
	}
	return nil
}

func topicChars(t string) error {
	switch {
	case t == "":
		return errors.New("topic: empty")
	case len(t) > 65535:
		return fmt.Errorf("topic: %d bytes, more than 65535", len(t))
	case strings.IndexByte(t, 0) >= 0:
		return fmt.Errorf("topic %q: contains NUL", t)
	case !utf8.ValidString(t):
		return fmt.Errorf("topic %q: not valid UTF-8", t)
	}
	return nil
}

// filterOK reports why f is not a valid subscription filter.
func filterOK(f string) error {
	if err := topicChars(f); err != nil {
		return err
	}
	levels := strings.Split(f, "/")
	for i, l := range levels {
		if strings.Contains(l, "#") && (l != "#" || i != len(levels)-1) {
			return fmt.Errorf("filter %q: # must be the whole last level", f)
		}
		if strings.Contains(l, "+") && l != "+" {
			return fmt.Errorf("filter %q: + must be a whole level", f)
		}
	}
	if len(levels) >= 1 && levels[0] == "$share" && len(levels) < 3 {
		return fmt.Errorf("filter %q: $share/GROUP/FILTER expected", f)
	}
	return nil
}

// match reports whether topic matches the subscription filter
// (MQTT 3.1.1 section 4.7; $share/GROUP/ prefixes are stripped).
func match(filter, topic string) bool {
	if rest, ok := strings.CutPrefix(filter, "$share/"); ok {
		_, f, ok := strings.Cut(rest, "/")
		if !ok {
			return false
		}
		filter = f
	}
	// Wildcards at the first level do not match topics starting with $.
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		fl, frest, fmore := strings.Cut(filter, "/")
		if fl == "#" {
			return true
		}
		tl, trest, tmore := strings.Cut(topic, "/")
		if fl != "+" && fl != tl {
			return false
		}
		switch {
		case !fmore && !tmore:
			return true
		case !tmore:
			// "a/#" matches "a".
			return frest == "#"
		case !fmore:
			return false
		}
		filter, topic = frest, trest
	}
}

// CheckBroker reports what dialing with o would refuse before any network
// traffic: a URL without a scheme or with one MQTT does not speak, and TLS
// files that cannot be read or do not parse (config check runs it too).
func CheckBroker(o Options) (urlErr, tlsErr error) {
	if _, _, err := brokerURL(o.Broker); err != nil {
		urlErr = err
	}
	if o.CAFile != "" || o.CertFile != "" || o.KeyFile != "" {
		_, tlsErr = tlsConfig(&o)
	}
	return urlErr, tlsErr
}
