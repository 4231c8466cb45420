package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/consumer/dashboard"
)

const dashboardAbout = `Serves a read-only web page of a fleet, live: its agents, a mosaic of its
streams with their open alarms and pictures, and a timeline of events with
filters. One MQTT session follows the broker; pages get its updates over
Server-Sent Events.

It listens on 127.0.0.1:8090 by default. Any other address needs TLS
(--tls-cert, --tls-key) and --auth-file: a file holding the password (the
browser asks for it; any user name) or bearer token, at least 16 characters.`

func dashboardCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlags("dashboard", "[--listen ADDR] [--tls-cert F --tls-key F --auth-file F] [broker flags]",
		dashboardAbout, stdout, stderr)
	bf := addBrokerFlags(fs.FlagSet)
	listen := fs.String("listen", "127.0.0.1:8090", "address of the page; a non-loopback one needs --tls-cert, --tls-key and --auth-file")
	certFile := fs.String("tls-cert", "", "TLS certificate file (PEM)")
	keyFile := fs.String("tls-key", "", "TLS key file (PEM)")
	authFile := fs.String("auth-file", "", "file holding the password or bearer token pages must give")
	verbose := fs.Bool("v", false, "log connection changes and dropped messages to stderr")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	token, err := dashboardSecurity(*listen, *certFile, *keyFile, *authFile)
	if err != nil {
		return fs.fail("%v", err)
	}
	logger := quietLogger(*verbose)
	srv := dashboard.New(dashboard.Options{Logger: logger, Token: token})
	c, fleet, err := bf.connectWith(ctx, true, logger, func(c *mqtt.Client, fleet string) { srv.Subscribe(c, fleet) })
	if err != nil {
		fmt.Fprintf(stderr, "streamqc dashboard: %v\n", err)
		return 1
	}
	defer c.Close(time.Second)
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc dashboard: %v\n", err)
		return 1
	}
	scheme := "http"
	if *certFile != "" {
		scheme = "https"
	}
	if fleet == "" {
		fleet = "every fleet"
	}
	fmt.Fprintf(stdout, "streamqc dashboard: %s://%s/ (%s)\n", scheme, displayAddr(ln.Addr()), fleet)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	runDone := make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	err = dashboard.Serve(ctx, ln, srv.Handler(), *certFile, *keyFile, logger)
	cancel()
	<-runDone
	if err != nil {
		fmt.Fprintf(stderr, "streamqc dashboard: %v\n", err)
		return 1
	}
	return 0
}

// dashboardSecurity checks the listening address against the protection it
// has and returns the token: a loopback address may go without; any other
// needs TLS and a token read from a file (never a flag: it would show in
// ps and the shell's history).
func dashboardSecurity(listen, cert, key, authFile string) (string, error) {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return "", fmt.Errorf("--listen %q: %w", listen, err)
	}
	if (cert == "") != (key == "") {
		return "", errors.New("--tls-cert and --tls-key go together")
	}
	token := ""
	if authFile != "" {
		b, err := os.ReadFile(authFile)
		if err != nil {
			return "", fmt.Errorf("--auth-file: %w", err)
		}
		token = strings.TrimSpace(string(b))
		if len(token) < 16 {
			return "", fmt.Errorf("--auth-file %s: the password or token is %d characters, want at least 16", authFile, len(token))
		}
	}
	if !isLoopback(host) && (cert == "" || token == "") {
		return "", fmt.Errorf("--listen %s is not a loopback address: it needs --tls-cert, --tls-key and --auth-file", listen)
	}
	return token, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// displayAddr is an address for a URL.
func displayAddr(a net.Addr) string {
	if t, ok := a.(*net.TCPAddr); ok && t.IP.IsUnspecified() {
		h, _ := os.Hostname()
		return net.JoinHostPort(h, fmt.Sprint(t.Port))
	}
	return a.String()
}
