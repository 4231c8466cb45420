package fleet

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/testdata/clips"
)

func policy(t *testing.T) (Policy, string) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "ok.ts"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.ts")
	if err := os.WriteFile(outside, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "link.ts")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o750); err != nil {
		t.Fatal(err)
	}
	return Policy{MediaDir: dir, Schemes: config.DefaultSchemes, MetricsInterval: 10 * time.Second}, dir
}

func TestCheckURL(t *testing.T) {
	p, dir := policy(t)
	noFiles := p
	noFiles.MediaDir = ""
	onlyUDP := p
	onlyUDP.Schemes = []string{"udp"}
	cases := []struct {
		name  string
		p     Policy
		url   string
		bad   string // error substring; "" when accepted
		proto string
	}{
		{"udp", p, "udp://239.1.1.1:5000?overrun_nonfatal=1", "", "udp"},
		{"srt", p, "srt://10.0.0.1:9000?mode=caller", "", "srt"},
		{"hls", p, "https://cdn.example.com/live/master.m3u8", "", "https,http,tls,tcp,crypto,httpproxy"},
		{"rtsp", p, "rtsp://user:pw@cam.local/stream1", "", "rtsp,rtp,udp,tcp"},
		{"file in media dir", p, filepath.Join(dir, "ok.ts"), "", "file"},
		{"file URL in media dir", p, "file://" + filepath.Join(dir, "ok.ts"), "", "file"},
		{"relative file", p, "ok.ts", "", "file"},
		{"traversal", p, filepath.Join(dir, "..", "..", "etc", "passwd"), "outside media_dir", ""},
		{"relative traversal", p, "../../../etc/passwd", "outside media_dir", ""},
		{"symlink out", p, filepath.Join(dir, "link.ts"), "outside media_dir", ""},
		{"directory", p, filepath.Join(dir, "sub"), "not a regular file", ""},
		{"no media dir", noFiles, filepath.Join(dir, "ok.ts"), "no media_dir", ""},
		{"etc passwd", p, "file:///etc/passwd", "outside media_dir", ""},
		{"file with host", p, "file://evil/etc/passwd", "host", ""},
		{"concat", p, "concat:" + filepath.Join(dir, "ok.ts") + "|/etc/passwd", "not allowed", ""},
		{"subfile", p, "subfile,,start,0,end,0,,:/etc/passwd", "not allowed", ""},
		{"pipe", p, "pipe:0", "not allowed", ""},
		{"fd", p, "fd:3", "not allowed", ""},
		{"data", p, "data:video/mp2t;base64,AAAA", "not allowed", ""},
		{"crypto file", p, "crypto+file:///etc/passwd", "not allowed", ""},
		{"hls wrapper", p, "hls+http://x/a.m3u8", "not allowed", ""},
		{"gopher", p, "gopher://x/", "not allowed", ""},
		{"upper case scheme", p, "UDP://239.0.0.1:5000", "", "udp"},
		{"scheme not in policy", onlyUDP, "srt://x:1", "not allowed", ""},
		{"space", p, "udp://x:1 -i /etc/passwd", "control characters", ""},
		{"newline", p, "udp://x:1\n", "control characters", ""},
		{"no host", p, "udp:///path", "needs", ""},
		{"empty", p, "", "1 to 2048", ""},
		{"huge", p, "udp://" + strings.Repeat("a", 3000), "1 to 2048", ""},
		{"udp options", p, "udp://239.0.0.1:5000?overrun_nonfatal=1&fifo_size=50000&localaddr=10.0.0.2", "", "udp"},
		{"udp huge fifo", p, "udp://239.0.0.1:5000?fifo_size=100000000", "0 to", ""},
		{"udp shared port", p, "udp://239.0.0.1:5000?localport=5000&reuse=1", "not allowed", ""},
		{"srt listener", p, "srt://0.0.0.0:9000?mode=listener", "allowed caller", ""},
		{"srt huge buffer", p, "srt://10.0.0.1:9000?rcvbuf=2000000000", "0 to", ""},
		{"loopback http", p, "http://127.0.0.1:1883/", "allow_local_hosts", ""},
		{"ipv6 loopback", p, "http://[::1]/x.m3u8", "allow_local_hosts", ""},
		{"metadata service", p, "http://169.254.169.254/latest/meta-data/", "allow_local_hosts", ""},
		{"localhost rtsp", p, "rtsp://localhost/cam", "allow_local_hosts", ""},
		{"local udp receive", p, "udp://127.0.0.1:5000", "", "udp"},
		{"local allowed", Policy{Schemes: p.Schemes, AllowLocalHosts: true}, "http://127.0.0.1:8080/live.m3u8", "", "http,https,tcp,tls,crypto,httpproxy"},
		{"missing file later", p, filepath.Join(dir, "later.ts"), "", "file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			u, proto, err := CheckURL(c.p, c.url)
			if c.bad == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if proto != c.proto {
					t.Fatalf("protocols %q, want %q", proto, c.proto)
				}
				if i := strings.Index(u, ":"); u[:i] != strings.ToLower(u[:i]) {
					t.Fatalf("scheme of %q not lower case for FFmpeg", u)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.bad) {
				t.Fatalf("error %v, want one saying %q", err, c.bad)
			}
		})
	}
}

func TestResolveLayers(t *testing.T) {
	p, _ := policy(t)
	p.Detectors = json.RawMessage(`{"black":{"min_duration":5},"silence":{"min_duration":4}}`)
	f := &FleetDesired{Version: 2, Detectors: json.RawMessage(`{"black":{"min_duration":6},"freeze":{"min_duration":7}}`),
		Publish: &Publish{MetricsInterval: 30}}
	d := &Desired{Version: 3, Detectors: json.RawMessage(`{"freeze":{"min_duration":8}}`), Streams: []config.Stream{
		{ID: "a", URL: "udp://239.0.0.1:1"},
		{ID: "b", URL: "udp://239.0.0.1:2", HWAccel: "cuda", Detectors: map[string]any{"black": map[string]any{"min_duration": 9.0}}},
	}}
	eff, err := Resolve(p, f, d)
	if err != nil {
		t.Fatal(err)
	}
	a, b := eff.Streams[0], eff.Streams[1]
	for _, c := range []struct {
		name      string
		got, want float64
	}{
		{"agent file layer", a.Detectors.Silence.MinDuration, 4},
		{"fleet over agent file", a.Detectors.Black.MinDuration, 6},
		{"desired over fleet", a.Detectors.Freeze.MinDuration, 8},
		{"stream over all", b.Detectors.Black.MinDuration, 9},
		{"metrics interval", eff.MetricsInterval.Seconds(), 30},
	} {
		if c.got != c.want {
			t.Errorf("%s: %v, want %v", c.name, c.got, c.want)
		}
	}
	if a.Media.HWAccel != "auto" || b.Media.HWAccel != "cuda" || a.Media.Protocols != "udp" {
		t.Errorf("media options: %+v / %+v", a.Media, b.Media)
	}
	bad := []struct {
		name string
		d    Desired
		want string
	}{
		{"duplicate id", Desired{Version: 4, Streams: []config.Stream{{ID: "a", URL: "udp://x:1"}, {ID: "a", URL: "udp://x:2"}}}, "streams[1].id"},
		{"bad url", Desired{Version: 4, Streams: []config.Stream{{ID: "a", URL: "pipe:0"}}}, "streams[0].url"},
		{"unknown detector field", Desired{Version: 4, Streams: []config.Stream{{ID: "a", URL: "udp://x:1", Detectors: map[string]any{"black": map[string]any{"nosuch": 1}}}}}, "streams[0].detectors"},
		{"invalid detector value", Desired{Version: 4, Streams: []config.Stream{{ID: "a", URL: "udp://x:1", Detectors: map[string]any{"black": map[string]any{"min_duration": -1}}}}}, "black.min_duration"},
		{"bad hwaccel", Desired{Version: 4, Streams: []config.Stream{{ID: "a", URL: "udp://x:1", HWAccel: "opencl"}}}, "hwaccel"},
		{"agent detectors", Desired{Version: 4, Detectors: json.RawMessage(`{"black":{"nosuch":1}}`)}, "detectors"},
	}
	for _, c := range bad {
		if _, err := Resolve(p, f, &c.d); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: error %v, want one naming %q", c.name, err, c.want)
		}
	}
}

func TestParseDesired(t *testing.T) {
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ParseDesired(s, []byte(`{"version":1,"streams":[{"id":"a","url":"udp://x:1","loop":true}]}`)); err != nil {
		t.Fatal(err)
	}
	for _, doc := range []string{``, `null`, `{"version":"1","streams":[]}`, `{"version":1,"streams":[],"x":1}`, strings.Repeat(" ", MaxDocument+1)} {
		if _, err := ParseDesired(s, []byte(doc)); err == nil {
			t.Errorf("accepted %.40q", doc)
		}
	}
}

func TestStore(t *testing.T) {
	s := Store{Dir: filepath.Join(t.TempDir(), "config")}
	a, f, err := s.Load()
	if err != nil || a != nil || f != nil {
		t.Fatalf("empty store: %q %q %v", a, f, err)
	}
	if err := s.SaveAgent([]byte(`{"version":1}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveAgent([]byte(`{"version":2}`)); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveFleet([]byte(`{"version":9}`)); err != nil {
		t.Fatal(err)
	}
	a, f, err = s.Load()
	if err != nil || string(a) != `{"version":2}` || string(f) != `{"version":9}` {
		t.Fatalf("load: %q %q %v", a, f, err)
	}
	left, _ := filepath.Glob(filepath.Join(s.Dir, "*.json.*"))
	if len(left) != 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

func FuzzParseDesired(f *testing.F) {
	s, err := schema.Load()
	if err != nil {
		f.Fatal(err)
	}
	p := Policy{Schemes: config.DefaultSchemes}
	f.Add([]byte(`{"version":1,"streams":[{"id":"a","url":"udp://x:1","detectors":{"black":{"min_duration":3}}}]}`))
	f.Add([]byte(`{"version":2,"streams":[{"id":"a","url":"concat:a|b"}],"publish":{"metrics_interval":5}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := ParseDesired(s, b)
		if err != nil {
			return
		}
		_, _ = Resolve(p, nil, &d)
	})
}

// TestFileInputsOpenNoOtherFile: a playlist or a list inside media_dir must
// not reach a file outside it, and a file checked when the config arrived is
// checked again before every open.
func TestFileInputsOpenNoOtherFile(t *testing.T) {
	tr, err := clips.Ensure(context.Background(), "black")
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	p, dir := policy(t)
	outside := filepath.Join(t.TempDir(), "outside.mkv")
	raw, err := os.ReadFile(tr[0].File)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(outside, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "inside.mkv"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("list.m3u8", "#EXTM3U\n#EXT-X-TARGETDURATION:12\n#EXTINF:12,\nfile:"+outside+"\n#EXT-X-ENDLIST\n")
	write("list.ffconcat", "ffconcat version 1.0\nfile '"+outside+"'\n")
	run := func(name string) error {
		eff, err := Resolve(p, nil, &Desired{Version: 1, Streams: []config.Stream{{ID: "x", URL: name}}})
		if err != nil {
			return err
		}
		sc := eff.Streams[0]
		if err := sc.Precheck(); err != nil {
			return err
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		sc.Media.OpenTimeout = 5 * time.Second
		info, err := media.Run(ctx, sc.Media, discard{})
		if err == nil && info.Frames == 0 {
			return errors.New("nothing decoded")
		}
		return err
	}
	if err := run("inside.mkv"); err != nil {
		t.Fatalf("a media file inside media_dir: %v", err)
	}
	for _, name := range []string{"list.m3u8", "list.ffconcat"} {
		if err := run(name); err == nil {
			t.Errorf("%s opened a file outside media_dir", name)
		}
	}
	// Swapped for a link out of media_dir after the config was accepted.
	eff, err := Resolve(p, nil, &Desired{Version: 1, Streams: []config.Stream{{ID: "x", URL: "swap.mkv"}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "swap.mkv")); err != nil {
		t.Fatal(err)
	}
	if err := eff.Streams[0].Precheck(); err == nil || !strings.Contains(err.Error(), "outside media_dir") {
		t.Errorf("precheck of a link swapped in later: %v", err)
	}
}

type discard struct{}

func (discard) Tracks(float64, bool, bool)                {}
func (discard) Video(cur, ref *detectors.VideoFrame) bool { return false }
func (discard) Audio(*detectors.AudioBlock)               {}
func (discard) Packet(detectors.Track, float64, bool)     {}
func (discard) DecodeError(float64, string)               {}
func (discard) Stall(float64)                             {}
func (discard) Resume(float64)                            {}
