package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/streamqc/streamqc/detectors"
)

// Agent is the agent's local file (`streamqc run --config FILE`): who it is,
// where its broker is and where it keeps state. What it monitors comes from
// the fleet over MQTT; the streams listed here only run until a desired
// config has been received once (it is persisted from then on).
type Agent struct {
	// Fleet and ID name the agent in the topic tree streamqc/v1/{fleet}/{id}/...
	Fleet string `yaml:"fleet"`
	ID    string `yaml:"agent"`
	// StateDir holds the spool and the last good desired config.
	StateDir string `yaml:"state_dir"`
	// MediaDir is the only directory file inputs may be read from; empty
	// refuses every file input from the fleet.
	MediaDir string `yaml:"media_dir"`
	// Schemes lists the URL schemes a desired config may use.
	Schemes []string `yaml:"schemes"`
	// AllowLocalHosts lets inputs connect to this machine (loopback,
	// link-local, the cloud metadata address); refused by default.
	AllowLocalHosts bool   `yaml:"allow_local_hosts"`
	Broker          Broker `yaml:"broker"`
	Spool           Spool  `yaml:"spool"`
	// MetricsInterval is how often metrics are published (a fleet config may
	// change it).
	MetricsInterval Duration `yaml:"metrics_interval"`
	// StopTimeout bounds a graceful stop: clears published, spool flushed.
	StopTimeout Duration `yaml:"stop_timeout"`
	// Streams run until the first desired config arrives.
	Streams []Stream `yaml:"streams"`
	// Detectors are this agent's detector defaults, under the fleet's and the
	// desired config's (same fields as `analyze --config`).
	Detectors map[string]any `yaml:"detectors"`
}

// Broker is how the agent reaches MQTT.
type Broker struct {
	URL          string   `yaml:"url"`
	ClientID     string   `yaml:"client_id"`
	Username     string   `yaml:"username"`
	Password     string   `yaml:"password"`
	PasswordFile string   `yaml:"password_file"`
	CAFile       string   `yaml:"ca_file"`
	CertFile     string   `yaml:"cert_file"`
	KeyFile      string   `yaml:"key_file"`
	ServerName   string   `yaml:"server_name"`
	KeepAlive    Duration `yaml:"keepalive"`
}

// Spool bounds the on-disk event outbox.
type Spool struct {
	MaxBytes     int64 `yaml:"max_bytes"`
	SegmentBytes int64 `yaml:"segment_bytes"`
}

// Stream is one input in the local file; the same fields as a stream of a
// desired config.
type Stream struct {
	ID        string         `yaml:"id" json:"id"`
	URL       string         `yaml:"url" json:"url"`
	HWAccel   string         `yaml:"hwaccel" json:"hwaccel,omitempty"`
	Realtime  bool           `yaml:"realtime" json:"realtime,omitempty"`
	Loop      bool           `yaml:"loop" json:"loop,omitempty"`
	Threads   int            `yaml:"threads" json:"threads,omitempty"`
	Detectors map[string]any `yaml:"detectors" json:"detectors,omitempty"`
}

// Duration is a time.Duration written as "10s" or a number of seconds.
type Duration time.Duration

// UnmarshalYAML accepts "1m30s" or seconds.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	if v, err := time.ParseDuration(s); err == nil {
		*d = Duration(v)
		return nil
	}
	var f float64
	if err := n.Decode(&f); err != nil {
		return fmt.Errorf("line %d: %q is not a duration (like 10s)", n.Line, s)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// DefaultSchemes are the inputs a fleet may configure: network sources, and
// files below MediaDir.
var DefaultSchemes = []string{"udp", "rtp", "srt", "rtmp", "rtmps", "rtsp", "rtsps", "http", "https", "file"}

// DefaultAgent returns the defaults of the local file.
func DefaultAgent() Agent {
	host, _ := os.Hostname()
	return Agent{
		Fleet:           "default",
		ID:              SafeID(host),
		StateDir:        "/var/lib/streamqc",
		Schemes:         append([]string(nil), DefaultSchemes...),
		Broker:          Broker{URL: "tcp://127.0.0.1:1883", KeepAlive: Duration(30 * time.Second)},
		Spool:           Spool{MaxBytes: 256 << 20, SegmentBytes: 4 << 20},
		MetricsInterval: Duration(10 * time.Second),
		StopTimeout:     Duration(5 * time.Second),
	}
}

// SafeID makes a topic-safe id from a host name.
func SafeID(s string) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			b.WriteRune(r)
		default:
			b.WriteByte('-')
		}
	}
	out := strings.Trim(b.String(), "-.")
	if len(out) > 64 {
		out = out[:64]
	}
	if out == "" {
		return "agent"
	}
	return out
}

// LoadAgent reads the local file over the defaults. Unknown keys are errors
// naming their line.
func LoadAgent(path string) (Agent, error) {
	a := DefaultAgent()
	b, err := os.ReadFile(path)
	if err != nil {
		return a, fmt.Errorf("config: %w", err)
	}
	if len(b) > maxConfigSize {
		return a, fmt.Errorf("config %s: larger than %d bytes", path, maxConfigSize)
	}
	if err := ParseAgent(b, &a); err != nil {
		return a, fmt.Errorf("config %s: %w", path, err)
	}
	return a, nil
}

// ParseAgent overlays a YAML document on a and checks the result.
func ParseAgent(b []byte, a *Agent) error {
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(a); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if a.Broker.PasswordFile != "" {
		p, err := os.ReadFile(a.Broker.PasswordFile)
		if err != nil {
			return fmt.Errorf("broker.password_file: %w", err)
		}
		a.Broker.Password = strings.TrimSpace(string(p))
	}
	return a.Validate()
}

// Validate names the first field that is wrong.
func (a *Agent) Validate() error {
	if err := CheckID(a.Fleet); err != nil {
		return fmt.Errorf("fleet: %w", err)
	}
	if err := CheckID(a.ID); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if a.ID == "config" {
		return fmt.Errorf("agent: %q is reserved (the fleet's config topic)", a.ID)
	}
	if a.StateDir == "" {
		return errors.New("state_dir: required")
	}
	if a.Broker.URL == "" {
		return errors.New("broker.url: required")
	}
	if (a.Broker.CertFile == "") != (a.Broker.KeyFile == "") {
		return errors.New("broker.cert_file and broker.key_file: set both or neither")
	}
	if a.Spool.MaxBytes < 1<<20 {
		return fmt.Errorf("spool.max_bytes: %d is below 1 MiB", a.Spool.MaxBytes)
	}
	if a.Spool.SegmentBytes < 64<<10 || a.Spool.SegmentBytes*2 > a.Spool.MaxBytes {
		return fmt.Errorf("spool.segment_bytes: %d must be at least 64 KiB and at most half of spool.max_bytes", a.Spool.SegmentBytes)
	}
	if a.MetricsInterval < Duration(time.Second) {
		return errors.New("metrics_interval: at least 1s")
	}
	if a.StopTimeout <= 0 {
		return errors.New("stop_timeout: must be positive")
	}
	for i, s := range a.Schemes {
		if !contains(DefaultSchemes, s) {
			return fmt.Errorf("schemes[%d]: %q is not a supported input scheme (%s)", i, s, strings.Join(DefaultSchemes, ", "))
		}
	}
	if _, err := a.DetectorDefaults(); err != nil {
		return err
	}
	return nil
}

// DetectorDefaults returns the detector defaults of this file as JSON (nil
// when none), which the fleet config merges under its own.
func (a *Agent) DetectorDefaults() (json.RawMessage, error) {
	if a.Detectors == nil {
		return nil, nil
	}
	b, err := json.Marshal(a.Detectors)
	if err != nil {
		return nil, fmt.Errorf("detectors: %w", err)
	}
	cfg := detectors.DefaultConfig()
	if err := MergeJSON(&cfg, b); err != nil {
		return nil, fmt.Errorf("detectors: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detectors: %w", err)
	}
	return b, nil
}

// CheckID accepts topic-safe names: letters, digits, '.', '_' and '-', 1 to
// 64 characters, starting with a letter or digit.
func CheckID(s string) error {
	if s == "" || len(s) > 64 {
		return fmt.Errorf("%q: must be 1 to 64 characters", s)
	}
	for i, r := range s {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || i > 0 && (r == '-' || r == '_' || r == '.')
		if !ok {
			return fmt.Errorf("%q: only letters, digits, '.', '_' and '-' (not first)", s)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
