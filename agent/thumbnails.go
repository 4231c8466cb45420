package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/schema"
	"github.com/streamqc/streamqc/thumbnail"
)

// Thumbnails are published retained on .../thumbnails/{stream}/{kind}
// (thumbnail.schema.json): alarm at QoS 1, live at QoS 0. They are not
// spooled: a thumbnail that cannot be published at once (no connection) is
// counted as failed and never sent, and an event may name one that never
// arrives (the schema says so).

// maxThumbnailData is the largest JPEG whose base64 fits the schema's 350000.
const maxThumbnailData = 350000 / 4 * 3

// ThumbnailMetrics count the agent's thumbnails (thumbnail.Stats).
type ThumbnailMetrics struct {
	Published uint64 `json:"published"`
	Dropped   uint64 `json:"dropped"`
	Limited   uint64 `json:"limited"`
	Failed    uint64 `json:"failed"`
}

// newThumbnails is the agent's thumbnail service, nil when both kinds are off.
func (a *Agent) newThumbnails() *thumbnail.Service {
	c := a.cfg.Thumbnails.Config()
	if !c.Alarms && c.Live <= 0 {
		return nil
	}
	return thumbnail.New(c, a.publishThumbnail, a.log)
}

// keepThumbnails lets the streams of a config publish thumbnails again
// (one removed earlier may come back), before they start.
func (a *Agent) keepThumbnails(streams []supervisor.StreamConfig) {
	a.thumbMu.Lock()
	defer a.thumbMu.Unlock()
	for _, s := range streams {
		delete(a.thumbGone, s.ID)
	}
}

// clearThumbnails clears the retained thumbnails of streams removed from
// the config, so that consumers that come later (a dashboard) do not show a
// stream that is gone; a picture of theirs still queued in the worker is
// not published after the clear. It runs in the background: the broker
// may be slow or away (then the clear is lost, and logged).
func (a *Agent) clearThumbnails(removed []string) {
	if len(removed) == 0 {
		return
	}
	a.thumbMu.Lock()
	if a.thumbGone == nil {
		a.thumbGone = map[string]bool{}
	}
	for _, id := range removed {
		a.thumbGone[id] = true
	}
	a.thumbMu.Unlock()
	go func() {
		a.thumbPub.Lock()
		defer a.thumbPub.Unlock()
		for _, id := range removed {
			if !a.thumbnailGone(id) {
				continue // configured again meanwhile
			}
			for _, kind := range []string{schema.ThumbAlarm, schema.ThumbLive} {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				err := a.client.Publish(ctx, mqtt.Message{Topic: a.topics.Thumbnail(id, kind), QoS: 1, Retained: true})
				cancel()
				if err != nil {
					a.log.Warn("the retained thumbnail of a removed stream is not cleared", "stream", id, "kind", kind, "err", err)
				}
			}
		}
	}()
}

func (a *Agent) thumbnailGone(stream string) bool {
	a.thumbMu.Lock()
	defer a.thumbMu.Unlock()
	return a.thumbGone[stream]
}

// publishThumbnail runs on the thumbnail worker.
func (a *Agent) publishThumbnail(ctx context.Context, t *thumbnail.Thumb) error {
	a.thumbPub.Lock()
	defer a.thumbPub.Unlock()
	if a.thumbnailGone(t.Stream) {
		return nil // the stream was removed: its thumbnails are cleared
	}
	if n := len(t.JPEG); n > maxThumbnailData {
		return fmt.Errorf("thumbnail of %d bytes: over the schema's %d (lower thumbnails.width or quality)", n, maxThumbnailData)
	}
	b, err := json.Marshal(t.Doc(a.cfg.Fleet, a.cfg.ID))
	if err != nil {
		return fmt.Errorf("thumbnail: %w", err)
	}
	qos := byte(1)
	if t.Kind == schema.ThumbLive {
		qos = 0
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return a.client.Publish(pctx, mqtt.Message{Topic: a.topics.Thumbnail(t.Stream, t.Kind), Payload: b, QoS: qos, Retained: true})
}

// thumbnailMetrics are the counts for the metrics document (nil when off).
func (a *Agent) thumbnailMetrics() *ThumbnailMetrics {
	if a.thumbs == nil {
		return nil
	}
	s := a.thumbs.Stats()
	return &ThumbnailMetrics{Published: s.Published, Dropped: s.Dropped, Limited: s.Limited, Failed: s.Failed}
}
