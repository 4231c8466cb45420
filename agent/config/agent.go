package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
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
	// Firmware is how this box takes over-the-air updates.
	Firmware Firmware `yaml:"firmware"`
	// Config is how far desired documents from the broker are trusted.
	Config FleetConfig `yaml:"config"`
	// Thumbnails are the JPEGs of alarms' pictures and the live ones.
	Thumbnails Thumbnails `yaml:"thumbnails"`
}

// Firmware is the local, never remote, part of over-the-air updates: which
// keys a bundle must be signed by, how large it may be, how long a new
// version has to prove itself healthy.
type Firmware struct {
	// TrustedKeys are Ed25519 public key files (`streamqc firmware keygen`);
	// none: every update job is refused.
	TrustedKeys []string `yaml:"trusted_keys"`
	// MaxBundleBytes bounds a bundle (download and extraction).
	MaxBundleBytes int64 `yaml:"max_bundle_bytes"`
	// HealthDeadline is how long a new version has to be connected, have
	// its config applied and every stream decoding (a job may set its own).
	HealthDeadline Duration `yaml:"health_deadline"`
	// Flavor is the build this box runs: cpu or cuda.
	Flavor string `yaml:"flavor"`
	// Downgrades: "job" honours a job's allow_downgrade, "never" refuses
	// every older version whatever the job says.
	Downgrades string `yaml:"downgrades"`
	// CAFile holds the roots https bundle URLs are checked against (empty:
	// the system's).
	CAFile string `yaml:"ca_file"`
	// StallTimeout fails a job whose download makes no progress for this
	// long (a streamer gone, a server that stopped answering), so that the
	// jobs queued behind it run.
	StallTimeout Duration `yaml:"stall_timeout"`
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
	// Identity is what must name this agent on the broker (see
	// CheckIdentity): auto (default), client_id or none.
	Identity string `yaml:"identity"`
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

// UnmarshalYAML accepts "1m30s" or seconds. A bad value is a *yaml.TypeError,
// so the decoder goes on and reports the other problems of the file too.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return err
	}
	v, err := parseDuration(s)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %v", n.Line, err)}}
	}
	*d = Duration(v)
	return nil
}

// parseDuration reads "1m30s" or a number of seconds.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if v, err := time.ParseDuration(s); err == nil {
		return v, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > float64(math.MaxInt64/int64(time.Second)) {
		return 0, fmt.Errorf("%q is not a duration (like 10s)", s)
	}
	return time.Duration(f * float64(time.Second)), nil
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
		Broker:          Broker{URL: "tcp://127.0.0.1:1883", KeepAlive: Duration(30 * time.Second), Identity: IdentityAuto},
		Spool:           Spool{MaxBytes: 256 << 20, SegmentBytes: 4 << 20},
		MetricsInterval: Duration(10 * time.Second),
		StopTimeout:     Duration(5 * time.Second),
		Firmware: Firmware{
			MaxBundleBytes: 512 << 20, HealthDeadline: Duration(5 * time.Minute), Flavor: "cpu", Downgrades: "job",
			StallTimeout: Duration(time.Hour),
		},
		Thumbnails: DefaultThumbnails(),
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

// LoadAgent reads the local file over the defaults, then applies the
// STREAMQC_* environment overrides (see ApplyEnv) and checks the result.
// Every problem is reported (errors.Join), each naming its field or line.
func LoadAgent(path string) (Agent, error) {
	return LoadAgentEnv(path, os.LookupEnv)
}

// LoadAgentEnv is LoadAgent with the environment given by lookup (nil: none).
func LoadAgentEnv(path string, lookup func(string) (string, bool)) (Agent, error) {
	a := DefaultAgent()
	b, err := os.ReadFile(path)
	if err != nil {
		return a, fmt.Errorf("config: %w", err)
	}
	if err := ParseAgentEnv(b, &a, lookup); err != nil {
		return a, fmt.Errorf("config %s: %w", path, err)
	}
	return a, nil
}

// ParseAgent overlays a YAML document on a and checks the result (no
// environment overrides).
func ParseAgent(b []byte, a *Agent) error {
	return ParseAgentEnv(b, a, nil)
}

// ParseAgentEnv overlays a YAML document on a, then the environment
// overrides that lookup finds (nil: none), reads broker.password_file unless
// a password came from the environment, and checks the result. The error
// joins every problem, each a *FieldError; a document that is not YAML is
// one problem and nothing else is checked.
func ParseAgentEnv(b []byte, a *Agent, lookup func(string) (string, bool)) error {
	if len(b) > maxConfigSize {
		return &FieldError{Err: fmt.Errorf("larger than %d bytes", maxConfigSize)}
	}
	var errs []error
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(a); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return &FieldError{Err: err}
		}
		errs = append(errs, yamlProblems(b, te)...)
	}
	if err := ApplyEnv(a, lookup); err != nil {
		errs = append(errs, err)
	}
	if a.Broker.PasswordFile != "" {
		p, err := os.ReadFile(a.Broker.PasswordFile)
		if err != nil {
			errs = append(errs, &FieldError{Path: "broker.password_file", Err: err})
		} else {
			a.Broker.Password = strings.TrimSpace(string(p))
		}
	}
	if err := a.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// FieldError is one problem of the agent's file: the field it is about
// ("broker.url", "streams[2].id", an environment variable), the line where
// the YAML decoder found it, and what is wrong.
type FieldError struct {
	Path string // empty when the problem is about the whole document
	Line int    // 0 when unknown
	Err  error
}

func (e *FieldError) Error() string {
	var b strings.Builder
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d: ", e.Line)
	}
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *FieldError) Unwrap() error { return e.Err }

// Problems lists the separate problems of an error from LoadAgent,
// ParseAgent or Validate: the leaves of its errors.Join trees, in order.
func Problems(err error) []error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Problems(e)...)
		}
		return out
	}
	if _, ok := err.(*FieldError); !ok {
		// A single wrapper like "config FILE: %w" around a join.
		if inner := errors.Unwrap(err); inner != nil {
			if _, joined := inner.(interface{ Unwrap() []error }); joined {
				return Problems(inner)
			}
		}
	}
	return []error{err}
}

// Validate reports every field that is wrong, each a *FieldError, joined.
func (a *Agent) Validate() error {
	var errs []error
	add := func(path string, err error) {
		errs = append(errs, &FieldError{Path: path, Err: err})
	}
	addf := func(path, format string, args ...any) {
		add(path, fmt.Errorf(format, args...))
	}
	if err := CheckID(a.Fleet); err != nil {
		add("fleet", err)
	}
	if err := CheckID(a.ID); err != nil {
		add("agent", err)
	} else if a.ID == "config" {
		addf("agent", "%q is reserved (the fleet's config topic)", a.ID)
	}
	if a.StateDir == "" {
		addf("state_dir", "required")
	}
	if a.Broker.URL == "" {
		// The rest of its checks are agent/mqtt's, when it connects.
		addf("broker.url", "required")
	}
	switch {
	case a.Broker.CertFile != "" && a.Broker.KeyFile == "":
		addf("broker.key_file", "required with broker.cert_file (set both or neither)")
	case a.Broker.CertFile == "" && a.Broker.KeyFile != "":
		addf("broker.cert_file", "required with broker.key_file (set both or neither)")
	}
	switch a.Broker.Identity {
	case "", IdentityAuto, IdentityClientID, IdentityNone:
	default:
		addf("broker.identity", "%q is not auto, client_id or none", a.Broker.Identity)
	}
	for i, k := range a.Config.TrustedKeys {
		if strings.TrimSpace(k) == "" {
			addf(fmt.Sprintf("config.trusted_keys[%d]", i), "empty path")
		}
	}
	if ka := time.Duration(a.Broker.KeepAlive); ka != 0 && ka < time.Second {
		addf("broker.keepalive", "%s: 0 (30s) or at least 1s", ka)
	}
	if a.Spool.MaxBytes < 1<<20 {
		addf("spool.max_bytes", "%d is below 1 MiB", a.Spool.MaxBytes)
	}
	if a.Spool.SegmentBytes < 64<<10 || a.Spool.SegmentBytes > a.Spool.MaxBytes/2 {
		addf("spool.segment_bytes", "%d must be at least 64 KiB and at most half of spool.max_bytes", a.Spool.SegmentBytes)
	}
	if a.MetricsInterval < Duration(time.Second) {
		addf("metrics_interval", "%s: at least 1s", time.Duration(a.MetricsInterval))
	}
	if a.StopTimeout <= 0 {
		addf("stop_timeout", "%s: must be positive", time.Duration(a.StopTimeout))
	}
	for i, s := range a.Schemes {
		if !contains(DefaultSchemes, s) {
			addf(fmt.Sprintf("schemes[%d]", i), "%q is not a supported input scheme (%s)", s, strings.Join(DefaultSchemes, ", "))
		}
	}
	for i, k := range a.Firmware.TrustedKeys {
		if strings.TrimSpace(k) == "" {
			addf(fmt.Sprintf("firmware.trusted_keys[%d]", i), "empty path")
		}
	}
	if a.Firmware.MaxBundleBytes < 1<<20 || a.Firmware.MaxBundleBytes > 8<<30 {
		addf("firmware.max_bundle_bytes", "%d: between 1 MiB and 8 GiB", a.Firmware.MaxBundleBytes)
	}
	if d := time.Duration(a.Firmware.HealthDeadline); d < 5*time.Second || d > 24*time.Hour {
		addf("firmware.health_deadline", "%s: between 5s and 24h", d)
	}
	if a.Firmware.Flavor != "cpu" && a.Firmware.Flavor != "cuda" {
		addf("firmware.flavor", "%q is not cpu or cuda", a.Firmware.Flavor)
	}
	if d := time.Duration(a.Firmware.StallTimeout); d < time.Second || d > 7*24*time.Hour {
		addf("firmware.stall_timeout", "%s: between 1s and 168h", d)
	}
	if a.Firmware.Downgrades != "job" && a.Firmware.Downgrades != "never" {
		addf("firmware.downgrades", "%q is not job or never", a.Firmware.Downgrades)
	}
	errs = append(errs, a.Thumbnails.problems()...)
	base, derrs := mergeDetectors(detectors.DefaultConfig(), a.Detectors, "detectors")
	errs = append(errs, derrs...)
	if len(derrs) > 0 {
		// Streams are checked over the built-in defaults, so that the
		// problems above are not repeated for each of them.
		base = detectors.DefaultConfig()
	}
	seen := map[string]int{}
	for i, s := range a.Streams {
		field := fmt.Sprintf("streams[%d]", i)
		if err := CheckID(s.ID); err != nil {
			add(field+".id", err)
		} else if j, dup := seen[s.ID]; dup {
			addf(field+".id", "%q appears twice (also streams[%d])", s.ID, j)
		} else {
			seen[s.ID] = i
		}
		if strings.TrimSpace(s.URL) == "" {
			addf(field+".url", "required")
		}
		switch s.HWAccel {
		case "", "auto", "none", "cuda", "vaapi", "qsv":
		default:
			addf(field+".hwaccel", "%q is not auto, none, cuda, vaapi or qsv", s.HWAccel)
		}
		if s.Threads < 0 || s.Threads > 64 {
			addf(field+".threads", "%d is not between 0 and 64 (0: automatic)", s.Threads)
		}
		_, serrs := mergeDetectors(base, s.Detectors, field+".detectors")
		errs = append(errs, serrs...)
	}
	return errors.Join(errs...)
}

// mergeDetectors overlays m on base and checks the result; each problem is
// a *FieldError under path.
func mergeDetectors(base detectors.Config, m map[string]any, path string) (detectors.Config, []error) {
	if m == nil {
		return base, nil
	}
	cfg := base
	b, err := json.Marshal(m)
	if err != nil {
		return base, []error{&FieldError{Path: path, Err: err}}
	}
	if err := MergeJSON(&cfg, b); err != nil {
		return base, []error{&FieldError{Path: path, Err: err}}
	}
	problems := Problems(cfg.Validate())
	// detectors.Config.Validate walks a map: sort for a stable report.
	sort.SliceStable(problems, func(i, j int) bool { return problems[i].Error() < problems[j].Error() })
	var errs []error
	for _, e := range problems {
		errs = append(errs, &FieldError{Path: path, Err: e})
	}
	return cfg, errs
}

// yamlProblems turns the lines of a *yaml.TypeError into problems, each
// with its line and, where the document shows it, its field path.
func yamlProblems(doc []byte, te *yaml.TypeError) []error {
	var root yaml.Node
	refs := []nodeRef(nil)
	if yaml.Unmarshal(doc, &root) == nil {
		refs = walkNodes(&root, "", nil)
	}
	var errs []error
	for _, msg := range te.Errors {
		fe := &FieldError{Err: errors.New(msg)}
		var line int
		if _, err := fmt.Sscanf(msg, "line %d:", &line); err == nil && line > 0 {
			_, rest, _ := strings.Cut(msg, ": ")
			fe.Line, fe.Err = line, errors.New(rest)
			fe.Path, fe.Err = locate(refs, line, rest)
		}
		errs = append(errs, fe)
	}
	return errs
}

// nodeRef is one key or scalar value of the document and its field path.
type nodeRef struct {
	line, col int
	path      string
	key       bool
	value     string // a key's name, a scalar's value
	tag       string // "!!map" or "!!seq" for a mapping or sequence value
}

func walkNodes(n *yaml.Node, path string, refs []nodeRef) []nodeRef {
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			refs = walkNodes(c, path, refs)
		}
	case yaml.MappingNode:
		refs = append(refs, nodeRef{line: n.Line, col: n.Column, path: path, tag: "!!map"})
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := k.Value
			if path != "" {
				p = path + "." + k.Value
			}
			refs = append(refs, nodeRef{line: k.Line, col: k.Column, path: p, key: true, value: k.Value})
			refs = walkNodes(v, p, refs)
		}
	case yaml.SequenceNode:
		refs = append(refs, nodeRef{line: n.Line, col: n.Column, path: path, tag: "!!seq"})
		for i, c := range n.Content {
			refs = walkNodes(c, fmt.Sprintf("%s[%d]", path, i), refs)
		}
	case yaml.ScalarNode:
		refs = append(refs, nodeRef{line: n.Line, col: n.Column, path: path, value: n.Value})
	}
	return refs
}

// locate finds the field a decoder message on line is about: the unknown key
// it names, else the value it quotes, else the mapping or sequence it names,
// else the first thing on the line.
func locate(refs []nodeRef, line int, msg string) (string, error) {
	var cands []nodeRef
	for _, r := range refs {
		if r.line == line {
			cands = append(cands, r)
		}
	}
	if name, ok := strings.CutPrefix(msg, "field "); ok {
		if name, _, ok = strings.Cut(name, " not found in type "); ok {
			for _, r := range cands {
				if r.key && r.value == name {
					return r.path, errors.New("unknown key")
				}
			}
		}
	}
	for _, r := range cands {
		if !r.key && r.value != "" && (strings.Contains(msg, "`"+r.value+"`") || strings.Contains(msg, strconv.Quote(r.value))) {
			return r.path, errors.New(msg)
		}
	}
	for _, r := range cands {
		// "cannot unmarshal !!seq into string"
		if r.tag != "" && r.path != "" && strings.Contains(msg, "unmarshal "+r.tag+" ") {
			return r.path, errors.New(msg)
		}
	}
	best := -1
	for i, r := range cands {
		if r.path != "" && (best < 0 || r.col < cands[best].col) {
			best = i
		}
	}
	if best < 0 {
		return "", errors.New(msg)
	}
	return cands[best].path, errors.New(msg)
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
		// An unknown field must not hide the other fields' problems: they
		// are checked as if it were not there.
		errs := []error{&FieldError{Path: "detectors", Err: err}}
		lenient := detectors.DefaultConfig()
		if json.Unmarshal(b, &lenient) == nil {
			errs = append(errs, detectorProblems(lenient.Validate())...)
		}
		return nil, errors.Join(errs...)
	}
	if err := cfg.Validate(); err != nil {
		return nil, errors.Join(detectorProblems(err)...)
	}
	return b, nil
}

// detectorProblems gives each of detectors' "field: problem" messages its
// field path in this file (detectors.field).
func detectorProblems(err error) []error {
	var out []error
	for _, p := range Problems(err) {
		if name, rest, ok := strings.Cut(p.Error(), ": "); ok && !strings.Contains(name, " ") {
			out = append(out, &FieldError{Path: "detectors." + name, Err: errors.New(rest)})
			continue
		}
		out = append(out, &FieldError{Path: "detectors", Err: p})
	}
	return out
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

// WithLines gives each problem about a field of doc that has no line yet the
// line of that field in doc (the key, or for a list item the item), or of
// its nearest parent there: a field the file does not set (a required one)
// points at the section it belongs in. Problems of other kinds pass as they
// are.
func WithLines(doc []byte, problems []error) []error {
	var root yaml.Node
	if yaml.Unmarshal(doc, &root) != nil {
		return problems
	}
	lines := map[string]int{}
	for _, r := range walkNodes(&root, "", nil) {
		if _, ok := lines[r.path]; !ok && r.path != "" {
			lines[r.path] = r.line
		}
	}
	out := make([]error, len(problems))
	for i, p := range problems {
		out[i] = p
		fe, ok := p.(*FieldError)
		if !ok || fe.Line > 0 || fe.Path == "" {
			continue
		}
		for path := fe.Path; path != ""; path = parentPath(path) {
			if l, ok := lines[path]; ok {
				c := *fe
				c.Line = l
				out[i] = &c
				break
			}
		}
	}
	return out
}

// parentPath drops a path's last element: "streams[2].url" -> "streams[2]"
// -> "streams" -> "".
func parentPath(p string) string {
	if i := strings.LastIndexAny(p, ".["); i >= 0 {
		return p[:i]
	}
	return ""
}
