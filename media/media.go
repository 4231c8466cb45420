// Package media opens an input with FFmpeg (go-astiav), demuxes and decodes
// its first video and audio tracks, and hands each decoded picture and audio
// block to a Sink in memory, as views on the decoder's own buffers.
package media

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/url"
	"runtime"
	"runtime/cgo"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"

	"github.com/streamqc/streamqc/detectors"
)

// Sink receives what the pipeline decodes; *detectors.Analyzer is one.
// Frames and blocks are valid only during the call.
type Sink interface {
	Tracks(t float64, hasVideo, hasAudio bool)
	// Video returns true to keep ref as the reference picture of the next
	// call, false to make cur the reference.
	Video(cur, ref *detectors.VideoFrame) (keepRef bool)
	Audio(b *detectors.AudioBlock)
	Packet(track detectors.Track, t float64, corrupt bool)
	DecodeError(t float64, reason string)
	Stall(t float64)
	Resume(t float64)
}

// Track selection values for Options.Video and Options.Audio.
const (
	TrackFirst = -1 // the first track of that kind (the default)
	TrackNone  = -2 // do not decode that kind
)

// Options configure one input.
type Options struct {
	URL string
	// HWAccel is auto, none, cuda, vaapi or qsv.
	HWAccel string
	// HWDevice names the device for HWAccel as FFmpeg does ("0", "1" for
	// CUDA's GPUs; a DRM node for VAAPI); empty: the default one.
	HWDevice string
	// Loop starts a file over at its end as one continuous input: media time
	// goes on, and the sink sees no end (alarms of a permanently damaged
	// clip stay raised across the wrap).
	Loop bool
	// DeviceFrames keeps CUDA-decoded pictures in GPU memory: the sink gets
	// VideoFrame.Device (on FFmpeg's CUDA device opened on the GPU's primary
	// context, which the GPU backend shares) instead of a host copy.
	DeviceFrames bool
	// Video and Audio select a stream by index, or TrackFirst / TrackNone.
	Video, Audio int
	// Threads is the decoder thread count (0: one). More than one are slice
	// threads: the same input gives the same frames, errors and events.
	Threads int
	// Realtime paces a file like a live source.
	Realtime bool
	// Duration stops after this much media time (0: to the end).
	Duration float64
	// OpenTimeout bounds opening and probing the input.
	OpenTimeout time.Duration
	// StallTimeout: on a live input, nothing received for this long is a
	// signal loss and triggers a reconnect.
	StallTimeout time.Duration
	// Live forces live behaviour (stall detection, reconnect); by default a
	// network URL is live and a file is not.
	Live *bool
	// MaxBackoff caps the reconnect delay.
	MaxBackoff time.Duration
	// Protocols, when set, is FFmpeg's protocol_whitelist for this input and
	// everything it opens (HLS segments, keys): the agent sets it from the URL's
	// scheme so a playlist cannot reach file:, pipe: or concat:.
	Protocols string
	// Formats, when set, is FFmpeg's format_whitelist: the demuxers this
	// input may be opened with.
	Formats string
	// OnDecoder, when set, is told each decoder opened (track "video" or
	// "audio", and what Info reports: codec name and "(software)", "(cuda)"),
	// at every open of the input, before its first frame.
	OnDecoder func(track, name string) `json:"-"`
	Logger    *slog.Logger
}

// Info describes what ran.
type Info struct {
	Format       string
	VideoDecoder string // codec name and "(software)" or "(cuda)"...
	AudioDecoder string
	Frames       int
	AudioBlocks  int
	Reconnects   int
	Loops        int     // times a looping file started over
	End          float64 // media time reached
	// Transport: the input was MPEG-TS of 188-byte packets and its bytes
	// were checked against TR 101 290 (the sink is a TransportSink).
	Transport bool
}

// ErrInput wraps every failure to open or read the input.
var ErrInput = errors.New("input")

// IsLive reports whether a URL names a network source rather than a file.
func IsLive(u string) bool {
	i := strings.Index(u, "://")
	if i <= 0 {
		return false
	}
	switch strings.ToLower(u[:i]) {
	case "file":
		return false
	case "http", "https":
		// A playlist may be VOD or live; a plain file over HTTP is not live.
		return strings.Contains(strings.ToLower(u), ".m3u8")
	}
	return true
}

// Run decodes the input until its end, ctx is done or Duration is reached.
// A live input that fails or stalls is reported to the sink and reopened
// with exponential backoff and jitter; a failure to open it the first time
// is returned, as is any failure of a file.
func Run(ctx context.Context, o Options, sink Sink) (info Info, err error) {
	installLog()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.OpenTimeout <= 0 {
		o.OpenTimeout = 10 * time.Second
	}
	if o.StallTimeout <= 0 {
		o.StallTimeout = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.HWAccel == "" {
		o.HWAccel = "none"
	}
	if err := checkHWAccel(o.HWAccel); err != nil {
		return Info{}, err
	}
	live := IsLive(o.URL)
	if o.Live != nil {
		live = *o.Live
	}
	wallStart := time.Now()
	if live {
		// A live input's media time goes on with the wall clock while nothing
		// arrives: one that ends in an outage (a sender gone for good) ends
		// now, and the alarms still open last until now, not zero seconds.
		defer func() {
			if o.Duration <= 0 || info.End < o.Duration {
				end := time.Since(wallStart).Seconds()
				if o.Duration > 0 {
					end = min(end, o.Duration)
				}
				info.End = max(info.End, end)
			}
		}()
	}
	var offset float64 // media time at which the current session starts
	backoff := 500 * time.Millisecond
	hwWarned := false // said once per input, not at every reopen
	for attempt := 0; ; attempt++ {
		s := &session{o: o, sink: sink, info: &info, live: live, offset: offset, wallStart: wallStart, hwWarned: &hwWarned}
		err := s.run(ctx)
		if ctx.Err() != nil || s.done {
			return info, nil
		}
		if !live {
			if err == nil && o.Loop && s.delivered {
				// Starts over where it ended, in media time.
				info.Loops++
				offset = info.End
				if o.Duration > 0 && offset >= o.Duration {
					return info, nil
				}
				continue
			}
			return info, err
		}
		if attempt == 0 && !s.opened {
			return info, err
		}
		// Live: report the loss and try again; media time goes on with the
		// wall clock while nothing arrives.
		if s.opened {
			sink.Stall(info.End)
		}
		o.Logger.Warn("input lost, reconnecting", "url", redact(o.URL), "err", err, "in", backoff)
		info.Reconnects++
		jitter := time.Duration(rand.Int64N(int64(backoff) / 2))
		select {
		case <-ctx.Done():
			return info, nil
		case <-time.After(backoff + jitter):
		}
		if s.delivered {
			backoff = 500 * time.Millisecond
		} else {
			backoff = min(backoff*2, o.MaxBackoff)
		}
		offset = max(info.End, time.Since(wallStart).Seconds())
		if o.Duration > 0 && offset >= o.Duration {
			return info, nil
		}
	}
}

func checkHWAccel(h string) error {
	switch h {
	case "auto", "none", "cuda", "vaapi", "qsv":
		return nil
	}
	return fmt.Errorf("hwaccel %q: want auto, none, cuda, vaapi or qsv", h)
}

// redact hides credentials in URLs before they are logged.
func redact(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.User == nil {
		return u
	}
	p.User = url.User("xxx")
	return p.String()
}

// session is one open of the input.
type session struct {
	o         Options
	sink      Sink
	info      *Info
	live      bool
	offset    float64
	wallStart time.Time
	opened    bool
	delivered bool
	done      bool // Duration reached

	fc     *astiav.FormatContext
	fcOpen bool // OpenInput succeeded (on failure FFmpeg has freed the context)
	// hwWarned is the input's: hardware decoding's absence is said once.
	hwWarned *bool
	intr     astiav.IOInterrupter
	// intrMu serialises Interrupt: astiav's interrupter is a plain int that
	// the open timeout and the watchdog may both set.
	intrMu sync.Mutex
	origin float64 // first timestamp of the input, seconds
	pkt    *astiav.Packet
	hot    hot
	tap    *tap // MPEG-TS inputs: the bytes also go to the transport analyzer
	video  *decoder
	audio  *decoder

	lastPacket atomic.Int64 // wall clock of the last packet, unix ns
	yielded    int64        // wall clock of the read loop's last yield, unix ns
	stalled    atomic.Bool
	paceStart  time.Time
	paceT0     float64
	paceTimer  *time.Timer
}

// decoder is one decoded track.
type decoder struct {
	track  detectors.Track
	index  int
	cc     *astiav.CodecContext
	ccC    *cCodecCtx
	hdc    *astiav.HardwareDeviceContext
	hwFmt  astiav.PixelFormat
	tb     float64
	name   string
	errs   *decoderErrors
	handle cgo.Handle
	slices *sliceQuant // HEVC: quantizers from the slice headers (nil otherwise)

	frames  [2]*astiav.Frame // decoded, double-buffered: one is the reference picture
	sw      [2]*astiav.Frame // hardware frames downloaded to host memory
	cur     int
	views   [2]detectors.VideoFrame
	hasPrev bool
	info    *frameInfo // C memory
	output  int        // frames output so far
	clean   bool       // a clean frame was seen: errors from now on are defects
	past    bool       // reached Options.Duration
	nextT   float64    // expected time of the next frame/sample
	frameD  float64    // nominal frame duration
	block   detectors.AudioBlock
	planes  [][]float32
	bufs    [][]float32
}

// yieldEvery is how often (ns) the read loop passes through Go's scheduler
// (see run): under sysmon's 10 ms preemption tick.
const yieldEvery = int64(2 * time.Millisecond)

func (s *session) run(ctx context.Context) (err error) {
	defer s.close()
	if err := s.open(ctx); err != nil {
		return err
	}
	s.opened = true
	stop := s.watch(ctx)
	defer stop()
	s.sink.Tracks(s.offset, s.video != nil, s.audio != nil)
	if s.offset > 0 {
		s.sink.Resume(s.offset)
	}
	for {
		if ctx.Err() != nil {
			return nil
		}
		if code := s.hot.readFrame(); code < 0 {
			if code == codeEagain {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			eof := code == codeEOF
			s.drain()
			err := avError(code)
			switch {
			case ctx.Err() != nil:
				return nil
			case s.stalled.Load():
				return fmt.Errorf("%w: %s: nothing received for %s", ErrInput, redact(s.o.URL), s.o.StallTimeout)
			case eof:
				if s.live {
					return fmt.Errorf("%w: %s: end of stream", ErrInput, redact(s.o.URL))
				}
				return nil
			}
			if s.live {
				return fmt.Errorf("%w: read %s: %w", ErrInput, redact(s.o.URL), err)
			}
			// A damaged file: report it where it happened and end there.
			s.sink.DecodeError(s.info.End, "read: "+err.Error())
			s.o.Logger.Warn("input ends early", "url", redact(s.o.URL), "err", err)
			return nil
		}
		now := time.Now().UnixNano()
		s.lastPacket.Store(now)
		s.delivered = true
		s.packet(ctx)
		s.pkt.Unref()
		if s.done {
			return nil
		}
		// This goroutine runs without blocking, mostly inside cgo calls:
		// without a turn through the scheduler, Go's sysmon finds its P on
		// one schedule tick for 10 ms, takes it away during a decode call,
		// and goes back to waking every 20 us: thousands of thread switches
		// a second, 5% of a 720p stream's CPU on a 2-core VM. A yield every
		// few milliseconds keeps sysmon asleep.
		if now-s.yielded > yieldEvery {
			s.yielded = now
			runtime.Gosched()
		}
	}
}

// open opens the input, probes it and opens the decoders.
// silent names why an open or probe ran out of OpenTimeout: a receiver
// (udp, rtp, srt listening) got no data; anything else got no answer.
func (s *session) silent(stage string) error {
	u := strings.ToLower(s.o.URL)
	if strings.HasPrefix(u, "udp:") || strings.HasPrefix(u, "rtp:") || strings.Contains(u, "mode=listener") {
		return fmt.Errorf("%w: %s %s: no data for %s", ErrInput, stage, redact(s.o.URL), s.o.OpenTimeout)
	}
	return fmt.Errorf("%w: %s %s: no answer within %s", ErrInput, stage, redact(s.o.URL), s.o.OpenTimeout)
}

// setTimeouts gives a live input's protocol FFmpeg's own timeouts. They
// only back ours up: opening is bounded by OpenTimeout (openCtx, which
// names the cause), reading by the stall watchdog (StallTimeout). Shorter,
// they would cut an open short (udp gave up after 5.75 s whatever
// --open-timeout said).
func (s *session) setTimeouts(d *astiav.Dictionary) {
	if !s.live {
		return
	}
	us := fmt.Sprint((max(s.o.OpenTimeout, s.o.StallTimeout) + 2*time.Second).Microseconds())
	_ = d.Set("rw_timeout", us, 0)
	// udp, srt and rtsp spell it "timeout"; rtmp reads "timeout" as the
	// time to wait for a client and turns into a server: never for rtmp.
	if !strings.HasPrefix(strings.ToLower(s.o.URL), "rtmp") {
		_ = d.Set("timeout", us, 0)
	}
}

func (s *session) open(ctx context.Context) error {
	s.fc = astiav.AllocFormatContext()
	if s.fc == nil {
		return fmt.Errorf("%w: allocating a format context", ErrInput)
	}
	s.intr = s.fc.SetInterruptCallback()
	// Opening and probing may block in the network: bound them by OpenTimeout and ctx.
	openCtx, cancel := context.WithTimeout(ctx, s.o.OpenTimeout)
	defer cancel()
	stop := context.AfterFunc(openCtx, s.interrupt)
	defer stop()
	d := astiav.NewDictionary()
	defer d.Free()
	s.setTimeouts(d)
	if s.o.Formats != "" {
		if err := d.Set("format_whitelist", s.o.Formats, 0); err != nil {
			return fmt.Errorf("%w: format whitelist: %w", ErrInput, err)
		}
	}
	if s.o.Protocols != "" {
		if err := d.Set("protocol_whitelist", s.o.Protocols, 0); err != nil {
			return fmt.Errorf("%w: protocol whitelist: %w", ErrInput, err)
		}
	}
	if err := s.openTap(); err != nil {
		if openCtx.Err() != nil && ctx.Err() == nil {
			return s.silent("open")
		}
		return err
	}
	if err := s.fc.OpenInput(s.o.URL, nil, d); err != nil {
		if openCtx.Err() != nil && ctx.Err() == nil {
			return s.silent("open")
		}
		return fmt.Errorf("%w: open %s: %w", ErrInput, redact(s.o.URL), err)
	}
	s.fcOpen = true
	if s.live && s.offset > 0 {
		// Reopened after an outage: the input answers again now, so the
		// outage lasted until now, not until the reconnect was tried (an 8 s
		// sender stop read as 6.8 s).
		s.offset = max(s.offset, time.Since(s.wallStart).Seconds())
	}
	if err := s.fc.FindStreamInfo(nil); err != nil {
		if openCtx.Err() != nil && ctx.Err() == nil {
			return s.silent("probe")
		}
		return fmt.Errorf("%w: probe %s: %w", ErrInput, redact(s.o.URL), err)
	}
	if f := s.fc.InputFormat(); f != nil {
		s.info.Format = f.Name()
	}
	s.tapOpened()
	if st := s.fc.StartTime(); st != astiav.NoPtsValue {
		s.origin = float64(st) / float64(astiav.TimeBase)
	} else {
		s.origin = math.NaN() // taken from the first timestamp seen
	}
	var err error
	if s.video, err = s.openTrack(detectors.VideoTrack, s.o.Video); err != nil {
		return err
	}
	if s.audio, err = s.openTrack(detectors.AudioTrack, s.o.Audio); err != nil {
		return err
	}
	if s.video == nil && s.audio == nil {
		return fmt.Errorf("%w: %s: no audio or video track to analyze", ErrInput, redact(s.o.URL))
	}
	if s.video == nil && s.o.Video != TrackNone {
		s.o.Logger.Warn("input has no video track", "url", redact(s.o.URL))
	}
	if s.audio == nil && s.o.Audio != TrackNone {
		s.o.Logger.Warn("input has no audio track", "url", redact(s.o.URL))
	}
	s.pkt = astiav.AllocPacket()
	if s.hot, err = newHot(s.fc, s.pkt); err != nil {
		return fmt.Errorf("%w: %w", ErrInput, err)
	}
	return nil
}

// openTrack finds and opens the decoder of the selected stream of a kind.
func (s *session) openTrack(track detectors.Track, sel int) (*decoder, error) {
	if sel == TrackNone {
		return nil, nil
	}
	want := astiav.MediaTypeVideo
	if track == detectors.AudioTrack {
		want = astiav.MediaTypeAudio
	}
	var st *astiav.Stream
	for _, c := range s.fc.Streams() {
		cp := c.CodecParameters()
		if cp.MediaType() != want {
			continue
		}
		if sel >= 0 && c.Index() != sel {
			continue
		}
		st = c
		break
	}
	if st == nil {
		if sel >= 0 {
			return nil, fmt.Errorf("%w: %s: stream %d is not a %s stream", ErrInput, redact(s.o.URL), sel, track)
		}
		return nil, nil
	}
	cp := st.CodecParameters()
	codec := astiav.FindDecoder(cp.CodecID())
	if codec == nil {
		return nil, fmt.Errorf("%w: %s: stream %d: no decoder for codec %q", ErrInput, redact(s.o.URL), st.Index(), cp.CodecID().Name())
	}
	d := &decoder{track: track, index: st.Index(), tb: st.TimeBase().Float64(), errs: &decoderErrors{}, info: newFrameInfo()}
	d.cc = astiav.AllocCodecContext(codec)
	if d.cc == nil {
		return nil, fmt.Errorf("%w: allocating a decoder", ErrInput)
	}
	if err := d.cc.FromCodecParameters(cp); err != nil {
		d.free()
		return nil, fmt.Errorf("%w: stream %d: codec parameters: %w", ErrInput, st.Index(), err)
	}
	d.cc.SetTimeBase(st.TimeBase())
	// One thread unless told more: the agent places threads per box, and
	// one thread decodes 1080p30 several times over real time.
	d.cc.SetThreadCount(max(s.o.Threads, 1))
	// Slice threads only: with frame threads, which thread reports a damaged
	// picture first varies, and so did the decode errors and concealment
	// (blockiness) of one capture from run to run. Detection must repeat.
	d.cc.SetThreadType(astiav.ThreadTypeSlice)
	hw := "software"
	if track == detectors.VideoTrack {
		hw = s.setupHW(d, codec)
		if fr := s.fc.GuessFrameRate(st, nil); fr.Num() > 0 && fr.Den() > 0 {
			d.frameD = 1 / fr.Float64()
		} else {
			d.frameD = 0.04
		}
	}
	var err error
	if d.ccC, err = codecCtx(d.cc); err != nil {
		d.free()
		return nil, fmt.Errorf("%w: %w", ErrInput, err)
	}
	d.handle = cgo.NewHandle(d.errs)
	if !setOpaque(d.cc, uintptr(d.handle)) {
		s.o.Logger.Warn("decoder errors logged by FFmpeg cannot be attributed", "stream", st.Index())
	}
	var opts *astiav.Dictionary
	if track == detectors.VideoTrack && hw == "software" && exportsQuant(cp.CodecID()) {
		// The quantizer of every macroblock, for the starved-encode cue
		// (detectors.DetailLossConfig); hardware decoders do not export it.
		opts = astiav.NewDictionary()
		_ = opts.Set("export_side_data", "venc_params", 0)
	}
	err = d.cc.Open(codec, opts)
	if opts != nil {
		opts.Free()
	}
	if err != nil {
		d.free()
		return nil, fmt.Errorf("%w: stream %d: open %s decoder: %w", ErrInput, st.Index(), codec.Name(), err)
	}
	d.name = codec.Name() + " (" + hw + ")"
	if track == detectors.VideoTrack && cp.CodecID() == astiav.CodecIDHevc {
		// Software or hardware alike: the quantizer comes from the bitstream.
		if d.slices, err = newSliceQuant(cp.ExtraData()); err != nil {
			s.o.Logger.Warn("HEVC parameter set unreadable: its pictures get no quantizer until an in-band one comes", "stream", st.Index(), "err", err)
		}
	}
	for i := range d.frames {
		d.frames[i] = astiav.AllocFrame()
		d.sw[i] = astiav.AllocFrame()
	}
	if track == detectors.VideoTrack {
		s.info.VideoDecoder = d.name
	} else {
		// Allocate the conversion buffers now rather than on the first frame.
		if ch := cp.ChannelLayout().NbChannels(); ch > 0 && ch <= 64 {
			d.planes, d.bufs = make([][]float32, ch), make([][]float32, ch)
			for c := range d.bufs {
				d.buf(c, max(cp.FrameSize(), 1024))
			}
		}
		s.info.AudioDecoder = d.name
	}
	s.o.Logger.Info("decoder", "track", track.String(), "stream", st.Index(), "decoder", d.name)
	if s.o.OnDecoder != nil {
		s.o.OnDecoder(track.String(), d.name)
	}
	return d, nil
}

// exportsQuant: the software decoders that export their quantizers
// (AV_FRAME_DATA_VIDEO_ENC_PARAMS) in FFmpeg 5.1.
func exportsQuant(id astiav.CodecID) bool {
	return id == astiav.CodecIDH264 || id == astiav.CodecIDMpeg2Video || id == astiav.CodecIDMpeg1Video
}

// setupHW attaches a hardware device to a video decoder when asked and
// possible, and says which decoding runs.
func (s *session) setupHW(d *decoder, codec *astiav.Codec) string {
	var types []astiav.HardwareDeviceType
	switch s.o.HWAccel {
	case "none":
		return "software"
	case "auto":
		types = []astiav.HardwareDeviceType{astiav.HardwareDeviceTypeCUDA, astiav.HardwareDeviceTypeVAAPI, astiav.HardwareDeviceTypeQSV}
	default:
		types = []astiav.HardwareDeviceType{astiav.FindHardwareDeviceTypeByName(s.o.HWAccel)}
	}
	var reasons []string
	for _, t := range types {
		var pf astiav.PixelFormat = astiav.PixelFormatNone
		for _, c := range codec.HardwareConfigs() {
			if c.HardwareDeviceType() == t && c.MethodFlags().Has(astiav.CodecHardwareConfigMethodFlagHwDeviceCtx) {
				pf = c.PixelFormat()
				break
			}
		}
		if pf == astiav.PixelFormatNone {
			reasons = append(reasons, fmt.Sprintf("%s: no %s config for %s", t, t, codec.Name()))
			continue
		}
		var opts *astiav.Dictionary
		if t == astiav.HardwareDeviceTypeCUDA && s.o.DeviceFrames {
			// The primary context: the GPU backend's kernels then read the
			// decoder's surfaces in place.
			opts = astiav.NewDictionary()
			_ = opts.Set("primary_ctx", "1", 0)
		}
		hdc, err := astiav.CreateHardwareDeviceContext(t, s.o.HWDevice, opts)
		if opts != nil {
			opts.Free()
		}
		if err != nil {
			reasons = append(reasons, fmt.Sprintf("%s: %v", t, err))
			continue
		}
		d.hdc, d.hwFmt = hdc, pf
		d.cc.SetHardwareDeviceContext(hdc)
		if s.o.DeviceFrames {
			// The pipeline holds two surfaces (the picture and the freeze
			// reference) outside the decoder's own pool.
			d.cc.SetExtraHardwareFrames(2)
		}
		d.cc.SetPixelFormatCallback(func(pfs []astiav.PixelFormat) astiav.PixelFormat {
			for _, p := range pfs {
				if p == pf {
					return p
				}
			}
			return pfs[0] // not offered for this stream: software
		})
		// go-astiav resolves get_format by context pointer, which frame-thread
		// copies do not share; hardware decoders gain nothing from them anyway.
		d.cc.SetThreadCount(1)
		return t.String()
	}
	if !*s.hwWarned {
		*s.hwWarned = true
		s.o.Logger.Warn("hardware decoding unavailable, decoding in software", "hwaccel", s.o.HWAccel, "why", strings.Join(reasons, "; "))
	} else {
		s.o.Logger.Debug("hardware decoding unavailable, decoding in software", "hwaccel", s.o.HWAccel, "why", strings.Join(reasons, "; "))
	}
	return "software"
}

func (s *session) interrupt() {
	s.intrMu.Lock()
	s.intr.Interrupt()
	s.intrMu.Unlock()
}

// watch interrupts blocking I/O when ctx is done or a live input stalls.
func (s *session) watch(ctx context.Context) (stop func()) {
	s.lastPacket.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				s.interrupt()
				return
			case <-tick.C:
				if s.live && time.Since(time.Unix(0, s.lastPacket.Load())) > s.o.StallTimeout {
					s.stalled.Store(true)
					s.interrupt()
					return
				}
			}
		}
	}()
	return func() { close(done) }
}

// seconds converts a timestamp of a stream to media time.
func (s *session) seconds(ts int64, tb float64) float64 {
	t := float64(ts) * tb
	if math.IsNaN(s.origin) {
		s.origin = t
	}
	return t - s.origin + s.offset
}

// packet handles one demuxed packet.
func (s *session) packet(ctx context.Context) {
	idx := s.pkt.StreamIndex()
	var d *decoder
	switch {
	case s.video != nil && idx == s.video.index:
		d = s.video
	case s.audio != nil && idx == s.audio.index:
		d = s.audio
	default:
		return
	}
	ts := s.pkt.Dts()
	if ts == astiav.NoPtsValue {
		ts = s.pkt.Pts()
	}
	t := d.nextT
	if ts != astiav.NoPtsValue {
		t = s.seconds(ts, d.tb)
	}
	if s.o.Realtime && !s.live {
		s.pace(ctx, t)
	}
	s.sink.Packet(d.track, t, s.pkt.Flags().Has(astiav.PacketFlagCorrupt))
	if d.slices != nil {
		data, size, pts := s.hot.packetData()
		d.slices.packet(data, size, pts, astiav.NoPtsValue)
	}
	if code := s.hot.sendPacket(d.ccC, false); code < 0 && code != codeEagain && d.clean {
		s.sink.DecodeError(t, decodeReason(code))
	}
	s.receive(d, t)
}

// drain flushes the decoders at the end of the input.
func (s *session) drain() {
	for _, d := range []*decoder{s.video, s.audio} {
		if d == nil {
			continue
		}
		s.hot.sendPacket(d.ccC, true)
		s.receive(d, d.nextT)
	}
}

// receive hands every frame the decoder has ready to the sink.
func (s *session) receive(d *decoder, pktT float64) {
	for {
		f := d.frames[d.cur]
		if code := receiveFrame(d.ccC, f); code < 0 {
			if code != codeEagain && code != codeEOF && d.clean {
				s.sink.DecodeError(pktT, decodeReason(code))
			}
			break
		}
		if d.track == detectors.VideoTrack {
			s.videoFrame(d, f)
		} else {
			s.audioFrame(d, f)
		}
		if s.done {
			break
		}
	}
	if n, msg := d.errs.take(); n > 0 {
		if d.clean {
			s.sink.DecodeError(pktT, msg)
		} else {
			s.o.Logger.Debug("decoder errors before the first clean frame (joined mid-stream)", "track", d.track.String(), "errors", n, "last", msg)
		}
	}
}

// beyond reports whether t is past Options.Duration; the session is done
// once every decoded track is.
func (s *session) beyond(d *decoder, t float64) bool {
	if s.o.Duration <= 0 || t < s.o.Duration+s.offset {
		return false
	}
	d.past = true
	s.done = (s.video == nil || s.video.past) && (s.audio == nil || s.audio.past)
	return true
}

func (s *session) frameTime(d *decoder, ts int64) float64 {
	if ts == astiav.NoPtsValue {
		return d.nextT
	}
	return s.seconds(ts, d.tb)
}

func (s *session) videoFrame(d *decoder, f *astiav.Frame) {
	readFrame(f, d.info)
	device := uintptr(0)
	if d.info.hw != 0 && s.o.DeviceFrames && d.info.dev_ok != 0 {
		device = uintptr(unsafe.Pointer(d.info.data0)) // read in place on the GPU
	} else if d.info.hw != 0 {
		// Hardware frame: download to host memory (the GPU build keeps it on the device instead).
		sw := d.sw[d.cur]
		sw.Unref()
		if err := f.TransferHardwareData(sw); err != nil {
			s.sink.DecodeError(d.nextT, "hwdownload: "+err.Error())
			return
		}
		ts, pts, key, corrupt, dur := d.info.best_effort, d.info.pts, d.info.key_frame, d.info.corrupt, d.info.pkt_duration
		readFrame(sw, d.info)
		d.info.best_effort, d.info.pts, d.info.key_frame, d.info.corrupt, d.info.pkt_duration = ts, pts, key, corrupt, dur
	}
	v := &d.views[d.cur]
	t := s.frameTime(d, int64(d.info.best_effort))
	if s.beyond(d, t) {
		return
	}
	dur := d.frameD
	if d.info.pkt_duration > 0 {
		dur = float64(d.info.pkt_duration) * d.tb
	}
	corrupt := d.info.corrupt != 0
	if !corrupt {
		d.clean = true
	}
	*v = detectors.VideoFrame{
		PTS: t, Duration: dur, Width: int(d.info.width), Height: int(d.info.height),
		Stride: int(d.info.linesize0), BitDepth: int(d.info.depth), FullRange: d.info.full_range != 0,
		KeyFrame: d.info.key_frame != 0, Corrupt: corrupt && d.clean,
		Quant: float64(d.info.quant), HasQuant: d.info.quant_ok != 0,
	}
	if d.slices != nil && !v.HasQuant && int64(d.info.pts) != astiav.NoPtsValue {
		v.Quant, v.HasQuant = d.slices.take(int64(d.info.pts))
		v.QuantSlice = v.HasQuant
	}
	if device != 0 {
		v.Device = device
		v.Chroma = chromaView(d.info, true)
	} else if d.info.plane_ok != 0 {
		v.Y = lumaPlane(d.info)
		v.Chroma = chromaView(d.info, false)
	} else if d.output == 0 {
		s.o.Logger.Warn("pixel format not supported by the video detectors", "format", astiav.PixelFormat(d.info.format).String())
	}
	var ref *detectors.VideoFrame
	if d.hasPrev {
		ref = &d.views[1-d.cur]
	}
	measurable := v.Y != nil || v.Device != 0
	keep := false
	if measurable {
		keep = s.sink.Video(v, ref)
	}
	d.output++
	s.info.Frames++
	d.nextT = t + dur
	s.info.End = max(s.info.End, d.nextT)
	if keep && d.hasPrev {
		return // the next frame decodes into this buffer; the reference stays
	}
	// This picture becomes the reference, held by its decoder reference (no
	// copy); the next frame decodes into the other buffer, releasing it.
	d.hasPrev = measurable
	d.cur = 1 - d.cur
}

func (s *session) audioFrame(d *decoder, f *astiav.Frame) {
	readFrame(f, d.info)
	n, ch, sr := int(d.info.nb_samples), int(d.info.channels), int(d.info.sample_rate)
	if n <= 0 || ch <= 0 || sr <= 0 {
		return
	}
	t := s.frameTime(d, int64(d.info.best_effort))
	if s.beyond(d, t) {
		return
	}
	if !s.convertAudio(d, f, n, ch) {
		return
	}
	d.clean = true
	d.block = detectors.AudioBlock{PTS: t, SampleRate: sr, Samples: d.planes}
	s.sink.Audio(&d.block)
	d.output++
	s.info.AudioBlocks++
	d.nextT = t + float64(n)/float64(sr)
	s.info.End = max(s.info.End, d.nextT)
}
