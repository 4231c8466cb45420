package thumbnail

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"image"
	"image/jpeg"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/schema"
)

// Config of thumbnails (the agent's `thumbnails:` section).
type Config struct {
	// Alarms: a thumbnail of the picture that raised each alarm.
	Alarms bool
	// Live: a thumbnail of every stream this often (0: none).
	Live time.Duration
	// Width is the thumbnails' largest width (pixels, even).
	Width int
	// Quality is the JPEG quality (1..100).
	Quality int
	// MinInterval: a stream's alarm thumbnails at least this far apart;
	// an alarm raised sooner has none.
	MinInterval time.Duration
	// MaxPerSecond caps the thumbnails of all streams (alarm and live).
	MaxPerSecond int
}

// DefaultConfig: alarm thumbnails 320 pixels wide at quality 75, at most
// one per stream every 2 s and 10 a second in all; no live thumbnails.
func DefaultConfig() Config {
	return Config{Alarms: true, Width: 320, Quality: 75, MinInterval: 2 * time.Second, MaxPerSecond: 10}
}

// Thumb is one encoded thumbnail, as the worker hands it to Publish.
type Thumb struct {
	ID, Stream, Kind string // Kind: schema.ThumbAlarm or schema.ThumbLive
	Event, Defect    string // alarm thumbnails
	PTS              float64
	Time             time.Time
	Width, Height    int
	JPEG             []byte // valid during the Publish call only
}

// Doc is t's document on its topic (thumbnail.schema.json).
func (t *Thumb) Doc(fleet, agent string) schema.ThumbnailDoc {
	return schema.ThumbnailDoc{Type: "thumbnail", ID: t.ID, Fleet: fleet, Agent: agent, Stream: t.Stream, Kind: t.Kind,
		Event: t.Event, Defect: t.Defect, PTS: math.Max(0, t.PTS), Time: t.Time.UTC().Format(time.RFC3339Nano),
		Width: t.Width, Height: t.Height, ContentType: "image/jpeg", Data: t.JPEG}
}

// Publish sends one thumbnail (the agent: retained on its topic); it runs on
// the worker, and may block it (the queue then drops).
type Publish func(ctx context.Context, t *Thumb) error

// Stats count thumbnails since the start.
type Stats struct {
	Published uint64 // encoded and published
	// Dropped: taken but not published because the worker was busy (a
	// stream's previous one still queued or the queue full), the picture
	// unreadable, or the event not spooled.
	Dropped uint64
	Limited uint64 // not taken: a rate limit (Config.MinInterval, MaxPerSecond)
	Failed  uint64 // encoding or publishing failed (no broker connection...)
}

// Service is the agent's thumbnails: a Camera per stream, one worker.
type Service struct {
	cfg     Config
	log     *slog.Logger
	publish Publish
	jobs    chan *Shot

	mu     sync.Mutex
	global Limiter

	published, dropped, limited, failed atomic.Uint64
}

// queueLen bounds the shots waiting for the worker; each stream has at most
// two in flight (alarm and live), so it only fills when the worker lags.
const queueLen = 16

// New makes a Service; Run runs its worker.
func New(cfg Config, publish Publish, log *slog.Logger) *Service {
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, log: log, publish: publish, jobs: make(chan *Shot, queueLen),
		global: Limiter{Rate: float64(cfg.MaxPerSecond)}}
}

// Config is the Service's config.
func (s *Service) Config() Config { return s.cfg }

// Stats returns the counts so far.
func (s *Service) Stats() Stats {
	return Stats{Published: s.published.Load(), Dropped: s.dropped.Load(), Limited: s.limited.Load(), Failed: s.failed.Load()}
}

func (s *Service) allow(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.global.Allow(now)
}

// allowLive is allow for a live thumbnail: it leaves half of the budget's
// burst to alarms, so that live pictures of many streams cannot take every
// token and leave the next alarms without their picture.
func (s *Service) allowLive(now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.global.AllowAbove(now, s.global.Rate/2)
}

// Run encodes and publishes queued thumbnails until ctx is done, then those
// still queued (Publish sees ctx done: the agent's fail at once, counted;
// analyze's files are written).
func (s *Service) Run(ctx context.Context) {
	var buf bytes.Buffer
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case sh := <-s.jobs:
					s.encode(ctx, sh, &buf)
				default:
					return
				}
			}
		case sh := <-s.jobs:
			s.encode(ctx, sh, &buf)
		}
	}
}

func (s *Service) encode(ctx context.Context, sh *Shot, buf *bytes.Buffer) {
	t := Thumb{ID: sh.ID, Stream: sh.Stream, Kind: sh.Kind, Event: sh.Event, Defect: sh.Defect, PTS: sh.PTS, Time: sh.Time,
		Width: sh.Image.Rect.Dx(), Height: sh.Image.Rect.Dy()}
	buf.Reset()
	err := jpeg.Encode(buf, &sh.Image, &jpeg.Options{Quality: s.cfg.Quality})
	sh.release() // the picture is in buf: the stream may take the next
	if err != nil {
		s.failed.Add(1)
		s.log.Warn("thumbnail not encoded", "stream", t.Stream, "kind", t.Kind, "err", err)
		return
	}
	t.JPEG = buf.Bytes()
	if err := s.publish(ctx, &t); err != nil {
		s.failed.Add(1)
		s.log.Debug("thumbnail not published", "stream", t.Stream, "kind", t.Kind, "id", t.ID, "err", err)
		return
	}
	s.published.Add(1)
}

// Shot is one picture taken for a thumbnail, from the moment a Camera takes
// it until the worker has encoded it.
type Shot struct {
	ID     string // what the event's thumbnail field names
	Stream string
	Kind   string
	// Event is the id of the event the alarm thumbnail illustrates: the
	// emitter of the event sets it once the event is spooled; a shot
	// committed without it is dropped.
	Event  string
	Defect string
	PTS    float64
	Time   time.Time
	Image  image.YCbCr

	filled bool
	busy   atomic.Bool // taken; cleared by the worker once encoded
	svc    *Service
}

func (sh *Shot) release() { sh.busy.Store(false) }

// DeviceScaler downscales a picture held in GPU memory (VideoFrame.Device and
// its Chroma's device addresses) into dst, whose size Size gave, with the
// arithmetic of Downscale; gpu's Backend is one.
type DeviceScaler interface {
	ScaleDevice(f *detectors.VideoFrame, dst *image.YCbCr) error
}

// recentVideo: an alarm raised without a picture at hand (decode errors,
// audio alarms) takes the next picture if one came this recently (media
// seconds) before it; an audio-only stream has none.
const recentVideo = 2.0

// Camera takes one stream's thumbnails. It belongs to the stream's goroutine
// (all its methods are called from it); its two shots, alarm and live, are
// preallocated and reused.
type Camera struct {
	svc      *Service
	stream   string
	alarm    Shot
	live     Shot
	alarmInt Interval
	liveInt  Interval
	pending  *Shot // an alarm's shot waiting for the next picture
	lastPTS  float64
	seen     bool
	scaler   DeviceScaler
}

// Camera makes the camera of a stream.
func (s *Service) Camera(stream string) *Camera {
	c := &Camera{svc: s, stream: stream, alarmInt: Interval{Every: s.cfg.MinInterval}, liveInt: Interval{Every: s.cfg.Live}}
	for _, sh := range []*Shot{&c.alarm, &c.live} {
		sh.Stream, sh.svc = stream, s
	}
	c.alarm.Kind, c.live.Kind = schema.ThumbAlarm, schema.ThumbLive
	return c
}

// SetScaler sets how pictures in GPU memory are downscaled (nil: they are
// not: such a stream has no thumbnails).
func (c *Camera) SetScaler(d DeviceScaler) { c.scaler = d }

func (c *Camera) drop(what string, args ...any) {
	c.svc.dropped.Add(1)
	c.svc.log.Debug("thumbnail dropped: "+what, append([]any{"stream", c.stream}, args...)...)
}

// Alarm takes the thumbnail of an alarm raised at media time t with f the
// picture at hand (nil: none; the next picture is taken if the stream has
// video). It returns nil when there is none (off, rate-limited, the
// previous one still in the worker); else the caller puts its ID in the
// event, sets its Event once the event is spooled, and calls Commit.
func (c *Camera) Alarm(f *detectors.VideoFrame, defect string, t float64) *Shot {
	if !c.svc.cfg.Alarms {
		return nil
	}
	if f == nil && (!c.seen || math.Abs(t-c.lastPTS) > recentVideo) {
		return nil // no video to show
	}
	now := time.Now()
	if c.alarm.busy.Load() || c.pending != nil {
		c.drop("the previous is still in the worker", "defect", defect)
		return nil
	}
	// The stream's interval is taken only once the global limit let the
	// shot through: a refused alarm took no picture.
	if !c.alarmInt.Due(now) || !c.svc.allow(now) {
		c.svc.limited.Add(1)
		return nil
	}
	c.alarmInt.Allow(now)
	sh := &c.alarm
	sh.busy.Store(true)
	sh.ID, sh.Event, sh.Defect, sh.Time, sh.PTS, sh.filled = newID(), "", defect, now, t, false
	if f != nil && !c.fill(sh, f) {
		sh.release()
		return nil
	}
	return sh
}

// Commit hands a shot of Alarm to the worker (or, without its picture yet,
// to the next picture); without its Event it is dropped.
func (c *Camera) Commit(sh *Shot) {
	switch {
	case sh.Event == "":
		sh.release()
		c.drop("its event was not spooled", "id", sh.ID)
	case sh.filled:
		c.submit(sh)
	default:
		c.pending = sh
	}
}

// Picture is called with every picture after the detectors saw it: it
// completes an alarm's pending shot and takes the live thumbnail when due.
// Without either it costs a few comparisons (and a clock read with live
// thumbnails on).
func (c *Camera) Picture(f *detectors.VideoFrame) {
	c.lastPTS, c.seen = f.PTS, true
	if sh := c.pending; sh != nil {
		c.pending = nil
		sh.PTS, sh.Time = f.PTS, time.Now()
		if c.fill(sh, f) {
			c.submit(sh)
		} else {
			sh.release()
		}
	}
	if c.svc.cfg.Live <= 0 || c.live.busy.Load() {
		return
	}
	now := time.Now()
	if !c.liveInt.Allow(now) {
		return
	}
	if !c.svc.allowLive(now) {
		c.svc.limited.Add(1)
		return
	}
	sh := &c.live
	sh.busy.Store(true)
	sh.ID, sh.Time, sh.PTS = newID(), now, f.PTS
	if c.fill(sh, f) {
		c.submit(sh)
	} else {
		sh.release()
	}
}

// End drops a shot still waiting for a picture: the session ended.
func (c *Camera) End() {
	if sh := c.pending; sh != nil {
		c.pending = nil
		sh.release()
		c.drop("the input ended before a picture", "id", sh.ID)
	}
	c.seen = false
}

// fill downscales f into sh's image.
func (c *Camera) fill(sh *Shot, f *detectors.VideoFrame) bool {
	w, h, ok := Size(f.Width, f.Height, c.svc.cfg.Width)
	if !ok {
		c.drop("picture too small", "width", f.Width, "height", f.Height)
		return false
	}
	Resize(&sh.Image, w, h)
	var err error
	switch {
	case f.Device != 0 && c.scaler != nil:
		err = c.scaler.ScaleDevice(f, &sh.Image)
	case f.Device != 0:
		err = fmt.Errorf("%w: in GPU memory, no device scaler", ErrPicture)
	default:
		err = Downscale(&sh.Image, f)
	}
	if err != nil {
		c.drop("downscale", "err", err)
		return false
	}
	sh.filled = true
	return true
}

func (c *Camera) submit(sh *Shot) {
	select {
	case c.svc.jobs <- sh:
	default:
		sh.release()
		c.drop("the worker's queue is full", "kind", sh.Kind, "id", sh.ID)
	}
}

func newID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
