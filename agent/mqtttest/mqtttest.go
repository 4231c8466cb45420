// Package mqtttest runs a real Mosquitto broker for tests.
//
// Each Start launches a private mosquitto process on a free loopback port with
// its configuration, logs, certificates and persistence under t.TempDir(); it
// is stopped when the test ends, and its log is printed when the test failed.
// Without a mosquitto binary the test is skipped, unless the environment sets
// STREAMQC_REQUIRE_MOSQUITTO=1 (make test does), in which case it fails.
package mqtttest

import (
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that turns a missing mosquitto
// binary from a skip into a failure.
const RequireEnv = "STREAMQC_REQUIRE_MOSQUITTO"

// Options selects the broker's features.
type Options struct {
	// TLS makes the only listener a TLS one that requires a client
	// certificate signed by the test CA (mutual TLS); see Broker.Certs.
	TLS bool
	// Users, when set, is the only accepted username/password pairs
	// (allow_anonymous false).
	Users map[string]string
	// Persistence keeps sessions, subscriptions and queued QoS 1 messages
	// across Stop/Start.
	Persistence bool
	// ACLFile, when set, is the broker's acl_file (copied, so a test may
	// pass the packaged one): what is not granted there is denied.
	ACLFile string
	// CertIdentity (with TLS) makes the client certificate's CN the
	// username (use_identity_as_username), as a fleet with one certificate
	// per box runs; passwords are then not asked for. See Certs.Issue.
	CertIdentity bool
}

// Broker is a running (or stopped) mosquitto.
type Broker struct {
	URL   string // tcp://127.0.0.1:PORT or ssl://127.0.0.1:PORT
	Port  int
	Certs *Certs // nil unless Options.TLS

	t       testing.TB
	bin     string
	conf    string
	logPath string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{} // closed when cmd has exited
}

// Start starts a broker and registers its cleanup with t.
func Start(t testing.TB, o Options) *Broker {
	t.Helper()
	bin, err := findMosquitto()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("mosquitto not installed (%s=1): %v", RequireEnv, err)
		}
		t.Skipf("mosquitto not installed: %v", err)
	}
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	b := &Broker{
		Port:    port,
		URL:     fmt.Sprintf("tcp://127.0.0.1:%d", port),
		t:       t,
		bin:     bin,
		conf:    filepath.Join(dir, "mosquitto.conf"),
		logPath: filepath.Join(dir, "mosquitto.log"),
	}
	if o.TLS {
		if b.Certs, err = makeCerts(dir); err != nil {
			t.Fatalf("mqtttest: certificates: %v", err)
		}
		b.URL = fmt.Sprintf("ssl://127.0.0.1:%d", port)
	}
	conf, err := b.config(dir, o)
	if err != nil {
		t.Fatalf("mqtttest: %v", err)
	}
	if err := os.WriteFile(b.conf, []byte(conf), 0o600); err != nil {
		t.Fatalf("mqtttest: write config: %v", err)
	}
	t.Cleanup(func() {
		b.Stop()
		if t.Failed() {
			if data, err := os.ReadFile(b.logPath); err == nil {
				t.Logf("mosquitto log (%s):\n%s", b.URL, data)
			}
		}
	})
	b.Start()
	return b
}

func findMosquitto() (string, error) {
	if p, err := exec.LookPath("mosquitto"); err == nil {
		return p, nil
	}
	const sbin = "/usr/sbin/mosquitto"
	if _, err := os.Stat(sbin); err == nil {
		return sbin, nil
	}
	return "", errors.New("no mosquitto on PATH nor " + sbin)
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before mosquitto binds it; unlikely enough for tests.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func (b *Broker) config(dir string, o Options) (string, error) {
	var s strings.Builder
	line := func(format string, args ...any) { fmt.Fprintf(&s, format+"\n", args...) }
	// Running as root, mosquitto would switch to user "mosquitto", which cannot
	// read t.TempDir(); "root" keeps the current user (ignored when not root).
	line("user root")
	line("log_dest file %s", b.logPath)
	line("log_type error")
	line("log_type warning")
	line("log_type notice")
	line("log_type information")
	line("connection_messages true")
	line("log_timestamp_format %%H:%%M:%%S")
	// Offline persistent sessions must keep everything the tests publish
	// (default 1000). ("0", no limit, had bugs in some 2.0.x releases.)
	line("max_queued_messages 100000")
	line("max_inflight_messages 100")
	if o.Persistence {
		line("persistence true")
		line("persistence_location %s%c", dir, filepath.Separator)
		// Saved when Stop's SIGTERM ends it; a periodic autosave would rewrite
		// every queued message each time (a stall under load).
		line("autosave_interval 0")
	} else {
		line("persistence false")
	}
	line("per_listener_settings false")
	line("listener %d 127.0.0.1", b.Port)
	if o.TLS {
		line("cafile %s", b.Certs.CA)
		line("certfile %s", b.Certs.ServerCert)
		line("keyfile %s", b.Certs.ServerKey)
		line("require_certificate true")
		line("tls_version tlsv1.2")
		if o.CertIdentity {
			line("use_identity_as_username true")
		}
	}
	if o.ACLFile != "" {
		acl, err := os.ReadFile(o.ACLFile)
		if err != nil {
			return "", fmt.Errorf("acl file: %w", err)
		}
		path := filepath.Join(dir, "acl")
		if err := os.WriteFile(path, acl, 0o600); err != nil {
			return "", fmt.Errorf("acl file: %w", err)
		}
		line("acl_file %s", path)
	}
	if len(o.Users) > 0 && !o.CertIdentity {
		pw := filepath.Join(dir, "passwd")
		if err := writePasswords(pw, o.Users); err != nil {
			return "", err
		}
		line("allow_anonymous false")
		line("password_file %s", pw)
	} else if o.CertIdentity {
		line("allow_anonymous false")
	} else {
		line("allow_anonymous true")
	}
	return s.String(), nil
}

// writePasswords writes a mosquitto password file in its "$6$" format:
// base64 salt and base64 SHA-512(password || salt), as mosquitto_passwd -H
// sha512 would (so tests need no mosquitto_passwd binary).
func writePasswords(path string, users map[string]string) error {
	names := make([]string, 0, len(users))
	for u := range users {
		if u == "" || strings.ContainsAny(u, ":\n") {
			return fmt.Errorf("bad test username %q", u)
		}
		names = append(names, u)
	}
	sort.Strings(names)
	var s strings.Builder
	for _, u := range names {
		salt := make([]byte, 12)
		if _, err := rand.Read(salt); err != nil {
			return fmt.Errorf("salt: %w", err)
		}
		h := sha512.New()
		h.Write([]byte(users[u]))
		h.Write(salt)
		fmt.Fprintf(&s, "%s:$6$%s$%s\n", u,
			base64.StdEncoding.EncodeToString(salt), base64.StdEncoding.EncodeToString(h.Sum(nil)))
	}
	if err := os.WriteFile(path, []byte(s.String()), 0o600); err != nil {
		return fmt.Errorf("write password file: %w", err)
	}
	return nil
}

// Start (re)starts a stopped broker with the same port and configuration and
// waits until it accepts connections. It does nothing if it is running.
func (b *Broker) Start() {
	b.t.Helper()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd != nil {
		return
	}
	logf, err := os.OpenFile(b.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		b.t.Fatalf("mqtttest: open log: %v", err)
	}
	cmd := exec.Command(b.bin, "-c", b.conf)
	cmd.Stdout = logf // configuration errors go to stdout/stderr, not to log_dest
	cmd.Stderr = logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		b.t.Fatalf("mqtttest: start %s: %v", b.bin, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		logf.Close()
		close(done)
	}()
	b.cmd, b.done = cmd, done

	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port))
	deadline := time.Now().Add(10 * time.Second)
	for {
		conn, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			conn.Close()
			return
		}
		select {
		case <-done:
			data, _ := os.ReadFile(b.logPath)
			b.cmd = nil
			b.t.Fatalf("mqtttest: mosquitto exited at start (%v); log:\n%s", cmd.ProcessState, data)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("mqtttest: mosquitto not accepting on %s after 10s: %v", addr, err)
		}
	}
}

// Stop sends SIGTERM and waits for mosquitto to exit (with persistence on,
// it saves its database first). SIGKILL after 10 s. It does nothing if the
// broker is stopped.
func (b *Broker) Stop() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
		b.t.Errorf("mqtttest: mosquitto ignored SIGTERM for 10s, killed")
	}
	b.cmd, b.done = nil, nil
}

// Log returns what mosquitto logged so far.
func (b *Broker) Log() string {
	data, _ := os.ReadFile(b.logPath)
	return string(data)
}

// Kill sends SIGKILL and waits for mosquitto to exit: with persistence on,
// whatever it had not saved yet (everything since the last Stop, as tests
// run it without autosave) is lost, acknowledged or not, as in a crash.
// Start restarts it on the same port and persistence file. It does nothing
// if the broker is stopped.
func (b *Broker) Kill() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.cmd == nil {
		return
	}
	_ = b.cmd.Process.Kill()
	<-b.done
	b.cmd, b.done = nil, nil
}
