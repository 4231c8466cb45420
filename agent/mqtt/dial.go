package mqtt

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/url"
	"sync/atomic"

	paho "github.com/eclipse/paho.mqtt.golang"
)

// openConn opens the network connection for paho (its CustomOpenConnectionFn)
// so that a failure says which step failed: paho reports a TLS rejection
// only as "connection reset by peer".
func openConn(uri *url.URL, o paho.ClientOptions) (net.Conn, error) {
	ctx := context.Background()
	if o.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.ConnectTimeout)
		defer cancel()
	}
	switch uri.Scheme {
	case "ws", "wss":
		u := *uri
		u.User = nil
		var cfg *tls.Config
		if uri.Scheme == "wss" {
			cfg = o.TLSConfig
		}
		conn, err := paho.NewWebsocket(u.String(), cfg, o.ConnectTimeout, o.HTTPHeaders, o.WebsocketOptions)
		if err != nil {
			return nil, fmt.Errorf("websocket %s: %w", u.String(), err)
		}
		return conn, nil
	case "tcp", "mqtt":
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", uri.Host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", uri.Host, err)
		}
		return conn, nil
	case "ssl", "tls", "mqtts":
		var d net.Dialer
		raw, err := d.DialContext(ctx, "tcp", uri.Host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: %w", uri.Host, err)
		}
		cfg := o.TLSConfig.Clone()
		if cfg.ServerName == "" {
			cfg.ServerName = uri.Hostname()
		}
		conn := tls.Client(raw, cfg)
		if err := conn.HandshakeContext(ctx); err != nil {
			raw.Close()
			return nil, fmt.Errorf("TLS handshake with %s: %w", uri.Host, err)
		}
		return &tlsConn{Conn: conn, host: uri.Host}, nil
	}
	return nil, fmt.Errorf("unsupported scheme %q", uri.Scheme)
}

// tlsConn annotates the errors of a TLS connection that fails before the
// broker has sent anything: with TLS 1.3 the broker checks the client
// certificate after the client's handshake is over, so a refused (or
// missing) certificate shows up as a reset on the first write or read.
type tlsConn struct {
	net.Conn
	host string
	got  atomic.Bool // something was read: the broker accepted the TLS session
}

func (c *tlsConn) annotate(err error) error {
	if err == nil || c.got.Load() {
		return err
	}
	return fmt.Errorf("TLS session with %s closed by the broker before any reply (client certificate refused or missing?): %w", c.host, err)
}

func (c *tlsConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.got.Store(true)
	}
	return n, c.annotate(err)
}

func (c *tlsConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	return n, c.annotate(err)
}
