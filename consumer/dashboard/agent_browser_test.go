package dashboard_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/testdata/clips"
)

// runAgent runs a real agent in-process until the test ends.
func runAgent(t *testing.T, c config.Agent) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready, done := make(chan struct{}), make(chan error, 1)
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	go func() {
		done <- agent.Run(ctx, agent.Options{Config: c, Version: "test", Logger: logger, Ready: ready})
	}()
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("agent did not start: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("agent did not start")
	}
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("agent: %v", err)
			}
		case <-time.After(15 * time.Second):
			t.Error("agent did not stop")
		}
	})
}

// selectFilter picks a timeline filter as a person would (a change event).
func selectFilter(t *testing.T, ctx context.Context, id, value string) {
	t.Helper()
	js := fmt.Sprintf(`(() => { const s = document.getElementById(%q); s.value = %q;
		s.dispatchEvent(new Event("change", {bubbles: true})); return s.value === %q; })()`, id, value, value)
	if !eval[bool](t, ctx, js) {
		t.Fatalf("filter %s has no option %q", id, value)
	}
}

// rows is what the timeline lists now: "stream defect state" per row.
const rowsJS = `[...document.querySelectorAll('#timeline tbody tr')].map(r => r.dataset.stream + " " + r.dataset.defect)`

// TestBrowserAgent: the page in headless Chromium against a real Mosquitto
// and a real agent on looping real-time clips with defects (black on a,
// freeze on b, both from 4 to 7 s of every 12): the alarm appears on its
// tile with its thumbnail, clears, the timeline's filters change its rows;
// the screenshot is kept and the latency from the agent's event to the
// painted row logged.
func TestBrowserAgent(t *testing.T) {
	tr, err := clips.Ensure(context.Background(), "black", "freeze")
	if errors.Is(err, clips.ErrNoFFmpeg) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	b := mqtttest.Start(t, mqtttest.Options{})
	ctx := chromium(t)
	url := serveDashboard(t, b.URL, "test")
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll(t, ctx, "the page live", `document.body.dataset.ready === "1"`, 10*time.Second)

	c := config.DefaultAgent()
	c.Fleet, c.ID = "test", "box1"
	c.StateDir = t.TempDir()
	c.MediaDir = filepath.Dir(tr[0].File)
	c.Broker.URL = b.URL
	c.MetricsInterval = config.Duration(time.Second)
	c.StopTimeout = config.Duration(5 * time.Second)
	c.Thumbnails.LiveInterval = config.Duration(time.Second) // the mosaic's live pictures
	c.Streams = []config.Stream{
		// Short minimum durations: the alarms stay open over 2 s of every 12.
		{ID: "a", URL: "black.mkv", Realtime: true, Loop: true, Detectors: map[string]any{"black": map[string]any{"min_duration": 0.5}}},
		{ID: "b", URL: "freeze.mkv", Realtime: true, Loop: true, Detectors: map[string]any{"freeze": map[string]any{"min_duration": 1.0}}},
	}
	started := time.Now()
	runAgent(t, c)

	tileA := `document.querySelector('.tile[data-key="test/box1/a"]')`
	poll(t, ctx, "the agent online with its streams", `[...document.querySelectorAll('#agents tbody tr')].some(r => r.cells[1].textContent === "online")
		&& document.querySelectorAll('#mosaic .tile').length === 2`, 15*time.Second)
	poll(t, ctx, "the black alarm on a's tile", tileA+`.classList.contains("alarm") && `+tileA+`.querySelector(".badge").textContent === "black"`, 25*time.Second)
	t.Logf("black raised on the page %s after the agent started (truth: black from 4.0 s of the clip)", time.Since(started).Round(100*time.Millisecond))
	// The alarms' pictures (the agent publishes them on thumbnails/{stream}/alarm):
	// a's black one, then b's frozen one; the screenshot while both are open.
	shows := func(stream string) string {
		tile := `document.querySelector('.tile[data-key="test/box1/` + stream + `"]')`
		return `(` + tile + `.classList.contains("alarm") && ` + tile + `.querySelector("img").complete && ` + tile +
			`.querySelector("img").naturalWidth > 0 && window.sqc.tiles.get("test/box1/` + stream + `").view.thumb_kind === "alarm")`
	}
	_, thumbErr := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](shows("a"), chromedp.WithPollingTimeout(1500*time.Millisecond)))
	if thumbErr == nil {
		_, thumbErr = chromedp.Run(ctx, chromedp.Poll[chromedp.Void](shows("a")+" && "+shows("b"), chromedp.WithPollingTimeout(2500*time.Millisecond)))
	}
	screenshot(t, ctx, "dashboard.png")
	if thumbErr != nil {
		t.Errorf("the alarms' thumbnails are not shown on the tiles of a (black) and b (freeze) while they are open (does the agent publish thumbnails? %v)", thumbErr)
	} else {
		w := eval[float64](t, ctx, tileA+`.querySelector("img").naturalWidth`)
		t.Logf("a's and b's tiles show their alarm's thumbnail (%.0f px wide)", w)
	}
	raised := eval[[]latency](t, ctx, `window.sqc.stats.latency`)
	var ms []float64
	for _, l := range raised {
		ms = append(ms, l.AgentMs)
		t.Logf("event %s: painted %.0f ms after the agent's event time (%.0f ms after the dashboard got it)", l.ID, l.AgentMs, l.ServerMs)
	}
	if len(ms) == 0 {
		t.Fatal("the raised event has no latency on the page")
	}
	if p := percentile(ms, 1); p > 1000 {
		t.Errorf("an event was shown %.0f ms after the agent sent it, want within a second", p)
	}

	poll(t, ctx, "the black alarm cleared on a's tile", `!`+tileA+`.classList.contains("alarm")`, 15*time.Second)
	poll(t, ctx, "the cleared row", `[...document.querySelectorAll('#timeline tbody tr.cleared')].some(r => r.dataset.stream === "a" && r.dataset.defect === "black")`, 5*time.Second)
	poll(t, ctx, "freeze on b in the timeline", `[...document.querySelectorAll('#timeline tbody tr')].some(r => r.dataset.stream === "b" && r.dataset.defect === "freeze")`, 15*time.Second)

	// The timeline's filters (each reloads the rows from /api/events).
	tests := []struct {
		agent, stream, defect, state string
		want                         func(rows []string) error
	}{
		{"", "", "black", "", onlyRows("a black")},
		{"", "b", "", "", onlyRows("b freeze")},
		{"", "b", "black", "", noRows},
		{"box1", "a", "", "cleared", onlyRows("a black")},
		{"", "", "", "", func(rows []string) error { return hasBoth(rows, "a black", "b freeze") }},
	}
	for _, tc := range tests {
		name := fmt.Sprintf("agent=%q stream=%q defect=%q state=%q", tc.agent, tc.stream, tc.defect, tc.state)
		before := eval[string](t, ctx, `document.getElementById("timeline").dataset.loaded || ""`)
		selectFilter(t, ctx, "f-agent", tc.agent)
		selectFilter(t, ctx, "f-stream", tc.stream)
		selectFilter(t, ctx, "f-defect", tc.defect)
		selectFilter(t, ctx, "f-state", tc.state)
		poll(t, ctx, name+": reloaded", fmt.Sprintf(`(document.getElementById("timeline").dataset.loaded || "") !== %q`, before), 5*time.Second)
		time.Sleep(100 * time.Millisecond) // the last of the four reloads
		rows := eval[[]string](t, ctx, rowsJS)
		if err := tc.want(rows); err != nil {
			t.Errorf("%s: %v (rows %q)", name, err, rows)
		}
	}
}

func onlyRows(want string) func([]string) error {
	return func(rows []string) error {
		if len(rows) == 0 {
			return fmt.Errorf("no rows, want %q ones", want)
		}
		for _, r := range rows {
			if r != want {
				return fmt.Errorf("row %q, want only %q", r, want)
			}
		}
		return nil
	}
}

func noRows(rows []string) error {
	if len(rows) > 0 {
		return fmt.Errorf("%d rows, want none", len(rows))
	}
	return nil
}

func hasBoth(rows []string, a, b string) error {
	var ha, hb bool
	for _, r := range rows {
		ha, hb = ha || r == a, hb || r == b
	}
	if !ha || !hb {
		return fmt.Errorf("want %q and %q rows", a, b)
	}
	return nil
}
