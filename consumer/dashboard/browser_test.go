package dashboard_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/consumer/dashboard"
	"github.com/streamqc/streamqc/consumer/history"
	"github.com/streamqc/streamqc/schema"
)

// RequireChromiumEnv turns a missing Chromium from a skip into a failure
// (make test sets it).
const RequireChromiumEnv = "STREAMQC_REQUIRE_CHROMIUM"

// chromium starts a headless Chromium (Debian's package) with a private
// profile and returns a browser context; the test skips, saying why, when
// there is none, unless STREAMQC_REQUIRE_CHROMIUM=1.
func chromium(t *testing.T) context.Context {
	t.Helper()
	var bin string
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		if os.Getenv(RequireChromiumEnv) == "1" {
			t.Fatalf("chromium not installed (%s=1): apt install chromium", RequireChromiumEnv)
		}
		t.Skip("chromium not installed (apt install chromium): the page is not tested in a browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], // headless among them
		chromedp.ExecPath(bin),
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1600, 1000),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	return ctx
}

// serveDashboard runs a dashboard in-process on a free loopback port, as
// `streamqc dashboard` does: the consumer of record (a store in a temporary
// directory, a durable session) following broker; it returns the page's URL.
func serveDashboard(t *testing.T, brokerURL, fleet string) string {
	return serveDashboardToken(t, brokerURL, fleet, "")
}

// serveDashboardToken is serveDashboard asking pages for a token.
func serveDashboardToken(t *testing.T, brokerURL, fleet, token string) string {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ctx, cancel := context.WithCancel(context.Background())
	st, err := history.Open(ctx, history.Options{Path: filepath.Join(t.TempDir(), "history.db"), Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := dashboard.New(dashboard.Options{History: dashboard.StoreHistory(st, fleet), Logger: logger, Token: token})
	durable := false
	var rec atomic.Pointer[history.Recorder]
	c, err := mqtt.New(mqtt.Options{Broker: brokerURL, ClientID: "streamqc-dashboard-" + fleet, CleanSession: &durable, Logger: logger,
		OnConnect: func(ctx context.Context, c *mqtt.Client) {
			if r := rec.Load(); r != nil {
				r.OnConnect(ctx, c)
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	r, err := srv.Record(ctx, st, c, fleet, "dashboard-test")
	if err != nil {
		t.Fatal(err)
	}
	rec.Store(r)
	c.Start(ctx)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	runDone, recDone, serveDone := make(chan error, 1), make(chan error, 1), make(chan error, 1)
	go func() { runDone <- srv.Run(ctx) }()
	go func() { recDone <- r.Run(ctx) }()
	go func() { serveDone <- dashboard.Serve(ctx, ln, srv.Handler(), "", "", logger) }()
	t.Cleanup(func() {
		cancel()
		if err := <-serveDone; err != nil {
			t.Errorf("serve: %v", err)
		}
		<-runDone
		<-recDone
		c.Close(time.Second)
		if err := st.Close(); err != nil {
			t.Errorf("store: %v", err)
		}
	})
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}
	return "http://" + ln.Addr().String() + "/"
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// artifact is where a test keeps what it leaves for people: $STREAMQC_ARTIFACTS
// or build/artifacts of the repository.
func artifact(t *testing.T, name string) string {
	t.Helper()
	dir := os.Getenv("STREAMQC_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join("..", "..", "build", "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p, err := filepath.Abs(filepath.Join(dir, name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	p := artifact(t, name)
	if err := os.WriteFile(p, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d KB)", p, len(png)/1024)
}

// poll waits until the page's expression is true.
func poll(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(20*time.Millisecond)))
		// A navigation that replaces the page's JavaScript context while the
		// poll starts fails it at once ("Cannot find context with specified
		// id"): poll the new page, within the same deadline.
		if err != nil && strings.Contains(err.Error(), "Cannot find context with specified id") && time.Until(deadline) > 20*time.Millisecond {
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err == nil {
			return
		}
		dump, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.body.innerText.slice(0, 3000)`))
		html, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`location.href + " " + document.documentElement.outerHTML.slice(0, 500)`))
		t.Fatalf("%s: not within %s (%v); the page says:\n%s\n%s", what, timeout, err, dump, html)
	}
}

func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v", expr, err)
	}
	return v
}

// latencies are the page's event latencies (ms from the agent's event time
// to the animation frame that painted its timeline row).
type latency struct {
	ID       string  `json:"id"`
	AgentMs  float64 `json:"agentMs"`
	ServerMs float64 `json:"serverMs"`
}

func percentile(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	return s[min(len(s)-1, int(p*float64(len(s))))]
}

func tinyJPEG(t *testing.T, shade uint8) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 36))
	for y := range 36 {
		for x := range 64 {
			img.Set(x, y, color.RGBA{shade, uint8(x * 4), uint8(y * 7), 255})
		}
	}
	var b bytes.Buffer
	if err := jpeg.Encode(&b, img, nil); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func publish(t *testing.T, c *mqtt.Client, topic string, v any, retained bool) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Publish(ctx, mqtt.Message{Topic: topic, Payload: b, QoS: 1, Retained: retained}); err != nil {
		t.Fatalf("publish %s: %v", topic, err)
	}
}

// TestBrowserThousandStreams: 1,000 synthetic streams (10 agents of 100)
// through a real Mosquitto: the page's first render, its updates when every
// stream's figures change, and events on it while it holds 1,000 tiles.
func TestBrowserThousandStreams(t *testing.T) {
	const agents, perAgent = 10, 100
	b := mqtttest.Start(t, mqtttest.Options{})
	ctx := chromium(t)
	url := serveDashboard(t, b.URL, "scale")
	pub, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "scale-pub", Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	pctx, pcancel := context.WithCancel(context.Background())
	defer pcancel()
	pub.Start(pctx)
	defer pub.Close(time.Second)
	if err := pub.WaitConnected(pctx); err != nil {
		t.Fatal(err)
	}
	now := func() string { return time.Now().UTC().Format(time.RFC3339Nano) }
	metrics := func(a int, fps float64) {
		var streams []map[string]any
		for s := range perAgent {
			streams = append(streams, map[string]any{"id": fmt.Sprintf("ch%03d", s), "state": "running",
				"fps": fps + float64(s%7)/10, "decoder": "cpu"})
		}
		id := fmt.Sprintf("box%02d", a)
		publish(t, pub, schema.NewTopics("scale", id).Metrics, map[string]any{"time": now(), "fleet": "scale", "agent": id,
			"version": "test", "broker_connected": true, "process": map[string]any{"cpu_percent": 40 + a, "rss_bytes": 200 << 20},
			"spool": map[string]any{"pending": a}, "streams": streams}, true)
	}
	jpg := tinyJPEG(t, 90)
	for a := range agents {
		id := fmt.Sprintf("box%02d", a)
		tp := schema.NewTopics("scale", id)
		publish(t, pub, tp.Status, map[string]any{"state": "online", "fleet": "scale", "agent": id, "version": "test"}, true)
		metrics(a, 25)
		for s := range perAgent {
			st := fmt.Sprintf("ch%03d", s)
			publish(t, pub, tp.Thumbnail(st, schema.ThumbLive), schema.ThumbnailDoc{Type: "thumbnail", ID: fmt.Sprintf("%032x", a*1000+s),
				Fleet: "scale", Agent: id, Stream: st, Kind: schema.ThumbLive, Time: now(), Width: 64, Height: 36, ContentType: "image/jpeg", Data: jpg}, true)
		}
	}
	// Let the dashboard take the 1,000 streams before the page opens.
	deadline := time.Now().Add(20 * time.Second)
	for {
		res, err := httpGetJSON(url + "api/snapshot")
		if err == nil && len(res.Streams) == agents*perAgent {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the dashboard has %d streams, want %d", len(res.Streams), agents*perAgent)
		}
		time.Sleep(100 * time.Millisecond)
	}

	start := time.Now()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "1,000 tiles", `document.querySelectorAll('#mosaic .tile').length === 1000 && document.body.dataset.ready === "1"`, 20*time.Second)
	load := time.Since(start)
	snapshotMs := eval[float64](t, ctx, `window.sqc.stats.snapshotMs`)
	t.Logf("page with 1,000 streams: ready %s after navigation; the snapshot rendered in %.0f ms", load.Round(time.Millisecond), snapshotMs)
	if load > 10*time.Second {
		t.Errorf("page load with 1,000 streams took %s, want under 10 s", load)
	}

	// Every stream's figures change: the page applies the coalesced deltas.
	before := eval[float64](t, ctx, `window.sqc.stats.deltas`)
	for a := range agents {
		metrics(a, 30)
	}
	poll(t, ctx, "every tile at 30 fps", `[...document.querySelectorAll('#mosaic .tile .info')].every(e => e.textContent.includes(" 30.") || e.textContent.includes(" 30 "))`, 10*time.Second)
	deltas := eval[float64](t, ctx, `window.sqc.stats.deltas`) - before
	maxMs := eval[float64](t, ctx, `window.sqc.stats.deltaMaxMs`)
	t.Logf("1,000 streams' new figures: %.0f delta frames, the longest took %.1f ms to render", deltas, maxMs)
	if deltas > 8 {
		t.Errorf("%.0f delta frames for one round of metrics: not coalesced", deltas)
	}

	// Events while the page holds 1,000 tiles: each shown within a second.
	for i := range 20 {
		a, s := i%agents, (i*37)%perAgent
		id := fmt.Sprintf("box%02d", a)
		e := schema.AgentEvent{DefectEvent: schema.DefectEvent{Type: "defect", Stream: fmt.Sprintf("ch%03d", s), Defect: "black", State: "raised", Start: float64(i)},
			ID: fmt.Sprintf("%032x", 7000+i), Seq: uint64(i + 1), Fleet: "scale", Agent: id, Time: now()}
		publish(t, pub, schema.NewTopics("scale", id).Events, e, false)
		time.Sleep(50 * time.Millisecond)
	}
	poll(t, ctx, "20 event rows", `document.querySelectorAll('#timeline tbody tr[data-shown]').length >= 20`, 10*time.Second)
	poll(t, ctx, "20 red tiles", `document.querySelectorAll('#mosaic .tile.alarm').length === 20`, 5*time.Second)
	lat := eval[[]latency](t, ctx, `window.sqc.stats.latency`)
	var ms []float64
	for _, l := range lat {
		ms = append(ms, l.AgentMs)
	}
	t.Logf("event to page with 1,000 tiles: %d events, median %.0f ms, p95 %.0f ms, max %.0f ms",
		len(ms), percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 1))
	if p := percentile(ms, 0.95); p > 1000 {
		t.Errorf("events shown %.0f ms after they were sent (p95), want within a second", p)
	}
	screenshot(t, ctx, "dashboard-1000.png")
	// A source failure: every stream raises at once. The page follows.
	burst := time.Now()
	for i := range agents * perAgent {
		a, s := i/perAgent, i%perAgent
		id := fmt.Sprintf("box%02d", a)
		e := schema.AgentEvent{DefectEvent: schema.DefectEvent{Type: "defect", Stream: fmt.Sprintf("ch%03d", s), Defect: "signal_loss", State: "raised", Start: 30},
			ID: fmt.Sprintf("%032x", 100000+i), Seq: uint64(100 + i), Fleet: "scale", Agent: id, Time: now()}
		publish(t, pub, schema.NewTopics("scale", id).Events, e, false)
	}
	sent := time.Since(burst)
	poll(t, ctx, "1,000 red tiles", `document.querySelectorAll('#mosaic .tile.alarm').length === 1000`, 20*time.Second)
	t.Logf("1,000 alarms at once: published in %s, all 1,000 tiles red %s after the first was sent; the page is %s",
		sent.Round(time.Millisecond), time.Since(burst).Round(time.Millisecond), eval[string](t, ctx, `document.getElementById("conn").textContent`))
	lat = eval[[]latency](t, ctx, `window.sqc.stats.latency.slice(-1000)`)
	ms = ms[:0]
	for _, l := range lat {
		ms = append(ms, l.AgentMs)
	}
	t.Logf("the burst's events in the timeline: %d, median %.0f ms, p95 %.0f ms, max %.0f ms after their agent time",
		len(ms), percentile(ms, 0.5), percentile(ms, 0.95), percentile(ms, 1))
	if p := percentile(ms, 0.95); len(ms) < 1000 || p > 3000 {
		t.Errorf("a burst of 1,000 events: %d in the timeline, p95 %.0f ms; want all, within 3 s", len(ms), p)
	}
	// Thumbnails are lazy: the tiles in view have theirs.
	if n := eval[float64](t, ctx, `[...document.querySelectorAll('#mosaic .tile img')].filter(i => i.complete && i.naturalWidth > 0).length`); n < 1 {
		t.Error("no tile shows its picture")
	}
	// The mosaic's filter.
	if err := chromedp.Do(ctx, chromedp.SendKeys(chromedp.ID("tile-filter"), "box03/ch01")); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the filter keeps box03/ch01x", `document.querySelectorAll('#mosaic .tile:not([hidden])').length === 10`, 5*time.Second)
}

func httpGetJSON(url string) (dashboard.Snapshot, error) {
	var sn dashboard.Snapshot
	res, err := httpClient.Get(url)
	if err != nil {
		return sn, err
	}
	defer res.Body.Close()
	return sn, json.NewDecoder(res.Body).Decode(&sn)
}

var httpClient = &http.Client{Timeout: 5 * time.Second}

// TestBrowserToken: with a token the page works once the browser has it
// (HTTP Basic: the page, its live stream and its API all carry it), and
// nothing is served without it.
func TestBrowserToken(t *testing.T) {
	const token = "correct-horse-battery-staple"
	b := mqtttest.Start(t, mqtttest.Options{})
	ctx := chromium(t)
	url := serveDashboardToken(t, b.URL, "tok", token)
	res, err := httpClient.Get(url + "api/snapshot")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("without the token: %s, want 401", res.Status)
	}
	// As after the browser's password prompt: the credentials given once
	// for the origin (the URL's user info stands for the prompt), then the
	// page at its plain address (a page whose address holds credentials
	// cannot fetch).
	if err := chromedp.Do(ctx, chromedp.Navigate(strings.Replace(url, "http://", "http://operator:"+token+"@", 1)+"healthz"), chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the live stream and the timeline with the token", `document.body.dataset.ready === "1" && document.getElementById("timeline").dataset.loaded !== undefined && document.getElementById("conn").textContent === "live"`, 10*time.Second)
}
