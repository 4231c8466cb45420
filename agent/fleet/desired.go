package fleet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/schema"
)

// MaxDocument bounds a desired document.
const MaxDocument = 1 << 20

// Desired is the config operators want one agent to run.
type Desired struct {
	Version   int64           `json:"version"`
	Streams   []config.Stream `json:"streams"`
	Detectors json.RawMessage `json:"detectors,omitempty"`
	Publish   *Publish        `json:"publish,omitempty"`
}

// FleetDesired is the fleet-wide defaults, merged under each agent's own.
type FleetDesired struct {
	Version   int64           `json:"version"`
	Detectors json.RawMessage `json:"detectors,omitempty"`
	Publish   *Publish        `json:"publish,omitempty"`
}

// Publish settings.
type Publish struct {
	MetricsInterval float64 `json:"metrics_interval,omitempty"` // seconds
}

// Policy is what the local file allows a desired config to do.
type Policy struct {
	// MediaDir is the only directory file inputs may name ("" refuses files).
	MediaDir string
	// Schemes allowed for inputs.
	Schemes []string
	// Detectors are the agent's own detector defaults (JSON), lowest layer
	// above the built-in defaults.
	Detectors json.RawMessage
	// MetricsInterval applies unless a document sets one.
	MetricsInterval time.Duration
	// AllowLocalHosts lets inputs connect to this machine (loopback,
	// link-local, the cloud metadata address); refused by default.
	AllowLocalHosts bool
}

// Effective is what the agent runs: the merge of its policy, the fleet
// defaults and its desired config.
type Effective struct {
	Streams         []supervisor.StreamConfig
	MetricsInterval time.Duration
}

// ParseDesired checks a document against its schema and decodes it.
func ParseDesired(s *schema.Set, b []byte) (Desired, error) {
	var d Desired
	if err := parse(s, schema.Desired, b, &d); err != nil {
		return d, err
	}
	return d, nil
}

// ParseFleet checks a fleet-wide document against its schema and decodes it.
func ParseFleet(s *schema.Set, b []byte) (FleetDesired, error) {
	var d FleetDesired
	if err := parse(s, schema.FleetDesired, b, &d); err != nil {
		return d, err
	}
	return d, nil
}

func parse(s *schema.Set, name string, b []byte, v any) error {
	if len(b) > MaxDocument {
		return fmt.Errorf("document of %d bytes is larger than %d", len(b), MaxDocument)
	}
	if err := s.Validate(name, b); err != nil {
		return fmt.Errorf("schema: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	return nil
}

// Resolve merges the layers into per-stream settings and checks every field
// the schema cannot: unique ids, input URLs against the policy, detector
// values. The error names the field.
func Resolve(p Policy, f *FleetDesired, d *Desired) (Effective, error) {
	eff := Effective{MetricsInterval: p.MetricsInterval}
	base := detectors.DefaultConfig()
	type layer struct {
		name string
		raw  json.RawMessage
	}
	layers := []layer{{"agent file detectors", p.Detectors}}
	if f != nil {
		layers = append(layers, layer{"fleet detectors", f.Detectors})
		if f.Publish != nil && f.Publish.MetricsInterval > 0 {
			eff.MetricsInterval = time.Duration(f.Publish.MetricsInterval * float64(time.Second))
		}
	}
	layers = append(layers, layer{"detectors", d.Detectors})
	if d.Publish != nil && d.Publish.MetricsInterval > 0 {
		eff.MetricsInterval = time.Duration(d.Publish.MetricsInterval * float64(time.Second))
	}
	for _, l := range layers {
		if len(l.raw) == 0 || string(l.raw) == "null" {
			continue
		}
		if err := config.MergeJSON(&base, l.raw); err != nil {
			return eff, fmt.Errorf("%s: %w", l.name, err)
		}
	}
	seen := map[string]bool{}
	for i, s := range d.Streams {
		field := fmt.Sprintf("streams[%d]", i)
		if err := config.CheckID(s.ID); err != nil {
			return eff, fmt.Errorf("%s.id: %w", field, err)
		}
		if seen[s.ID] {
			return eff, fmt.Errorf("%s.id: %q appears twice", field, s.ID)
		}
		seen[s.ID] = true
		u, protocols, err := CheckURL(p, s.URL)
		if err != nil {
			return eff, fmt.Errorf("%s.url: %w", field, err)
		}
		cfg := base
		if len(s.Detectors) > 0 {
			raw, err := json.Marshal(s.Detectors)
			if err != nil {
				return eff, fmt.Errorf("%s.detectors: %w", field, err)
			}
			if err := config.MergeJSON(&cfg, raw); err != nil {
				return eff, fmt.Errorf("%s.detectors: %w", field, err)
			}
		}
		if err := cfg.Validate(); err != nil {
			return eff, fmt.Errorf("%s.detectors: %w", field, err)
		}
		hw := s.HWAccel
		switch hw {
		case "":
			hw = "auto"
		case "auto", "none", "cuda", "vaapi", "qsv":
		default:
			return eff, fmt.Errorf("%s.hwaccel: %q is not auto, none, cuda, vaapi or qsv", field, hw)
		}
		if s.Threads < 0 || s.Threads > 64 {
			return eff, fmt.Errorf("%s.threads: %d is not between 0 and 64", field, s.Threads)
		}
		sc := supervisor.StreamConfig{
			ID: s.ID,
			Media: media.Options{
				URL: u, HWAccel: hw, Realtime: s.Realtime, Threads: s.Threads,
				Protocols: protocols, Video: media.TrackFirst, Audio: media.TrackFirst,
			},
			Loop:      s.Loop,
			Detectors: cfg,
		}
		if protocols == "file" {
			// Playlists and lists of files would open other files: media
			// containers only. The path is checked again before every open
			// (a link may have changed, the file may come later).
			sc.Media.Formats = media.FileFormats
			dir, path := p.MediaDir, strings.TrimPrefix(u, "file:")
			sc.Precheck = func() error {
				_, err := mediaPath(dir, path, true)
				return err
			}
		}
		eff.Streams = append(eff.Streams, sc)
	}
	return eff, nil
}

// protocols FFmpeg may use for an input of each scheme, everything it opens
// from there included (HLS segments and keys, RTSP's RTP): never file, pipe,
// concat, subfile, data or any other local trick.
var protocols = map[string]string{
	"udp":   "udp",
	"rtp":   "rtp,udp",
	"srt":   "srt",
	"rtmp":  "rtmp,tcp",
	"rtmps": "rtmps,tls,tcp",
	"rtsp":  "rtsp,rtp,udp,tcp",
	"rtsps": "rtsps,rtsp,rtp,udp,tcp,tls",
	"http":  "http,https,tcp,tls,crypto,httpproxy",
	"https": "https,http,tls,tcp,crypto,httpproxy",
	"file":  "file",
}

// CheckURL accepts an input URL the policy allows and returns it (a file
// path made absolute and resolved) with the FFmpeg protocol whitelist for it.
func CheckURL(p Policy, raw string) (string, string, error) {
	if raw == "" || len(raw) > 2048 {
		return "", "", fmt.Errorf("must be 1 to 2048 characters")
	}
	for _, r := range raw {
		if r < 0x21 || r == 0x7f {
			return "", "", fmt.Errorf("control characters or spaces are not allowed")
		}
	}
	scheme := "file"
	if i := strings.Index(raw, ":"); i > 0 && !strings.HasPrefix(raw, "/") && !strings.HasPrefix(raw, ".") {
		scheme = strings.ToLower(raw[:i])
	}
	allowed := false
	for _, s := range p.Schemes {
		allowed = allowed || s == scheme
	}
	if _, known := protocols[scheme]; !known || !allowed {
		return "", "", fmt.Errorf("scheme %q is not allowed (allowed: %s)", scheme, strings.Join(p.Schemes, ", "))
	}
	if scheme == "file" {
		path, err := mediaPath(p.MediaDir, raw, false)
		if err != nil {
			return "", "", err
		}
		return path, protocols["file"], nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", "", fmt.Errorf("not a URL: %w", err)
	}
	if u.Opaque != "" || u.Host == "" {
		return "", "", fmt.Errorf("%s URL needs scheme://host", scheme)
	}
	host := u.Hostname()
	if host == "" {
		return "", "", fmt.Errorf("%s URL needs a host", scheme)
	}
	if ip := net.ParseIP(host); ip == nil && strings.ContainsAny(host, "/\\") {
		return "", "", fmt.Errorf("host %q is not a host name", host)
	}
	if err := checkQuery(scheme, u.Query()); err != nil {
		return "", "", err
	}
	if outbound[scheme] && !p.AllowLocalHosts && localHost(host) {
		return "", "", fmt.Errorf("host %q is this machine or its link (loopback, link-local, metadata service): refused unless allow_local_hosts is set", host)
	}
	// FFmpeg matches protocol names case-sensitively.
	return scheme + raw[len(scheme):], protocols[scheme], nil
}

// outbound schemes make the agent connect to the host; for udp, rtp and srt
// in listener mode the host is an address to receive on.
var outbound = map[string]bool{"http": true, "https": true, "rtsp": true, "rtsps": true, "rtmp": true, "rtmps": true, "srt": true}

func localHost(host string) bool {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	if h == "localhost" || strings.HasSuffix(h, ".localhost") || h == "metadata.google.internal" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && LocalIP(ip)
}

// LocalIP reports whether ip is this machine or its link: loopback,
// link-local (the cloud metadata service 169.254.169.254 among them),
// unspecified, or EC2's IPv6 metadata address.
func LocalIP(ip net.IP) bool {
	return ip.IsLoopback() || ip.IsLinkLocalUnicast() || ip.IsUnspecified() || ip.IsLinkLocalMulticast() ||
		ip.Equal(net.ParseIP("fd00:ec2::254"))
}

// queryLimit is an FFmpeg option a URL may carry, with an upper bound for
// numbers (0: no number) and the values allowed for words (nil: any).
type queryLimit struct {
	max    int64
	values []string
}

// queryOptions are what udp, rtp and srt URLs may set through their query
// (FFmpeg reads options from it for these protocols only): the receive side
// of a monitoring probe, bounded so one stream cannot take the box's memory,
// never a listening socket or a port shared with another process.
var queryOptions = map[string]map[string]queryLimit{
	"udp": {"overrun_nonfatal": {max: 1}, "fifo_size": {max: 1 << 20}, "buffer_size": {max: 64 << 20}, "timeout": {max: 60_000_000},
		"localaddr": {}, "sources": {}, "block": {}, "pkt_size": {max: 65535}},
	"rtp": {"overrun_nonfatal": {max: 1}, "fifo_size": {max: 1 << 20}, "buffer_size": {max: 64 << 20}, "timeout": {max: 60_000_000},
		"localaddr": {}, "sources": {}, "block": {}, "pkt_size": {max: 65535}},
	"srt": {"mode": {values: []string{"caller"}}, "latency": {max: 10_000_000}, "rcvlatency": {max: 10_000_000}, "peerlatency": {max: 10_000_000},
		"passphrase": {}, "pbkeylen": {max: 32}, "streamid": {}, "rcvbuf": {max: 64 << 20}, "timeout": {max: 60_000_000},
		"connect_timeout": {max: 60_000}, "transtype": {values: []string{"live"}}, "payload_size": {max: 1456}},
}

func checkQuery(scheme string, q url.Values) error {
	allowed, parsed := queryOptions[scheme]
	if !parsed {
		return nil // FFmpeg does not read options from these URLs' queries
	}
	for k, vs := range q {
		lim, ok := allowed[k]
		if !ok {
			return fmt.Errorf("option %q is not allowed in a %s URL", k, scheme)
		}
		for _, v := range vs {
			if lim.values != nil && !slices.Contains(lim.values, v) {
				return fmt.Errorf("option %s=%q: allowed %s", k, v, strings.Join(lim.values, ", "))
			}
			if lim.max > 0 {
				n, err := strconv.ParseInt(v, 10, 64)
				if err != nil || n < 0 || n > lim.max {
					return fmt.Errorf("option %s=%q: a number from 0 to %d", k, v, lim.max)
				}
			}
		}
	}
	return nil
}

// mediaPath resolves a file input and refuses anything outside dir, symbolic
// links out of it included. A file that does not exist (yet) is accepted
// when its path is inside dir, unless mustExist.
func mediaPath(dir, raw string, mustExist bool) (string, error) {
	if dir == "" {
		return "", fmt.Errorf("file inputs are refused: the agent has no media_dir")
	}
	p := raw
	if strings.HasPrefix(strings.ToLower(p), "file:") {
		u, err := url.Parse(p)
		if err != nil {
			return "", fmt.Errorf("not a file URL: %w", err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return "", fmt.Errorf("file URL with host %q", u.Host)
		}
		p = u.Path
		if p == "" {
			p = u.Opaque
		}
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(dir, p)
	}
	p = filepath.Clean(p)
	if !within(filepath.Clean(dir), p) {
		return "", fmt.Errorf("file input %s is outside media_dir %s", p, dir)
	}
	root, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return "", fmt.Errorf("media_dir: %w", err)
	}
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, os.ErrNotExist) && !mustExist {
		if _, lerr := os.Lstat(p); errors.Is(lerr, os.ErrNotExist) {
			return "file:" + p, nil // not there yet: checked again before each open
		}
	}
	if err != nil {
		return "", fmt.Errorf("file input: %w", err)
	}
	if !within(root, real) {
		return "", fmt.Errorf("file input %s is outside media_dir %s (through a link)", p, dir)
	}
	st, err := os.Stat(real)
	if err != nil {
		return "", fmt.Errorf("file input: %w", err)
	}
	if !st.Mode().IsRegular() {
		return "", fmt.Errorf("file input %s is not a regular file", p)
	}
	return "file:" + real, nil
}

func within(root, p string) bool {
	rel, err := filepath.Rel(root, p)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator)) && !filepath.IsAbs(rel)
}
