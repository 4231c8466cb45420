// Package supervisor runs many streams at once, each input -> decode ->
// detect on its own goroutine. A stream that fails is retried with backoff
// and jitter and reported as that stream's signal_loss, never disturbing the
// others; a new config is applied as a diff: only added, removed or changed
// streams start, stop or restart.
package supervisor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/media"
	"github.com/streamqc/streamqc/thumbnail"
	"github.com/streamqc/streamqc/transport"
)

// StreamConfig is everything one stream runs with.
type StreamConfig struct {
	ID        string
	Media     media.Options
	Detectors detectors.Config
	// Loop starts a file input again at its end.
	Loop bool
	// Decoder says where the stream decodes ("cpu", "nvdec:0"), as placed
	// by the Placer; empty without one.
	Decoder string
	// Precheck, when set, runs before every open of the input; an error is
	// an open failure (signal_loss, retry). File inputs check here that the
	// path still resolves inside the media directory.
	Precheck func() error `json:"-"`
}

func (c StreamConfig) equal(o StreamConfig) bool {
	c.Media.Logger, o.Media.Logger = nil, nil
	c.Precheck, o.Precheck = nil, nil // functions never compare equal
	c.Media.OnDecoder, o.Media.OnDecoder = nil, nil
	return reflect.DeepEqual(c, o)
}

// State of a stream.
type State string

// States a stream goes through.
const (
	Starting State = "starting" // opening its input
	Running  State = "running"  // frames or audio flow
	Retrying State = "retrying" // the input failed; waiting to open it again
	Ended    State = "ended"    // a file input reached its end
	Stopped  State = "stopped"
)

// Emit receives every event of every stream; it is called from the streams'
// goroutines, concurrently, and should make the event durable before it
// returns (the agent appends it to the spool). shot, when not nil, is the
// thumbnail of a raised alarm's picture (Options.Thumbnails): the event
// names shot.ID, and Emit sets shot.Event to the spooled event's id (left
// empty, the thumbnail is dropped).
type Emit func(stream string, e detectors.Event, shot *thumbnail.Shot)

// Options of a Supervisor.
type Options struct {
	Logger *slog.Logger
	Emit   Emit
	// MinBackoff and MaxBackoff bound the delay before a failed input is
	// opened again (doubling, with up to 50% jitter).
	MinBackoff, MaxBackoff time.Duration
	// OnState, when set, is called after a stream changes state.
	OnState func(id string, s State)
	// Placer, when set, decides each stream's decoder and thread count,
	// again every PlaceEvery (default 5 s).
	Placer     Placer
	PlaceEvery time.Duration
	// Accel, when set (the cuda build), measures the frames of streams
	// decoding on NVDEC on their GPU, in place.
	Accel detectors.Accelerator
	// Thumbnails, when set, takes the thumbnails of every stream (the
	// pictures that raise alarms, live ones).
	Thumbnails *thumbnail.Service
}

// Supervisor owns the running streams.
type Supervisor struct {
	o       Options
	ctx     context.Context
	applyMu sync.Mutex     // one Apply or Rebalance at a time
	desired []StreamConfig // as configured, before placement
	stopped bool           // Stop ran: Rebalance starts nothing again
	mu      sync.Mutex
	streams map[string]*stream
}

// New makes a supervisor whose streams live until ctx is done or Stop.
func New(ctx context.Context, o Options) *Supervisor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Emit == nil {
		o.Emit = func(string, detectors.Event, *thumbnail.Shot) {}
	}
	if o.PlaceEvery <= 0 {
		o.PlaceEvery = 5 * time.Second
	}
	s := &Supervisor{o: o, ctx: ctx, streams: map[string]*stream{}}
	if o.Placer != nil {
		go s.rebalance(ctx)
	}
	return s
}

// Diff says what an Apply changed.
type Diff struct {
	Started, Stopped, Restarted, Unchanged []string
}

// Apply makes the running set match cfgs: streams not in it stop, new ones
// start, changed ones restart; the others keep running untouched.
func (s *Supervisor) Apply(cfgs []StreamConfig) Diff {
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	s.desired, s.stopped = cfgs, false
	return s.apply(s.place(cfgs))
}

func (s *Supervisor) apply(cfgs []StreamConfig) Diff {
	var d Diff
	want := map[string]StreamConfig{}
	for _, c := range cfgs {
		want[c.ID] = c
	}
	s.mu.Lock()
	var stopping []*stream
	var causes []string
	for id, st := range s.streams {
		c, ok := want[id]
		switch {
		case !ok:
			d.Stopped = append(d.Stopped, id)
			stopping, causes = append(stopping, st), append(causes, detectors.CauseStreamStopped)
			delete(s.streams, id)
		case !st.cfg.equal(c):
			d.Restarted = append(d.Restarted, id)
			stopping, causes = append(stopping, st), append(causes, detectors.CauseConfigChanged)
			delete(s.streams, id)
		default:
			d.Unchanged = append(d.Unchanged, id)
		}
	}
	s.mu.Unlock()
	// Stop outside the lock: a stopping stream flushes its clears through Emit.
	for i, st := range stopping {
		st.stop(causes[i])
	}
	s.mu.Lock()
	for _, c := range cfgs {
		if _, ok := s.streams[c.ID]; ok {
			continue
		}
		if !slices.Contains(d.Restarted, c.ID) {
			d.Started = append(d.Started, c.ID)
		}
		st := s.newStream(c)
		s.streams[c.ID] = st
		go st.run()
	}
	s.mu.Unlock()
	for _, l := range [][]string{d.Started, d.Stopped, d.Restarted, d.Unchanged} {
		slices.Sort(l)
	}
	return d
}

// Stop stops every stream and waits until each has flushed its clears, or
// ctx is done.
func (s *Supervisor) Stop(ctx context.Context) error {
	s.applyMu.Lock()
	s.desired, s.stopped = nil, true
	s.applyMu.Unlock()
	s.mu.Lock()
	all := make([]*stream, 0, len(s.streams))
	for id, st := range s.streams {
		all = append(all, st)
		delete(s.streams, id)
	}
	s.mu.Unlock()
	for _, st := range all {
		st.why.Store(detectors.CauseAgentStopping)
		st.cancel()
	}
	for _, st := range all {
		select {
		case <-st.done:
		case <-ctx.Done():
			return fmt.Errorf("streams still stopping: %w", ctx.Err())
		}
	}
	return nil
}

// Status of one stream, for metrics and the reported config.
type Status struct {
	ID          string
	State       State
	Frames      int64
	AudioBlocks int64
	FPS         float64
	DecodeLag   float64 // seconds behind the wall clock; NaN for a file read as fast as it decodes
	// Decoder is where it decodes: "cpu", "nvdec:0"; once media has opened
	// the video decoder, where it really does (a stream placed on NVDEC
	// whose decoder fell back to software says "cpu"), before that as
	// placed; empty without a placer and before the first open.
	Decoder    string
	Momentary  float64 // LUFS, NaN when unknown
	ShortTerm  float64
	Restarts   int64
	Reconnects int64
	Alarms     []string
	Error      string
	// TR101290 counts transport errors per indicator; nil unless the input is MPEG-TS.
	TR101290 map[string]int64
	// Stalled is set while a live input is lost and being reopened: no
	// frames, but the pipeline is not wedged.
	Stalled bool
}

// Status returns every stream's state, sorted by id. FPS is measured since
// the previous call.
func (s *Supervisor) Status() []Status {
	s.mu.Lock()
	list := make([]*stream, 0, len(s.streams))
	for _, st := range s.streams {
		list = append(list, st)
	}
	s.mu.Unlock()
	out := make([]Status, 0, len(list))
	for _, st := range list {
		out = append(out, st.status())
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

type stream struct {
	sup    *Supervisor
	cfg    StreamConfig
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}
	why    atomic.Value // string: the cause of the clears its stop makes

	frames, blocks      atomic.Int64
	restarts, reconnect atomic.Int64
	momentary, short    atomic.Uint64 // float64 bits
	lagBits             atomic.Uint64
	stalled             atomic.Bool
	live                bool
	ts                  atomic.Bool                           // the input is MPEG-TS, checked against TR 101 290
	tr                  [transport.NumIndicators]atomic.Int64 // its errors per indicator
	cam                 *thumbnail.Camera                     // nil: no thumbnails
	video               atomic.Value                          // string: the video decoder media opened last ("h264 (cuda)")

	mu       sync.Mutex
	state    State
	err      string
	alarms   map[string]bool
	lastFPS  float64
	sampleAt time.Time
	sampleN  int64
}

func (s *Supervisor) newStream(c StreamConfig) *stream {
	ctx, cancel := context.WithCancel(s.ctx)
	live := media.IsLive(c.Media.URL) || c.Media.Realtime
	if c.Media.Live != nil {
		live = *c.Media.Live || c.Media.Realtime
	}
	st := &stream{
		sup: s, cfg: c, ctx: ctx, cancel: cancel, done: make(chan struct{}),
		log:    s.o.Logger.With("stream", c.ID),
		state:  Starting,
		alarms: map[string]bool{},
		live:   live,
	}
	st.momentary.Store(math.Float64bits(math.NaN()))
	st.short.Store(math.Float64bits(math.NaN()))
	st.lagBits.Store(math.Float64bits(math.NaN()))
	st.cfg.Media.Logger = st.log
	if s.o.Thumbnails != nil {
		st.cam = s.o.Thumbnails.Camera(c.ID)
	}
	return st
}

func (st *stream) stop(cause string) {
	st.why.Store(cause)
	st.cancel()
	<-st.done
}

// stopCause is why the stream was stopped (the cause of its last clears).
func (st *stream) stopCause() string {
	if c, ok := st.why.Load().(string); ok {
		return c
	}
	return detectors.CauseStreamStopped
}

func (st *stream) setState(s State, err error) {
	st.mu.Lock()
	changed := st.state != s
	st.state = s
	if err != nil {
		st.err = err.Error()
	} else if s == Running {
		st.err = ""
	}
	st.mu.Unlock()
	if changed && st.sup.o.OnState != nil {
		st.sup.o.OnState(st.cfg.ID, s)
	}
}

// emit hands e to Options.Emit; f is the picture being analysed (nil:
// none), whose thumbnail a raised alarm takes.
func (st *stream) emit(e detectors.Event, f *detectors.VideoFrame) {
	st.mu.Lock()
	if e.State == detectors.Raised {
		st.alarms[e.Key()] = true
	} else {
		delete(st.alarms, e.Key())
	}
	st.mu.Unlock()
	shot := st.shoot(e, f)
	st.sup.o.Emit(st.cfg.ID, e, shot)
	if shot != nil {
		st.cam.Commit(shot)
	}
}

// run opens the input again and again until the stream is stopped: a failed
// input is a signal_loss of this stream, raised once per outage and cleared
// by the first frame or audio block that arrives again.
func (st *stream) run() {
	defer close(st.done)
	defer st.setState(Stopped, nil)
	backoff := st.sup.o.MinBackoff
	var loss *detectors.Event // the supervisor's own signal_loss, while raised
	var lossWall time.Time
	for looped := false; ; {
		if !looped {
			// A looping file starting over is not a restart and stays running.
			st.setState(Starting, nil)
		}
		looped = false
		m := &meter{st: st}
		m.onFirst = func() {
			st.setState(Running, nil)
			if loss != nil {
				e := *loss
				e.State, e.Cause = detectors.Cleared, detectors.CauseRecovered
				e.End = e.Start + time.Since(lossWall).Seconds()
				st.emit(e, nil)
				loss = nil
			}
		}
		cause := detectors.CauseRecovered // until this run of the input ends
		emit := func(e detectors.Event) {
			if e.State == detectors.Cleared && e.Cause == "" {
				e.Cause = cause
			}
			st.emit(e, m.cur)
		}
		mo := st.cfg.Media
		mo.OnDecoder = st.onDecoder
		// A looping file is one continuous input (its alarms do not clear
		// and raise again at every wrap): media starts it over itself.
		mo.Loop = st.cfg.Loop
		backend, release := st.backend(&mo)
		st.scaler(backend)
		an, err := detectors.NewAnalyzer(st.cfg.Detectors, backend, emit)
		if err != nil {
			release()
			// The fleet config checked this; reaching here is a bug, not an input problem.
			st.log.Error("detector config refused", "err", err)
			st.setState(Stopped, err)
			return
		}
		m.an = an
		var info media.Info
		if st.cfg.Precheck != nil {
			err = st.cfg.Precheck()
		}
		if err == nil {
			info, err = media.Run(st.ctx, mo, m)
		}
		st.endSession()
		release()
		st.reconnect.Add(int64(info.Reconnects))
		cause = detectors.CauseInputEnded
		if st.ctx.Err() != nil {
			cause = st.stopCause()
		}
		an.Flush(info.End)
		if st.ctx.Err() != nil {
			if loss != nil {
				e := *loss
				e.State, e.End = detectors.Cleared, e.Start+time.Since(lossWall).Seconds()
				e.Reason, e.Cause = "stream stopped", cause
				st.emit(e, nil)
			}
			return
		}
		delivered := info.Frames+info.AudioBlocks > 0
		if err == nil && delivered && !media.IsLive(st.cfg.Media.URL) {
			if st.cfg.Loop {
				backoff = st.sup.o.MinBackoff
				looped = true
				continue
			}
			st.log.Info("input ended")
			st.setState(Ended, nil)
			<-st.ctx.Done()
			return
		}
		if err == nil {
			err = errors.New("input ended")
			if !delivered {
				err = errors.New("input delivered nothing")
			}
		}
		if delivered {
			backoff = st.sup.o.MinBackoff
		}
		if loss == nil {
			loss = &detectors.Event{Defect: detectors.SignalLoss, State: detectors.Raised, Start: info.End, Reason: err.Error()}
			lossWall = time.Now()
			st.emit(*loss, nil)
		}
		st.setState(Retrying, err)
		wait := backoff + time.Duration(rand.Int64N(int64(backoff)/2+1))
		st.log.Warn("input failed, retrying", "err", err, "in", wait.Round(time.Millisecond))
		select {
		case <-st.ctx.Done():
			e := *loss
			e.State, e.End = detectors.Cleared, e.Start+time.Since(lossWall).Seconds()
			e.Reason, e.Cause = "stream stopped", st.stopCause()
			st.emit(e, nil)
			return
		case <-time.After(wait):
		}
		st.restarts.Add(1)
		backoff = min(backoff*2, st.sup.o.MaxBackoff)
	}
}

func (st *stream) status() Status {
	now := time.Now()
	frames := st.frames.Load()
	st.mu.Lock()
	defer st.mu.Unlock()
	if !st.sampleAt.IsZero() {
		// At least a second, whoever asks how often (metrics, reported).
		if dt := now.Sub(st.sampleAt).Seconds(); dt >= 1 {
			st.lastFPS = float64(frames-st.sampleN) / dt
			st.sampleAt, st.sampleN = now, frames
		}
	} else {
		st.sampleAt, st.sampleN = now, frames
	}
	s := Status{
		ID: st.cfg.ID, State: st.state, Frames: frames, AudioBlocks: st.blocks.Load(),
		FPS:        math.Max(0, st.lastFPS),
		DecodeLag:  math.Float64frombits(st.lagBits.Load()),
		Momentary:  math.Float64frombits(st.momentary.Load()),
		ShortTerm:  math.Float64frombits(st.short.Load()),
		Restarts:   st.restarts.Load(),
		Reconnects: st.reconnect.Load(),
		Stalled:    st.stalled.Load(),
		Error:      st.err,
		Decoder:    st.decoder(),
	}
	for a := range st.alarms {
		s.Alarms = append(s.Alarms, a)
	}
	if st.ts.Load() {
		s.TR101290 = make(map[string]int64, len(st.tr))
		for i := range st.tr {
			s.TR101290[transport.Indicator(i).String()] = st.tr[i].Load()
		}
	}
	slices.Sort(s.Alarms)
	return s
}

// backend is the GPU backend of one run of the pipeline when the stream
// decodes on NVDEC and the build has one (its frames then stay on the GPU),
// else nil (the CPU); release frees it after the run.
func (st *stream) backend(mo *media.Options) (detectors.VideoBackend, func()) {
	n, ok := detectors.AcceleratedDevice(mo.HWAccel, mo.HWDevice)
	if !ok || st.sup.o.Accel == nil {
		return nil, func() {}
	}
	b, release, err := st.sup.o.Accel.Backend(n, st.cfg.Detectors)
	if err != nil {
		st.log.Warn("GPU detectors unavailable, measuring on the CPU", "err", err)
		return nil, func() {}
	}
	mo.DeviceFrames = true
	return b, release
}

// onDecoder is told by media which decoder it opened.
func (st *stream) onDecoder(track, name string) {
	if track != "video" {
		return
	}
	prev, _ := st.video.Load().(string)
	st.video.Store(name)
	if name != prev && st.cfg.Decoder != "" && st.cfg.Decoder != "cpu" && actualDecoder(st.cfg.Decoder, st.cfg.Media.HWDevice, name) == "cpu" {
		st.log.Warn("placed on a hardware decoder, decoding in software (media logged why)", "placed", st.cfg.Decoder, "decoder", name)
	}
}

func (st *stream) decoder() string {
	name, _ := st.video.Load().(string)
	return actualDecoder(st.cfg.Decoder, st.cfg.Media.HWDevice, name)
}

// actualDecoder names where a stream decodes from its placement and the
// decoder media reports ("h264 (software)", "hevc (cuda)"); "" name: not
// opened yet, the placement stands.
func actualDecoder(placed, device, name string) string {
	switch {
	case name == "":
		return placed
	case strings.HasSuffix(name, "(software)"):
		return "cpu"
	case strings.HasSuffix(name, "(cuda)"):
		if strings.HasPrefix(placed, "nvdec:") {
			return placed
		}
		if device == "" {
			device = "0"
		}
		return "nvdec:" + device
	}
	if placed != "" {
		return placed
	}
	return name
}
