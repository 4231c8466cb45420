package agent

import (
	"math"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/spool"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/detectors"
)

// promState is what one scrape reports, read from the agent at scrape time.
type promState struct {
	Fleet, Agent, Version, Flavor string
	Connected                     bool
	Spool                         spool.Stats
	SpoolMaxBytes                 int64
	OldestAge                     float64 // seconds; 0 with nothing pending
	AppendErrors                  uint64
	Pending                       map[string]int // stream -> its events in the spool
	Events                        map[eventKey]uint64
	ConfigVersion                 map[string]int64 // scope (agent, fleet) -> applied version
	Streams                       []supervisor.Status
	Delivery                      deliveryFigures
	Thumbnails                    *ThumbnailMetrics // nil: thumbnails off
}

func (a *Agent) promState() promState {
	st := a.spool.Stats()
	s := promState{
		Fleet: a.cfg.Fleet, Agent: a.cfg.ID, Version: a.version, Flavor: a.cfg.Firmware.Flavor,
		Connected: a.client.Connected(), Spool: st, SpoolMaxBytes: a.cfg.Spool.MaxBytes,
		Events: a.events.snapshot(), Streams: a.sup.Status(),
		Delivery: a.dlv.figures(), Thumbnails: a.thumbnailMetrics(),
	}
	if st.Pending > 0 {
		s.OldestAge = a.oldestAge()
	}
	a.mu.Lock()
	a.forgetDroppedLocked(st.Pending, st.OldestSeq, st.NextSeq)
	s.AppendErrors = a.appendErr
	s.Pending = make(map[string]int, len(a.pending))
	for k, v := range a.pending {
		s.Pending[k] = v
	}
	s.ConfigVersion = map[string]int64{"agent": a.agentDoc.Version}
	if a.fleetDoc != nil {
		s.ConfigVersion["fleet"] = a.fleetDoc.Version
	}
	a.mu.Unlock()
	return s
}

// eventKey is a defect and a state (raised, cleared).
type eventKey struct{ Defect, State string }

// eventCounts counts the events spooled since the start, by defect and
// state (bounded: the defects times two). Its zero value is ready.
type eventCounts struct {
	mu sync.Mutex
	n  map[eventKey]uint64
}

func (c *eventCounts) add(defect string, state detectors.State) {
	c.mu.Lock()
	if c.n == nil {
		c.n = map[eventKey]uint64{}
	}
	c.n[eventKey{defect, string(state)}]++
	c.mu.Unlock()
}

func (c *eventCounts) snapshot() map[eventKey]uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[eventKey]uint64, len(c.n))
	for k, v := range c.n {
		out[k] = v
	}
	return out
}

// streamStates are the values of streamqc_stream_state's state label.
var streamStates = [...]supervisor.State{supervisor.Starting, supervisor.Running, supervisor.Retrying, supervisor.Ended, supervisor.Stopped}

// promCollector turns a promState into the streamqc_* families.
type promCollector struct {
	state func() promState

	buildInfo, agentInfo, brokerConnected, configVersion                         *prometheus.Desc
	events, appendErrors                                                         *prometheus.Desc
	spoolPending, spoolBytes, spoolMax, spoolDropped, spoolAppended, spoolAcked  *prometheus.Desc
	spoolOldest                                                                  *prometheus.Desc
	spoolStoredMode, spoolSent, spoolWatermark, spoolMissing, spoolResends       *prometheus.Desc
	thumbnails                                                                   *prometheus.Desc
	streamState, info, fps, frames, audioBlocks, decodeLag, momentary, shortTerm *prometheus.Desc
	queued, restarts, reconnects, openAlarms, transportErrors                    *prometheus.Desc
}

func newPromCollector(state func() promState) *promCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("streamqc_"+name, help, labels, nil)
	}
	return &promCollector{
		state:           state,
		buildInfo:       d("build_info", "The agent's version and build flavor (cpu or cuda); always 1.", "version", "flavor"),
		agentInfo:       d("agent_info", "The fleet and agent names of this agent (its MQTT topics); always 1.", "fleet", "agent"),
		brokerConnected: d("broker_connected", "1 while the MQTT session to the broker is up, else 0."),
		configVersion:   d("config_version", "Version of the applied desired config, by scope (agent, fleet); 0: the local file's streams.", "scope"),
		events:          d("events_total", "Events spooled (made durable for the broker) since the start, by defect and state (raised, cleared).", "defect", "state"),
		appendErrors:    d("spool_append_errors_total", "Events that could not be spooled (lost) since the start."),
		spoolPending:    d("spool_pending_events", "Events in the spool: not yet acknowledged by the broker, or (stored mode) not yet stored by the consumer of record."),
		spoolBytes:      d("spool_bytes", "Bytes of the spool's segment files on disk."),
		spoolMax:        d("spool_max_bytes", "The spool's bound (spool.max_bytes); past it the oldest events are dropped."),
		spoolDropped:    d("spool_dropped_events_total", "Unsent events the spool dropped (oldest first) to stay within spool.max_bytes, since the start."),
		spoolAppended:   d("spool_appended_events_total", "Events appended to the spool since the start."),
		spoolAcked:      d("spool_acked_events_total", "Events deleted from the spool as delivered since the start: acknowledged by the broker, or (stored mode) stored by the consumer of record."),
		spoolOldest:     d("spool_oldest_age_seconds", "Age of the oldest event in the spool (unsent; stored mode: unstored); 0 when the spool is empty."),
		spoolStoredMode: d("spool_stored_mode", "1 while events are kept until the consumer of record stored them (spool.keep_until stored, or auto after its watermark), 0 while a broker acknowledgement deletes them."),
		spoolSent:       d("spool_sent_events", "Events in the spool the broker acknowledged, not yet stored by the consumer of record (stored mode)."),
		spoolWatermark:  d("spool_stored_watermark", "The consumer of record's last stored watermark for this agent: every event seq up to it is stored or declared missing (0: none received)."),
		spoolMissing:    d("spool_missing_declared_total", "Event seqs the agent declared missing to the consumer of record (dropped, unreadable, unwritten) since the start."),
		spoolResends:    d("spool_resends_total", "Times the agent sent its events again from the stored watermark (a gap, or a watermark that stayed behind) since the start."),
		thumbnails:      d("thumbnails_total", "Thumbnails since the start, by outcome: published, dropped (the worker busy), limited (rate limits), failed (not published).", "outcome"),
		streamState:     d("stream_state", "1 for the stream's current state, 0 for the others.", "stream", "state"),
		info:            d("stream_info", "Where the stream decodes (cpu, nvdec:N; empty before it is placed); always 1.", "stream", "decoder"),
		fps:             d("stream_fps", "Decoded video frames per second, over the last second or more.", "stream"),
		frames:          d("stream_frames_total", "Video frames decoded since the stream started.", "stream"),
		audioBlocks:     d("stream_audio_blocks_total", "Audio blocks measured since the stream started.", "stream"),
		decodeLag:       d("stream_decode_lag_seconds", "How far decoding is behind the wall clock (live and realtime inputs only).", "stream"),
		momentary:       d("stream_loudness_momentary_lufs", "EBU R 128 momentary loudness (400 ms), in LUFS.", "stream"),
		shortTerm:       d("stream_loudness_short_term_lufs", "EBU R 128 short-term loudness (3 s), in LUFS.", "stream"),
		queued:          d("stream_spool_pending_events", "The stream's events in the spool: not yet acknowledged by the broker, or (stored mode) not yet stored by the consumer of record.", "stream"),
		restarts:        d("stream_restarts_total", "Times the stream's pipeline was started again after a failure.", "stream"),
		reconnects:      d("stream_reconnects_total", "Times the stream's input was opened again after it was lost.", "stream"),
		openAlarms:      d("stream_open_alarms", "Alarms raised and not cleared, by stream and defect (tr101290: one per indicator).", "stream", "defect"),
		transportErrors: d("transport_errors_total", "ETSI TR 101 290 errors of an MPEG-TS input, by indicator.", "stream", "indicator"),
	}
}

func (c *promCollector) descs() []*prometheus.Desc {
	return []*prometheus.Desc{
		c.buildInfo, c.agentInfo, c.brokerConnected, c.configVersion, c.events, c.appendErrors,
		c.spoolPending, c.spoolBytes, c.spoolMax, c.spoolDropped, c.spoolAppended, c.spoolAcked, c.spoolOldest,
		c.spoolStoredMode, c.spoolSent, c.spoolWatermark, c.spoolMissing, c.spoolResends, c.thumbnails,
		c.streamState, c.info, c.fps, c.frames, c.audioBlocks, c.decodeLag, c.momentary, c.shortTerm,
		c.queued, c.restarts, c.reconnects, c.openAlarms, c.transportErrors,
	}
}

// Describe implements prometheus.Collector.
func (c *promCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.descs() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *promCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.state()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		send(ch, d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		send(ch, d, prometheus.CounterValue, v, labels...)
	}
	gauge(c.buildInfo, 1, s.Version, s.Flavor)
	gauge(c.agentInfo, 1, s.Fleet, s.Agent)
	gauge(c.brokerConnected, b2f(s.Connected))
	for scope, v := range s.ConfigVersion {
		gauge(c.configVersion, float64(v), scope)
	}

	// Every defect and state from the start (zeros too), so that rate()
	// sees the first event.
	events := make(map[eventKey]uint64, len(detectors.Names)*2+len(s.Events))
	for _, d := range detectors.Names {
		events[eventKey{d, string(detectors.Raised)}] = 0
		events[eventKey{d, string(detectors.Cleared)}] = 0
	}
	for k, v := range s.Events {
		events[k] = v
	}
	for k, v := range events {
		counter(c.events, float64(v), k.Defect, k.State)
	}
	counter(c.appendErrors, float64(s.AppendErrors))
	gauge(c.spoolPending, float64(s.Spool.Pending))
	gauge(c.spoolBytes, float64(s.Spool.Bytes))
	gauge(c.spoolMax, float64(s.SpoolMaxBytes))
	counter(c.spoolDropped, float64(s.Spool.Dropped))
	counter(c.spoolAppended, float64(s.Spool.Appended))
	counter(c.spoolAcked, float64(s.Spool.Acked))
	gauge(c.spoolOldest, s.OldestAge)
	gauge(c.spoolStoredMode, b2f(s.Delivery.keepUntil == config.KeepStored))
	gauge(c.spoolSent, float64(s.Spool.Sent))
	gauge(c.spoolWatermark, float64(s.Delivery.stored))
	counter(c.spoolMissing, float64(s.Delivery.missing))
	counter(c.spoolResends, float64(s.Delivery.resends))
	if t := s.Thumbnails; t != nil {
		counter(c.thumbnails, float64(t.Published), "published")
		counter(c.thumbnails, float64(t.Dropped), "dropped")
		counter(c.thumbnails, float64(t.Limited), "limited")
		counter(c.thumbnails, float64(t.Failed), "failed")
	}

	for _, st := range s.Streams {
		id := st.ID
		for _, state := range streamStates {
			gauge(c.streamState, b2f(st.State == state), id, string(state))
		}
		gauge(c.info, 1, id, st.Decoder)
		gauge(c.fps, st.FPS, id)
		counter(c.frames, float64(st.Frames), id)
		counter(c.audioBlocks, float64(st.AudioBlocks), id)
		if finiteValue(st.DecodeLag) {
			gauge(c.decodeLag, st.DecodeLag, id)
		}
		if finiteValue(st.Momentary) {
			gauge(c.momentary, st.Momentary, id)
		}
		if finiteValue(st.ShortTerm) {
			gauge(c.shortTerm, st.ShortTerm, id)
		}
		gauge(c.queued, float64(s.Pending[id]), id)
		counter(c.restarts, float64(st.Restarts), id)
		counter(c.reconnects, float64(st.Reconnects), id)
		open := make(map[string]int, len(detectors.Names))
		for _, d := range detectors.Names {
			open[d] = 0
		}
		for _, k := range st.Alarms {
			open[alarmDefect(k)]++
		}
		for d, n := range open {
			gauge(c.openAlarms, float64(n), id, d)
		}
		for ind, n := range st.TR101290 {
			counter(c.transportErrors, float64(n), id, ind)
		}
	}
}

// send sends one metric, or an invalid one that fails the scrape's family
// and not the process (a label value that is not UTF-8).
func send(ch chan<- prometheus.Metric, d *prometheus.Desc, t prometheus.ValueType, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(d, t, v, labels...)
	if err != nil {
		m = prometheus.NewInvalidMetric(d, err)
	}
	ch <- m
}

// alarmDefect is the defect of an alarm key ("black", "tr101290/1.4 ...").
func alarmDefect(key string) string {
	for i := 0; i < len(key); i++ {
		if key[i] == '/' {
			return key[:i]
		}
	}
	return key
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

func finiteValue(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }
