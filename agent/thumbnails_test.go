package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/jpeg"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/schema"
)

// thumbWatcher records the thumbnails of a fleet, checked against the schema.
type thumbWatcher struct {
	mu      sync.Mutex
	byTopic map[string][]schema.ThumbnailDoc
	cleared map[string]int // empty retained payloads seen per topic
}

func (w *thumbWatcher) clears(topic string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.cleared[topic]
}

func watchThumbnails(t *testing.T, b *mqtttest.Broker) *thumbWatcher {
	t.Helper()
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: fmt.Sprintf("thumbs-%d", time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	w := &thumbWatcher{byTopic: map[string][]schema.ThumbnailDoc{}, cleared: map[string]int{}}
	c.Subscribe(schema.Filter("test", "", "thumbnails/+/+"), 1, func(m mqtt.Message) {
		if len(m.Payload) == 0 { // a retained thumbnail cleared
			w.mu.Lock()
			defer w.mu.Unlock()
			w.cleared[m.Topic]++
			return
		}
		if err := s.Validate(schema.Thumbnail, m.Payload); err != nil {
			t.Errorf("%s: not a thumbnail document: %v", m.Topic, err)
		}
		var d schema.ThumbnailDoc
		if err := json.Unmarshal(m.Payload, &d); err != nil {
			t.Errorf("%s: %v", m.Topic, err)
		}
		w.mu.Lock()
		defer w.mu.Unlock()
		w.byTopic[m.Topic] = append(w.byTopic[m.Topic], d)
	})
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	t.Cleanup(func() { c.Close(time.Second); cancel() })
	return w
}

func (w *thumbWatcher) find(topic string, ok func(schema.ThumbnailDoc) bool) (schema.ThumbnailDoc, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, d := range w.byTopic[topic] {
		if ok(d) {
			return d, true
		}
	}
	return schema.ThumbnailDoc{}, false
}

// meanLuma decodes a thumbnail's JPEG and returns its size and mean luma.
func meanLuma(t *testing.T, d schema.ThumbnailDoc) (image.Rectangle, float64) {
	t.Helper()
	img, err := jpeg.Decode(bytes.NewReader(d.Data))
	if err != nil {
		t.Fatalf("thumbnail %s: %v", d.ID, err)
	}
	yc, ok := img.(*image.YCbCr)
	if !ok {
		t.Fatalf("thumbnail %s decodes as %T", d.ID, img)
	}
	sum := 0
	for y := 0; y < yc.Rect.Dy(); y++ {
		for x := 0; x < yc.Rect.Dx(); x++ {
			sum += int(yc.Y[y*yc.YStride+x])
		}
	}
	return yc.Rect, float64(sum) / float64(yc.Rect.Dx()*yc.Rect.Dy())
}

// TestThumbnailsIntegration: a real agent, broker and clips: the black
// alarm's event names its thumbnail, retained on .../thumbnails/a/alarm with
// the event's id, a JPEG 320 pixels wide that is dark; the live thumbnail
// of a clean stream is not.
func TestThumbnailsIntegration(t *testing.T) {
	media := clipDir(t, "black", "clean_quiet")
	b := mqtttest.Start(t, mqtttest.Options{})
	tw := watchThumbnails(t, b)
	w := watch(t, b, "")
	c := agentConfig(t, b, media)
	c.Thumbnails.LiveInterval = config.Duration(time.Second)
	startAgent(t, c)
	topics := schema.NewTopics("test", "box1")
	w.push(t, topics.Desired, `{"version":1,"publish":{"metrics_interval":1},"streams":[
		{"id":"a","url":"black.mkv","loop":true},
		{"id":"b","url":"clean_quiet.mkv","loop":true}]}`)

	var raised schema.AgentEvent
	w.waitFor("black raised on a", 30*time.Second, func() bool {
		for _, e := range w.eventList() {
			if e.Stream == "a" && e.Defect == "black" && e.State == "raised" {
				raised = e
				return true
			}
		}
		return false
	})
	if raised.Thumbnail == "" {
		t.Fatalf("the raised black event names no thumbnail: %+v", raised)
	}
	var doc schema.ThumbnailDoc
	w.waitFor("its thumbnail", 10*time.Second, func() bool {
		var ok bool
		doc, ok = tw.find(topics.Thumbnail("a", schema.ThumbAlarm), func(d schema.ThumbnailDoc) bool { return d.ID == raised.Thumbnail })
		return ok
	})
	if doc.Event != raised.ID || doc.Defect != "black" || doc.Kind != schema.ThumbAlarm || doc.Stream != "a" ||
		doc.Fleet != "test" || doc.Agent != "box1" || doc.ContentType != "image/jpeg" {
		t.Errorf("thumbnail document %+v for event %+v", doc, raised)
	}
	rect, mean := meanLuma(t, doc)
	if rect.Dx() != 320 || rect.Dx() != doc.Width || rect.Dy() != doc.Height {
		t.Errorf("JPEG %v, document %dx%d", rect, doc.Width, doc.Height)
	}
	if mean > 20 {
		t.Errorf("the black alarm's thumbnail has mean luma %.1f", mean)
	}
	// The picture that raised it: the defect began at Start, and the
	// decision raised it once it lasted min_duration (2 s for black).
	if doc.PTS < raised.Start || doc.PTS > raised.Start+3 {
		t.Errorf("picture at %.2f s for an alarm starting at %.2f s", doc.PTS, raised.Start)
	}
	t.Logf("alarm thumbnail: %dx%d, %d bytes of JPEG, mean luma %.1f", doc.Width, doc.Height, len(doc.Data), mean)

	var live schema.ThumbnailDoc
	w.waitFor("a live thumbnail of b", 10*time.Second, func() bool {
		var ok bool
		live, ok = tw.find(topics.Thumbnail("b", schema.ThumbLive), func(schema.ThumbnailDoc) bool { return true })
		return ok
	})
	if _, mean := meanLuma(t, live); mean < 40 || live.Event != "" {
		t.Errorf("live thumbnail of a clean stream: mean luma %.1f, event %q", mean, live.Event)
	}
	t.Logf("live thumbnail: %dx%d, %d bytes of JPEG", live.Width, live.Height, len(live.Data))

	w.waitFor("thumbnail metrics", 10*time.Second, func() bool {
		var m Metrics
		if b := w.last("metrics"); b == nil || json.Unmarshal(b, &m) != nil || m.Thumbnails == nil {
			return false
		}
		return m.Thumbnails.Published >= 2
	})

	// Retained: a client that comes later gets the latest of each.
	late := watchThumbnails(t, b)
	w.waitFor("the retained alarm thumbnail", 10*time.Second, func() bool {
		_, ok := late.find(topics.Thumbnail("a", schema.ThumbAlarm), func(schema.ThumbnailDoc) bool { return true })
		return ok
	})

	// A stream removed from the config: its retained thumbnails are
	// cleared, so a client that comes later sees b's and nothing of a's.
	w.push(t, topics.Desired, `{"version":2,"publish":{"metrics_interval":1},"streams":[
		{"id":"b","url":"clean_quiet.mkv","loop":true}]}`)
	w.waitFor("a's thumbnails cleared", 10*time.Second, func() bool {
		return late.clears(topics.Thumbnail("a", schema.ThumbAlarm)) > 0 && late.clears(topics.Thumbnail("a", schema.ThumbLive)) > 0
	})
	later := watchThumbnails(t, b)
	w.waitFor("b's retained live thumbnail", 10*time.Second, func() bool {
		_, ok := later.find(topics.Thumbnail("b", schema.ThumbLive), func(schema.ThumbnailDoc) bool { return true })
		return ok
	})
	// Retained messages come with the subscription, together: b's is here,
	// so a's would be.
	if _, ok := later.find(topics.Thumbnail("a", schema.ThumbAlarm), func(schema.ThumbnailDoc) bool { return true }); ok {
		t.Error("the removed stream's alarm thumbnail is still retained")
	}
}
