package agent

import (
	"context"
	"encoding/json"
	"math"
	"runtime"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
)

// Metrics is the payload of the metrics topic.
type Metrics struct {
	Time      string          `json:"time"`
	Fleet     string          `json:"fleet"`
	Agent     string          `json:"agent"`
	Version   string          `json:"version"`
	Interval  float64         `json:"interval"`
	Process   ProcessMetrics  `json:"process"`
	Spool     SpoolMetrics    `json:"spool"`
	Connected bool            `json:"broker_connected"`
	Streams   []StreamMetrics `json:"streams"`
	// Thumbnails: absent when thumbnails are off.
	Thumbnails *ThumbnailMetrics `json:"thumbnails,omitempty"`
}

// ProcessMetrics describe the agent process.
type ProcessMetrics struct {
	CPUPercent float64 `json:"cpu_percent"`
	RSSBytes   int64   `json:"rss_bytes"`
	HeapBytes  int64   `json:"heap_bytes"`
	Goroutines int     `json:"goroutines"`
	Uptime     float64 `json:"uptime"`
}

// SpoolMetrics describe the event outbox.
type SpoolMetrics struct {
	Pending   int     `json:"pending"`
	Bytes     int64   `json:"bytes"`
	MaxBytes  int64   `json:"max_bytes"`
	Dropped   uint64  `json:"dropped"`
	Appended  uint64  `json:"appended"`
	Acked     uint64  `json:"acked"`
	OldestAge float64 `json:"oldest_age"`
	Errors    uint64  `json:"append_errors"`
}

// StreamMetrics describe one stream.
type StreamMetrics struct {
	ID          string   `json:"id"`
	State       string   `json:"state"`
	Frames      int64    `json:"frames"`
	AudioBlocks int64    `json:"audio_blocks"`
	FPS         float64  `json:"fps"`
	DecodeLag   *float64 `json:"decode_lag,omitempty"`
	Decoder     string   `json:"decoder,omitempty"`
	Momentary   *float64 `json:"momentary_lufs,omitempty"`
	ShortTerm   *float64 `json:"short_term_lufs,omitempty"`
	QueueDepth  int      `json:"queue_depth"`
	Restarts    int64    `json:"restarts"`
	Reconnects  int64    `json:"reconnects"`
	Alarms      []string `json:"alarms,omitempty"`
	Error       string   `json:"error,omitempty"`
	// TR101290: MPEG-TS inputs' transport errors per indicator.
	TR101290 map[string]int64 `json:"tr101290,omitempty"`
}

func finite(v float64, digits float64) *float64 {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return nil
	}
	r := math.Round(v*digits) / digits
	return &r
}

// publishMetrics publishes the metrics every interval, retained, so that
// `streamqc fleet agents` sees the latest at once.
func (a *Agent) publishMetrics(ctx context.Context) {
	cpu := newCPUMeter()
	a.mu.Lock()
	interval := a.interval
	a.mu.Unlock()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case d := <-a.metrics:
			if d > 0 && d != interval {
				interval = d
				t.Reset(d)
			}
		case <-t.C:
		}
		if !a.client.Connected() {
			continue
		}
		m := a.collect(cpu, interval)
		b, err := json.Marshal(m)
		if err != nil {
			a.log.Error("metrics", "err", err)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		if err := a.client.Publish(pctx, mqtt.Message{Topic: a.topics.Metrics, Payload: b, QoS: 0, Retained: true}); err != nil && ctx.Err() == nil {
			a.log.Debug("metrics not published", "err", err)
		}
		cancel()
	}
}

func (a *Agent) collect(cpu *cpuMeter, interval time.Duration) Metrics {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	st := a.spool.Stats()
	m := Metrics{
		Time: time.Now().UTC().Format(time.RFC3339Nano), Fleet: a.cfg.Fleet, Agent: a.cfg.ID, Version: a.version,
		Interval: interval.Seconds(),
		Process: ProcessMetrics{
			CPUPercent: cpu.percent(), RSSBytes: rss(), HeapBytes: int64(ms.HeapAlloc),
			Goroutines: runtime.NumGoroutine(), Uptime: math.Round(time.Since(a.started).Seconds()*10) / 10,
		},
		Spool: SpoolMetrics{Pending: st.Pending, Bytes: st.Bytes, MaxBytes: a.cfg.Spool.MaxBytes, Dropped: st.Dropped,
			Appended: st.Appended, Acked: st.Acked},
		Connected:  a.client.Connected(),
		Streams:    []StreamMetrics{},
		Thumbnails: a.thumbnailMetrics(),
	}
	if st.Pending > 0 {
		m.Spool.OldestAge = a.oldestAge()
	}
	a.mu.Lock()
	a.forgetDroppedLocked(st.Pending, st.OldestSeq, st.NextSeq)
	m.Spool.Errors = a.appendErr
	pending := make(map[string]int, len(a.pending))
	for k, v := range a.pending {
		pending[k] = v
	}
	a.mu.Unlock()
	for _, s := range a.sup.Status() {
		m.Streams = append(m.Streams, StreamMetrics{
			ID: s.ID, State: string(s.State), Frames: s.Frames, AudioBlocks: s.AudioBlocks,
			FPS: math.Round(s.FPS*100) / 100, DecodeLag: finite(s.DecodeLag, 1000), Decoder: s.Decoder,
			Momentary: finite(s.Momentary, 100), ShortTerm: finite(s.ShortTerm, 100),
			QueueDepth: pending[s.ID], Restarts: s.Restarts, Reconnects: s.Reconnects,
			Alarms: s.Alarms, Error: s.Error, TR101290: s.TR101290,
		})
	}
	return m
}

// oldestAge is how long the oldest unsent event has waited, from its time field.
func (a *Agent) oldestAge() float64 {
	recs := a.spool.Read(0, 1, nil)
	if len(recs) == 0 {
		return 0
	}
	var e struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(recs[0].Data, &e) != nil || e.Time.IsZero() {
		return 0
	}
	return math.Max(0, math.Round(time.Since(e.Time).Seconds()*10)/10)
}

// forgetDroppedLocked removes from the per-stream counts the events the spool
// deleted unsent (its drop-oldest bound): everything below the oldest pending.
func (a *Agent) forgetDroppedLocked(pending int, oldest, next uint64) {
	below := next
	if pending > 0 {
		below = oldest
	}
	if len(a.seqStream) <= pending {
		return
	}
	for seq, s := range a.seqStream {
		if seq < below {
			delete(a.seqStream, seq)
			if a.pending[s]--; a.pending[s] <= 0 {
				delete(a.pending, s)
			}
		}
	}
}
