package media

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/transport"
)

// recorder is a Sink that keeps what it is given.
type recorder struct {
	video, audio     int
	hasVideo         bool
	hasAudio         bool
	tracksCalled     bool
	errors           []string
	stalls, resumes  int
	stallT, resumeT  float64
	lastVideo        float64
	packets          int
	from, framesSeen int                   // window: frames from+1 .. from+steadyFrames
	allocsAt         map[[32]uintptr]int64 // the heap profile's allocations when frame 'from' was seen
	allocs           []string              // allocation sites of our code in the window
	width, height    int
	tr               transport.Counts // TR 101 290 errors (the recorder is a TransportSink)
	trTimes          int
	quant            []float64 // each picture's quantizer (NaN: unknown)
}

func (r *recorder) TransportLimits() (transport.Limits, bool) { return transport.DefaultLimits(), true }
func (r *recorder) TransportError(ind transport.Indicator, pid uint16, t float64, n int64) {
	r.tr[ind] += n
}
func (r *recorder) TransportTime(float64) { r.trTimes++ }

func (r *recorder) Tracks(t float64, v, a bool) { r.tracksCalled, r.hasVideo, r.hasAudio = true, v, a }
func (r *recorder) Video(cur, ref *detectors.VideoFrame) bool {
	r.video++
	r.lastVideo = cur.PTS
	r.width, r.height = cur.Width, cur.Height
	if r.from == 0 {
		q := math.NaN()
		if cur.HasQuant {
			q = cur.Quant
		}
		r.quant = append(r.quant, q)
	}
	if r.from > 0 && r.video == r.from {
		r.allocsAt = heapAllocs()
	}
	if r.from > 0 && r.video > r.from && r.video <= r.from+steadyFrames {
		r.framesSeen++
		if r.video == r.from+steadyFrames {
			r.allocs = ourAllocs(r.allocsAt, heapAllocs())
		}
	}
	return false
}
func (r *recorder) Audio(b *detectors.AudioBlock)         { r.audio++ }
func (r *recorder) Packet(detectors.Track, float64, bool) { r.packets++ }
func (r *recorder) DecodeError(t float64, reason string)  { r.errors = append(r.errors, reason) }
func (r *recorder) Stall(t float64) {
	r.stalls++
	if r.stalls == 1 {
		r.stallT = t
	}
}
func (r *recorder) Resume(t float64) {
	r.resumes++
	if r.resumes == 1 {
		r.resumeT = t
	}
}

// ffmpegClip makes a small clip with the ffmpeg CLI, or skips the test.
func ffmpegClip(t testing.TB, name string, args ...string) string {
	t.Helper()
	if _, err := exec.LookPath("ffmpeg"); err != nil {
		t.Skip("ffmpeg CLI not on PATH (make deps installs it)")
	}
	out := filepath.Join(t.TempDir(), name)
	full := append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)
	full = append(full, out)
	if o, err := exec.Command("ffmpeg", full...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %v: %v\n%s", args, err, o)
	}
	return out
}

func avClip(t testing.TB, name string, extra ...string) string {
	args := []string{"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-f", "lavfi", "-i", "sine=f=440:r=48000",
		"-t", "4", "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-pix_fmt", "yuv420p", "-c:a", "aac"}
	return ffmpegClip(t, name, append(args, extra...)...)
}

func quiet() Options {
	return Options{HWAccel: "none", Video: TrackFirst, Audio: TrackFirst, OpenTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)}
}

func TestRunDecodesAudioAndVideo(t *testing.T) {
	clip := avClip(t, "av.mp4")
	o := quiet()
	o.URL = clip
	var r recorder
	info, err := Run(context.Background(), o, &r)
	if err != nil {
		t.Fatal(err)
	}
	if r.video != 100 || info.Frames != 100 {
		t.Errorf("video frames: sink %d, info %d, want 100", r.video, info.Frames)
	}
	if r.audio == 0 || !r.hasVideo || !r.hasAudio {
		t.Errorf("audio blocks %d, tracks video=%v audio=%v", r.audio, r.hasVideo, r.hasAudio)
	}
	if r.lastVideo < 3.95 || r.lastVideo > 3.97 {
		t.Errorf("last video frame at %.3f s, want 3.96", r.lastVideo)
	}
	if !strings.HasPrefix(info.VideoDecoder, "h264") || !strings.Contains(info.VideoDecoder, "software") {
		t.Errorf("decoder %q", info.VideoDecoder)
	}
	if len(r.errors) != 0 {
		t.Errorf("decode errors on a clean clip: %v", r.errors)
	}
}

// TestQuantizers: software H.264 and MPEG-2 decoders export each
// picture's quantizers, on H.264's QP scale; HEVC's does not.
func TestQuantizers(t *testing.T) {
	src := []string{"-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-t", "2", "-pix_fmt", "yuv420p"}
	// HEVC: a CRF encode with a zone at QP 45 and B-frames; what each
	// picture must get back, through the decoder's reordering, is what
	// FFmpeg's trace_headers reads in its slice headers (hevcTrace).
	x265 := func(extra string) []string {
		return []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params",
			"log-level=error:bframes=3:b-adapt=0:keyint=50:crf=28:zones=20,29,q=45" + extra}
	}
	flat := func(k, others float64) func(int) float64 {
		return func(i int) float64 {
			if i == 0 {
				return k
			}
			return others
		}
	}
	tests := []struct {
		name string
		args []string
		want func(picture int) float64 // NaN: none; nil: HEVC's, from trace_headers
	}{
		// Constant QP 24: x264 codes its key frame 3 finer (ip_ratio 1.4).
		{"h264.mp4", []string{"-c:v", "libx264", "-preset", "ultrafast", "-qp", "24"}, flat(21, 24)},
		// 10-bit H.264: x264's QP 24 is QP' (QP plus its 12 offset): as
		// coarse, relative to the range, as QP 12 in 8 bits.
		{"h264_10.mkv", []string{"-c:v", "libx264", "-preset", "ultrafast", "-qp", "24", "-pix_fmt", "yuv420p10le"}, flat(9, 12)},
		// MPEG-2 at quantiser_scale 8 (qscale 4): 7 + 6 log2 8 = 25; its
		// last picture, flushed from the decoder, comes without.
		{"mpeg2.ts", []string{"-c:v", "mpeg2video", "-qscale:v", "4"}, func(i int) float64 {
			if i == 49 {
				return math.NaN()
			}
			return 25
		}},
		// HEVC from its slice headers: hvcC and length-prefixed packets
		// (MP4), Annex B (MPEG-TS), 10-bit (SliceQpY is already on the
		// 8-bit scale: QP' less QpBdOffset).
		{"hevc.mp4", x265(""), nil},
		{"hevc.ts", x265(""), nil},
		{"hevc10.mkv", append(x265(""), "-pix_fmt", "yuv420p10le"), nil},
		{"hevc_slices.mkv", x265(":slices=3"), nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clip := ffmpegClip(t, tc.name, append(slices.Clone(src), tc.args...)...)
			o := quiet()
			o.URL = clip
			var r recorder
			if _, err := Run(context.Background(), o, &r); err != nil {
				t.Fatal(err)
			}
			if len(r.quant) != 50 {
				t.Fatalf("%d pictures, want 50", len(r.quant))
			}
			want := tc.want
			if want == nil {
				want = hevcTrace(t, clip)
			}
			for i, q := range r.quant {
				want := want(i)
				if math.IsNaN(want) != math.IsNaN(q) || math.Abs(q-want) > 0.01 {
					t.Fatalf("picture %d: quantizer %.2f, want %.2f (all: %.1f)", i, q, want, r.quant)
				}
			}
		})
	}
}

// hevcTrace reads the SliceQpY of every picture of an HEVC clip whose only
// IDR picture is its first (so the POC is the display index) with FFmpeg's
// trace_headers, independently of media/hevc.
func hevcTrace(t *testing.T, clip string) func(int) float64 {
	t.Helper()
	out, err := exec.Command("ffmpeg", "-hide_banner", "-v", "debug", "-i", clip, "-map", "0:v", "-c", "copy",
		"-bsf:v", "trace_headers", "-f", "null", "-").CombinedOutput()
	if err != nil {
		t.Fatalf("trace_headers: %v\n%s", err, out)
	}
	value := func(line string) int {
		f := strings.Fields(line)
		n, err := strconv.Atoi(f[len(f)-1])
		if err != nil {
			t.Fatalf("trace_headers line %q: %v", line, err)
		}
		return n
	}
	qp := map[int][]int{}
	init, poc := 0, 0
	for line := range strings.Lines(string(out)) {
		switch {
		case strings.Contains(line, " init_qp_minus26 "):
			init = value(line)
		case strings.Contains(line, " first_slice_segment_in_pic_flag ") && value(line) == 1:
			poc = 0 // an IDR picture carries no POC
		case strings.Contains(line, " slice_pic_order_cnt_lsb "):
			poc = value(line)
		case strings.Contains(line, " slice_qp_delta "):
			qp[poc] = append(qp[poc], 26+init+value(line))
		}
	}
	if len(qp) != 50 {
		t.Fatalf("trace_headers: %d pictures, want 50", len(qp))
	}
	return func(i int) float64 {
		s := 0
		for _, v := range qp[i] {
			s += v
		}
		return math.Round(float64(s) / float64(len(qp[i])))
	}
}

func TestRunSelectsTracks(t *testing.T) {
	clip := avClip(t, "av.mkv")
	tests := []struct {
		name         string
		video, audio int
		wantV, wantA bool
		wantErr      string
	}{
		{"video only", TrackFirst, TrackNone, true, false, ""},
		{"audio only", TrackNone, TrackFirst, false, true, ""},
		{"by index", 0, 1, true, true, ""},
		{"wrong kind", 1, TrackFirst, false, false, "is not a video stream"},
		{"nothing", TrackNone, TrackNone, false, false, "no audio or video track"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := quiet()
			o.URL, o.Video, o.Audio = clip, tc.video, tc.audio
			var r recorder
			_, err := Run(context.Background(), o, &r)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrInput) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if (r.video > 0) != tc.wantV || (r.audio > 0) != tc.wantA {
				t.Errorf("video %d audio %d", r.video, r.audio)
			}
		})
	}
}

// wavWithFormatTag writes a WAV file whose codec no decoder knows.
func wavWithFormatTag(t *testing.T, tag uint16) string {
	t.Helper()
	data := make([]byte, 4800)
	var b []byte
	le := binary.LittleEndian
	b = append(b, "RIFF"...)
	b = le.AppendUint32(b, uint32(36+len(data)))
	b = append(b, "WAVEfmt "...)
	b = le.AppendUint32(b, 16)
	b = le.AppendUint16(b, tag)
	b = le.AppendUint16(b, 2)
	b = le.AppendUint32(b, 48000)
	b = le.AppendUint32(b, 48000*4)
	b = le.AppendUint16(b, 4)
	b = le.AppendUint16(b, 16)
	b = append(b, "data"...)
	b = le.AppendUint32(b, uint32(len(data)))
	b = append(b, data...)
	p := filepath.Join(t.TempDir(), "odd.wav")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRunBadInput(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.ts")
	r := rand.New(rand.NewPCG(1, 2))
	junk := make([]byte, 256*1024)
	for i := range junk {
		junk[i] = byte(r.IntN(256))
	}
	if err := os.WriteFile(garbage, junk, 0o644); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.mp4")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	mp4 := avClip(t, "whole.mp4")
	b, err := os.ReadFile(mp4)
	if err != nil {
		t.Fatal(err)
	}
	truncMP4 := filepath.Join(dir, "truncated.mp4") // moov atom at the end: cut off
	if err := os.WriteFile(truncMP4, b[:len(b)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, url, wantErr string
		hwaccel            string
	}{
		{"missing file", filepath.Join(dir, "nope.mp4"), "No such file", "none"},
		{"garbage bytes", garbage, "open", "none"},
		{"empty file", empty, "", "none"},
		{"truncated mp4", truncMP4, "", "none"},
		{"unsupported codec", wavWithFormatTag(t, 0x7777), "no decoder", "none"},
		{"unknown hwaccel", mp4, "want auto, none, cuda, vaapi or qsv", "magic"},
		{"unknown protocol", "gopher://127.0.0.1/x", "open", "none"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o := quiet()
			o.URL, o.HWAccel = tc.url, tc.hwaccel
			var rec recorder
			_, err := Run(context.Background(), o, &rec)
			if err == nil {
				t.Fatalf("no error for %s", tc.name)
			}
			if tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("err = %v, want it to mention %q", err, tc.wantErr)
			}
		})
	}
}

func TestRunTruncatedTransportStream(t *testing.T) {
	ts := avClip(t, "whole.ts")
	b, err := os.ReadFile(ts)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.ts")
	if err := os.WriteFile(cut, b[:len(b)/2+77], 0o644); err != nil { // not on a packet boundary
		t.Fatal(err)
	}
	o := quiet()
	o.URL = cut
	var r recorder
	if _, err := Run(context.Background(), o, &r); err != nil {
		t.Fatalf("a truncated stream is analyzed up to where it stops: %v", err)
	}
	if r.video < 30 {
		t.Errorf("only %d frames decoded from half a 4 s clip", r.video)
	}
}

func TestRunURLThatNeverAnswers(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() { // accept and say nothing
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpAddr := udp.LocalAddr().String()
	udp.Close() // nobody sends there
	for _, u := range []string{
		"http://" + ln.Addr().String() + "/live.ts",
		"tcp://" + ln.Addr().String(),
		"udp://" + udpAddr,
	} {
		t.Run(strings.SplitN(u, ":", 2)[0], func(t *testing.T) {
			o := quiet()
			o.URL, o.OpenTimeout, o.StallTimeout = u, time.Second, time.Second
			start := time.Now()
			var r recorder
			_, err := Run(context.Background(), o, &r)
			if err == nil || !errors.Is(err, ErrInput) {
				t.Fatalf("err = %v, want an input error", err)
			}
			if el := time.Since(start); el > 8*time.Second {
				t.Errorf("gave up after %s, want about the 1 s open timeout", el)
			}
		})
	}
}

func TestRunCancel(t *testing.T) {
	clip := avClip(t, "av.ts")
	o := quiet()
	o.URL, o.Realtime = clip, true
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	var r recorder
	if _, err := Run(ctx, o, &r); err != nil {
		t.Fatal(err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("realtime run of a 4 s clip stopped %s after start, want about 0.5 s", el)
	}
	if r.video == 0 || r.video > 25 {
		t.Errorf("%d frames in 0.5 s of realtime pacing at 25 fps", r.video)
	}
}

func TestRunDuration(t *testing.T) {
	clip := avClip(t, "av.mp4")
	o := quiet()
	o.URL, o.Duration = clip, 1.0
	var r recorder
	info, err := Run(context.Background(), o, &r)
	if err != nil {
		t.Fatal(err)
	}
	if r.video < 25 || r.video > 27 || info.End > 1.1 {
		t.Errorf("--duration 1: %d frames, end %.3f", r.video, info.End)
	}
}

// TestSteadyStateAllocations decodes a clip with every heap allocation
// profiled, from frame 50 on for 40 frames: the per-frame path must allocate
// nothing, HEVC's slice header reading (in MP4 and in MPEG-TS) included.
// Only stacks through streamqc or go-astiav count: the runtime may start a
// thread or grow a timer heap at any time (7 objects, a flaky failure when
// this test read MemStats).
func TestSteadyStateAllocations(t *testing.T) {
	hevc := []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error:bframes=3:keyint=25"}
	for _, tc := range []struct {
		name  string
		extra []string
	}{
		{"alloc.mp4", nil},
		{"alloc_hevc.mp4", hevc},
		{"alloc_hevc.ts", hevc},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := quiet()
			o.URL = avClip(t, tc.name, tc.extra...)
			checkSteady(t, o, "")
		})
	}
}

// steadyFrames is how many frames after 'from' the steady-state window of
// the allocation tests covers.
const steadyFrames = 40

// heapAllocs snapshots the heap profile (every allocation, with
// runtime.MemProfileRate 1) as of a collection run now: allocations per stack.
func heapAllocs() map[[32]uintptr]int64 {
	runtime.GC()
	recs := make([]runtime.MemProfileRecord, 4096)
	for {
		n, ok := runtime.MemProfile(recs, true)
		if ok {
			recs = recs[:n]
			break
		}
		recs = make([]runtime.MemProfileRecord, n+1024)
	}
	m := make(map[[32]uintptr]int64, len(recs))
	for _, r := range recs {
		m[r.Stack0] += r.AllocObjects
	}
	return m
}

// ourAllocs lists the allocations made between two snapshots by a stack
// that runs through streamqc or go-astiav, leaving out the Go runtime's own
// (threads it starts, timers, the scavenger) and the snapshots'.
func ourAllocs(before, after map[[32]uintptr]int64) []string {
	var out []string
	for stack, n := range after {
		if n <= before[stack] {
			continue
		}
		frames := runtime.CallersFrames(stack[:])
		var sites []string
		ours, snapshot := false, false
		for {
			f, more := frames.Next()
			switch {
			case strings.Contains(f.Function, "media.heapAllocs"), strings.Contains(f.Function, "media.ourAllocs"):
				snapshot = true
			case strings.HasPrefix(f.Function, "github.com/streamqc/streamqc/"), strings.HasPrefix(f.Function, "github.com/asticode/go-astiav"):
				ours = true
			}
			sites = append(sites, fmt.Sprintf("%s:%d", f.Function, f.Line))
			if !more {
				break
			}
		}
		if ours && !snapshot {
			out = append(out, fmt.Sprintf("%d at %s", n-before[stack], strings.Join(sites, " < ")))
		}
	}
	return out
}

// checkSteady runs a clip with every allocation profiled and fails if our
// code allocated in the window.
func checkSteady(t *testing.T, o Options, what string) Info {
	t.Helper()
	defer func(rate int) { runtime.MemProfileRate = rate }(runtime.MemProfileRate)
	runtime.MemProfileRate = 1
	r := &recorder{from: 50}
	info, err := Run(context.Background(), o, r)
	if err != nil {
		t.Fatal(err)
	}
	if r.framesSeen != steadyFrames || r.allocsAt == nil {
		t.Fatalf("%d frames in the window, want %d", r.framesSeen, steadyFrames)
	}
	t.Logf("%d allocation sites of streamqc or go-astiav over %d frames%s (demux, decoding, sink calls)", len(r.allocs), r.framesSeen, what)
	for _, a := range r.allocs {
		t.Errorf("allocation in steady state%s: %s", what, a)
	}
	return info
}

func TestIsLive(t *testing.T) {
	tests := map[string]bool{
		"/srv/a.ts": false, "file:/srv/a.ts": false, "file:///srv/a.ts": false, "udp://239.0.0.1:1234": true,
		"srt://host:9000": true, "rtmp://h/app/key": true, "rtsp://cam/1": true, "https://cdn/x/index.m3u8": true,
		"https://cdn/x/clip.mp4": false, "C:/media/x.ts": false,
	}
	for u, want := range tests {
		if got := IsLive(u); got != want {
			t.Errorf("IsLive(%q) = %v, want %v", u, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redact("rtmp://user:secret@host/app"); strings.Contains(got, "secret") {
		t.Errorf("redact kept the password: %s", got)
	}
}

// TestLiveUDPStallAndReconnect sends a transport stream over UDP on
// loopback, stops the sender for 3 s and starts it again: the pipeline must
// report the stall, reopen the input and report the resumption.
func TestLiveUDPStallAndReconnect(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 10 s")
	}
	clip := avClip(t, "live.ts")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	send := func(ctx context.Context, secs string) error {
		return exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip,
			"-t", secs, "-c", "copy", "-f", "mpegts", "udp://"+addr+"?pkt_size=1316").Run()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	sent := make(chan error, 1)
	go func() {
		if err := send(ctx, "3"); err != nil {
			sent <- err
			return
		}
		time.Sleep(3 * time.Second) // the outage
		sent <- send(ctx, "3")
	}()
	o := quiet()
	live := true
	o.URL, o.Live, o.StallTimeout, o.OpenTimeout, o.MaxBackoff = "udp://"+addr, &live, time.Second, 2*time.Second, time.Second
	r := &recorder{}
	info := runWhileSending(t, ctx, o, r, sent)
	if r.stalls < 1 || r.resumes < 1 || info.Reconnects < 1 {
		t.Errorf("stalls %d, resumes %d, reconnects %d: want the outage reported and recovered", r.stalls, r.resumes, info.Reconnects)
	}
	if r.video < 100 {
		t.Errorf("%d frames over two 3 s bursts at 25 fps", r.video)
	}
	if info.End < 8 {
		t.Errorf("media time reached %.1f s; after an outage it follows the wall clock (about 9 s)", info.End)
	}
	// The outage lasted 3 s and the sender's start: reported with its length.
	if gap := r.resumeT - r.stallT; gap < 2.8 || gap > 4.5 {
		t.Errorf("outage from %.2f to %.2f s: %.2f s, want the 3 s (and a sender start) it lasted", r.stallT, r.resumeT, gap)
	}
	t.Logf("outage from %.2f to %.2f s; %d stalls, %d resumes", r.stallT, r.resumeT, r.stalls, r.resumes)
	if !info.Transport || r.trTimes == 0 {
		t.Errorf("MPEG-TS over UDP: transport analyzed %v, %d clock reports: want the tap to see the stream", info.Transport, r.trTimes)
	}
}

// TestHWAccelFallsBack: asking for a hardware decoder that this machine
// lacks decodes in software, says so in Info, and loses no frame.
func TestHWAccelFallsBack(t *testing.T) {
	clip := avClip(t, "hw.mp4")
	for _, hw := range []string{"auto", "cuda", "vaapi", "qsv"} {
		t.Run(hw, func(t *testing.T) {
			o := quiet()
			o.URL, o.HWAccel = clip, hw
			var r recorder
			info, err := Run(context.Background(), o, &r)
			if err != nil {
				t.Fatal(err)
			}
			if r.video != 100 {
				t.Errorf("%d frames, want 100", r.video)
			}
			if !strings.HasPrefix(info.VideoDecoder, "h264 (") {
				t.Errorf("decoder %q", info.VideoDecoder)
			}
			t.Logf("--hwaccel %s: %s", hw, info.VideoDecoder)
		})
	}
}

// TestLiveRTMP reads RTMP from a server (the ffmpeg CLI listening): FFmpeg's
// rtmp takes the generic "timeout" option as "be the server", which the live
// options must not set.
func TestLiveRTMP(t *testing.T) {
	clip := avClip(t, "av.flv")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip,
		"-c", "copy", "-f", "flv", "-listen", "1", "rtmp://"+addr+"/live/s")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Wait()
	o := quiet()
	o.URL, o.Duration, o.OpenTimeout, o.StallTimeout = "rtmp://"+addr+"/live/s", 1, 10*time.Second, 5*time.Second
	var r recorder
	var info Info
	for try := 0; try < 20; try++ { // the server binds
		r = recorder{}
		if info, err = Run(ctx, o, &r); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("rtmp: %v", err)
	}
	if r.video < 20 || r.audio == 0 || info.Format != "flv" {
		t.Errorf("rtmp: %d frames, %d audio blocks, format %q", r.video, r.audio, info.Format)
	}
}

// TestOpenTimeoutIsHonoured: a live input that never sends gives up after
// OpenTimeout, not before (udp stopped at 5.75 s whatever it said), and says
// why in the words of the input: no data for a receiver, no answer else.
func TestOpenTimeoutIsHonoured(t *testing.T) {
	udp, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udpURL := "udp://" + udp.LocalAddr().String()
	udp.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	tests := []struct {
		url     string
		timeout time.Duration
		reason  string
	}{
		{udpURL, 7 * time.Second, "no data for 7s"},
		{udpURL, 2 * time.Second, "no data for 2s"},
		{"http://" + ln.Addr().String() + "/live.ts", 3 * time.Second, "no answer within 3s"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s", strings.SplitN(tc.url, ":", 2)[0], tc.timeout), func(t *testing.T) {
			o := quiet()
			o.URL, o.OpenTimeout = tc.url, tc.timeout // StallTimeout stays at its 5 s default
			start := time.Now()
			_, err := Run(context.Background(), o, &recorder{})
			el := time.Since(start)
			if err == nil || !strings.Contains(err.Error(), tc.reason) {
				t.Fatalf("err = %v, want %q", err, tc.reason)
			}
			if el < tc.timeout || el > tc.timeout+2*time.Second {
				t.Errorf("gave up after %s, want %s", el.Round(10*time.Millisecond), tc.timeout)
			}
		})
	}
}

// countWarn counts the warnings logged with a message.
type countWarn struct {
	msg string
	n   *atomic.Int32
}

func (c countWarn) Enabled(_ context.Context, l slog.Level) bool { return true }
func (c countWarn) Handle(_ context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && r.Message == c.msg {
		c.n.Add(1)
	}
	return nil
}
func (c countWarn) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c countWarn) WithGroup(string) slog.Handler      { return c }

// TestHWAccelWarnsOncePerInput: a live input reopened again and again on a
// box without the hardware says so once, not at every reopen.
func TestHWAccelWarnsOncePerInput(t *testing.T) {
	clip := avClip(t, "short.ts", "-f", "mpegts")
	var n atomic.Int32
	o := quiet()
	live := true
	o.URL, o.HWAccel, o.Live, o.MaxBackoff = clip, "vaapi", &live, 100*time.Millisecond
	o.Logger = slog.New(countWarn{msg: "hardware decoding unavailable, decoding in software", n: &n})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	info, _ := Run(ctx, o, &recorder{})
	if info.Reconnects < 2 {
		t.Skipf("SKIP: the input was opened %d times only", info.Reconnects+1)
	}
	if got := n.Load(); got != 1 {
		t.Errorf("warned %d times over %d opens, want once", got, info.Reconnects+1)
	}
}

// TestLiveInputEndsInAnOutage: a sender gone for good leaves the input in an
// outage; when the analysis stops, its media time is the wall clock's, so the
// alarms still open (signal_loss) last until then, not zero seconds.
func TestLiveInputEndsInAnOutage(t *testing.T) {
	clip := avClip(t, "gone.ts")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	go exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip, "-t", "2",
		"-c", "copy", "-f", "mpegts", "udp://"+addr+"?pkt_size=1316").Run()
	o := quiet()
	live := true
	o.URL, o.Live, o.StallTimeout, o.OpenTimeout, o.MaxBackoff = "udp://"+addr, &live, time.Second, 2*time.Second, time.Second
	r := &recorder{}
	info, err := Run(ctx, o, r)
	if err != nil {
		t.Fatal(err)
	}
	if r.stalls < 1 || r.video < 25 {
		t.Fatalf("stalls %d, frames %d: want a burst, then the outage", r.stalls, r.video)
	}
	if info.End < 4.5 || info.End-r.stallT < 2 {
		t.Errorf("media time ends at %.2f s, the outage began at %.2f s: want it to run to the stop (about 5 s)", info.End, r.stallT)
	}
}

// runWhileSending runs the input until the sender is done (its error on
// sent), and half a second more for what is in flight; then stops it.
func runWhileSending(t *testing.T, ctx context.Context, o Options, r *recorder, sent <-chan error) Info {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	var info Info
	var runErr error
	go func() {
		info, runErr = Run(runCtx, o, r)
		close(done)
	}()
	if err := <-sent; err != nil {
		stop()
		<-done
		t.Fatalf("sender: %v", err)
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	<-done
	if runErr != nil {
		t.Fatal(runErr)
	}
	return info
}
