package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/schema"
)

func envOr[T int | time.Duration](name string, def T) T {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	var out T
	switch any(def).(type) {
	case int:
		n, err := strconv.Atoi(v)
		if err != nil {
			return def
		}
		out = T(n)
	case time.Duration:
		d, err := time.ParseDuration(v)
		if err != nil {
			return def
		}
		out = T(d)
	}
	return out
}

// scaleConsumer counts first arrivals and their publish-to-consumer latency.
type scaleConsumer struct {
	mu        sync.Mutex
	seen      map[string]bool
	latencies []time.Duration
	dups      int
}

func (c *scaleConsumer) handle(m mqtt.Message) {
	now := time.Now()
	var e struct {
		ID   string    `json:"id"`
		Time time.Time `json:"time"`
	}
	if json.Unmarshal(m.Payload, &e) != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.seen[e.ID] {
		c.dups++
		return
	}
	c.seen[e.ID] = true
	c.latencies = append(c.latencies, now.Sub(e.Time))
}

func (c *scaleConsumer) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.seen)
}

// window returns the latency percentiles of arrivals [from, to).
func (c *scaleConsumer) window(from, to int) (p50, p99, max time.Duration) {
	c.mu.Lock()
	l := slices.Clone(c.latencies[from:min(to, len(c.latencies))])
	c.mu.Unlock()
	if len(l) == 0 {
		return
	}
	slices.Sort(l)
	return l[len(l)/2], l[int(math.Ceil(0.99*float64(len(l))))-1], l[len(l)-1]
}

// syntheticSource drives one black decision per stream at 25 fps with
// synthetic features (no decoding): each stream goes black for 0.5 s once
// per period, phase-shifted, so the fleet emits 2*streams/period events/s.
type syntheticSource struct {
	emitted atomic.Int64
}

func (s *syntheticSource) run(ctx context.Context, a *Agent, streams, workers int, period time.Duration) {
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			type st struct {
				d     *detectors.BlackDetector
				phase float64
			}
			var mine []st
			for i := w; i < streams; i += workers {
				id := fmt.Sprintf("ch%04d", i)
				cfg := detectors.DefaultBlackConfig()
				cfg.MinDuration = 0.2
				d := detectors.NewBlackDetector(cfg, func(e detectors.Event) { a.emit(id, e, nil); s.emitted.Add(1) })
				mine = append(mine, st{d, period.Seconds() * float64(i) / float64(streams)})
			}
			black := detectors.BlackFeature{Pixels: 1000, Black: 1000, Centre: 100, MeanLuma: 0.01}
			picture := detectors.BlackFeature{Pixels: 1000, Black: 10, Centre: 100, CentreBright: 40, MeanLuma: 0.5}
			frame := 0
			tick := time.NewTicker(40 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				due := int(time.Since(start).Seconds() * 25)
				for ; frame < due; frame++ {
					t := float64(frame) / 25
					for _, x := range mine {
						f := &picture
						if math.Mod(t+x.phase, period.Seconds()) < 0.5 {
							f = &black
						}
						x.d.Video(t, 0.04, f)
					}
				}
			}
		}(w)
	}
	wg.Wait()
}

// BenchmarkEventPlane measures the event plane at fleet scale: 1,000 streams'
// worth of events from a synthetic feature source through the spool and one
// Mosquitto to a consumer: sustained events/s, publish-to-consumer latency,
// and the spool's growth and drain across a broker outage. Run by
// `make bench-fleet`; sizes from STREAMQC_SCALE_* variables.
func BenchmarkEventPlane(b *testing.B) {
	streams := envOr("STREAMQC_SCALE_STREAMS", 1000)
	period := envOr("STREAMQC_SCALE_PERIOD", 2*time.Second)
	steady := envOr("STREAMQC_SCALE_STEADY", 20*time.Second)
	outage := envOr("STREAMQC_SCALE_OUTAGE", 30*time.Second)
	for i := 0; i < b.N; i++ {
		broker := mqtttest.Start(b, mqtttest.Options{Persistence: true})
		cons := &scaleConsumer{seen: map[string]bool{}}
		clean := false
		cc, err := mqtt.New(mqtt.Options{Broker: broker.URL, ClientID: "scale-consumer", CleanSession: &clean})
		if err != nil {
			b.Fatal(err)
		}
		cc.Subscribe(schema.Filter("scale", "", "events"), 1, cons.handle)
		ctx, cancel := context.WithCancel(context.Background())
		cc.Start(ctx)
		if err := cc.WaitConnected(ctx); err != nil {
			b.Fatal(err)
		}
		c := config.DefaultAgent()
		c.Fleet, c.ID, c.StateDir, c.Broker.URL = "scale", "box1", b.TempDir(), broker.URL
		a, err := newAgent(Options{Config: c, Version: "bench", Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
		if err != nil {
			b.Fatal(err)
		}
		actx, astop := context.WithCancel(context.Background())
		ready := make(chan struct{})
		done := make(chan error, 1)
		go func() { done <- a.run(actx, ready) }()
		<-ready
		for !a.client.Connected() {
			time.Sleep(10 * time.Millisecond)
		}
		src := &syntheticSource{}
		sctx, sstop := context.WithCancel(context.Background())
		srcDone := make(chan struct{})
		go func() { src.run(sctx, a, streams, 4, period); close(srcDone) }()

		// Phase 1: steady state with the broker up.
		time.Sleep(2 * time.Second) // warm up
		n0, e0, t0 := cons.count(), src.emitted.Load(), time.Now()
		time.Sleep(steady)
		n1, e1, dt := cons.count(), src.emitted.Load(), time.Since(t0).Seconds()
		p50, p99, pmax := cons.window(n0, n1)
		offered, delivered := float64(e1-e0)/dt, float64(n1-n0)/dt

		// Phase 2: the broker goes away while defects keep coming.
		broker.Stop()
		outStart := time.Now()
		peak, peakBytes := 0, int64(0)
		for time.Since(outStart) < outage {
			time.Sleep(time.Second)
			st := a.spool.Stats()
			peak, peakBytes = max(peak, st.Pending), max(peakBytes, st.Bytes)
		}
		broker.Start()
		back := time.Now()
		for !a.client.Connected() && time.Since(back) < time.Minute {
			time.Sleep(5 * time.Millisecond)
		}
		reconnect := time.Since(back) // the agent's reconnect backoff (capped at 10 s)
		backlog := a.spool.Stats().Pending
		connected := time.Now()
		for a.spool.Stats().Pending > 0 && time.Since(back) < 5*time.Minute {
			time.Sleep(20 * time.Millisecond)
		}
		drain := time.Since(connected)
		dropped := a.spool.Stats().Dropped

		sstop()
		<-srcDone
		astop()
		<-done
		emitted := int(src.emitted.Load())
		deadline := time.Now().Add(30 * time.Second)
		for cons.count() < emitted && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		got := cons.count()
		cancel()
		cc.Close(time.Second)

		b.ReportMetric(delivered, "events/s")
		b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
		b.ReportMetric(float64(peak), "spool-peak-events")
		b.ReportMetric(drain.Seconds(), "drain-s")
		b.ReportMetric(reconnect.Seconds(), "reconnect-s")
		b.Logf("%d streams, one black alarm per stream every %s (raise + clear)", streams, period)
		b.Logf("steady %.0f s: offered %.0f events/s, delivered %.0f events/s; publish-to-consumer latency p50 %s p99 %s max %s",
			dt, offered, delivered, p50.Round(time.Microsecond), p99.Round(time.Microsecond), pmax.Round(time.Microsecond))
		b.Logf("broker outage %s: spool grew to %d events (%.1f MiB); the agent reconnected %s after the broker came back and sent its backlog of %d in %s (%.0f events/s, new ones still coming at %.0f/s)",
			outage, peak, float64(peakBytes)/(1<<20), reconnect.Round(time.Millisecond), backlog, drain.Round(time.Millisecond),
			(float64(backlog)+offered*drain.Seconds())/math.Max(drain.Seconds(), 1e-3), offered)
		b.Logf("total: %d events emitted, %d received once (%d duplicates deduped by id), %d dropped by the spool bound", emitted, got, cons.dups, dropped)
		if got != emitted {
			b.Errorf("%d events emitted, %d received", emitted, got)
		}
	}
}
