package media

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/transport"
)

// plain hides the recorder's TransportSink methods: the input is read as before the tap.
type plain struct{ Sink }

// dropPacket removes the n-th packet of a PID that does not start a payload unit.
func dropPacket(t *testing.T, b []byte, pid uint16, n int) []byte {
	t.Helper()
	for off, k := 0, 0; off+transport.PacketSize <= len(b); off += transport.PacketSize {
		p := b[off:]
		if p[0] != 0x47 || uint16(p[1]&0x1F)<<8|uint16(p[2]) != pid || p[1]&0x40 != 0 {
			continue
		}
		if k++; k == n {
			return append(append([]byte(nil), b[:off]...), b[off+transport.PacketSize:]...)
		}
	}
	t.Fatalf("no packet %d on PID %#x", n, pid)
	return nil
}

// direct feeds a file to the transport analyzer without FFmpeg.
func direct(t *testing.T, path string) transport.Counts {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	a := transport.New(transport.DefaultLimits(), nil, 0)
	a.Feed(b)
	a.Flush()
	return a.Counts()
}

// TestTap: an MPEG-TS file is read once, through the tap: the demuxer decodes
// what it decoded without it, and the analyzer counts exactly what it counts
// on the file's bytes fed directly.
func TestTap(t *testing.T) {
	clean := avClip(t, "av.ts")
	b, err := os.ReadFile(clean)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.ts")
	// FFmpeg's muxer puts the first video stream on PID 0x100.
	if err := os.WriteFile(damaged, dropPacket(t, b, 0x100, 40), 0o644); err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name, path string
		cc         int64 // continuity errors, where the test knows them
	}{
		{"clean", clean, 0},
		{"one packet dropped", damaged, 1},
	}
	real := filepath.Join("..", "..", "shared", "media", "corrupt", "tsduck089_arte_1080i_h264_eac3_CORRUPT.ts")
	if _, err := os.Stat(real); err == nil {
		files = append(files, struct {
			name, path string
			cc         int64
		}{"real corrupt capture", real, -1})
	} else {
		t.Log("real capture absent, not compared:", err)
	}
	for _, f := range files {
		t.Run(f.name, func(t *testing.T) {
			o := quiet()
			o.URL = f.path
			r := &recorder{}
			info, err := Run(context.Background(), o, r)
			if err != nil {
				t.Fatal(err)
			}
			var p recorder
			infoPlain, err := Run(context.Background(), o, plain{&p})
			if err != nil {
				t.Fatal(err)
			}
			if !info.Transport || infoPlain.Transport {
				t.Fatalf("transport analyzed: %v with a TransportSink, %v without", info.Transport, infoPlain.Transport)
			}
			if r.video != p.video || r.audio != p.audio || info.End != infoPlain.End {
				t.Errorf("through the tap %d frames, %d blocks, end %.3f; without %d, %d, %.3f", r.video, r.audio, info.End, p.video, p.audio, infoPlain.End)
			}
			if want := direct(t, f.path); r.tr != want {
				t.Errorf("through the tap %v, fed directly %v", r.tr, want)
			}
			if f.cc >= 0 && r.tr[transport.Continuity] != f.cc {
				t.Errorf("%d continuity errors, want %d", r.tr[transport.Continuity], f.cc)
			}
			if r.trTimes == 0 {
				t.Error("no transport clock reports")
			}
		})
	}
}

// A file named .ts that is not MPEG-TS, or MPEG-TS of 192-byte packets,
// goes through the tap and decodes; the analyzer stands down and says so.
func TestTapNotTS(t *testing.T) {
	for _, c := range []struct {
		name, file string
		args       []string
	}{
		{"matroska", "matroska.ts", []string{"-f", "matroska"}},
		{"192-byte packets", "m2ts.ts", []string{"-f", "mpegts", "-mpegts_m2ts_mode", "1"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			clip := avClip(t, c.file, c.args...)
			o := quiet()
			o.URL = clip
			r := &recorder{}
			info, err := Run(context.Background(), o, r)
			if err != nil {
				t.Fatal(err)
			}
			if info.Transport || r.video != 100 || r.tr != (transport.Counts{}) {
				t.Errorf("transport %v, %d frames, errors %v (want false, 100, none)", info.Transport, r.video, r.tr)
			}
		})
	}
}

// The per-packet path through the tap allocates nothing either.
func TestTapSteadyStateAllocations(t *testing.T) {
	clip := avClip(t, "alloc.ts")
	o := quiet()
	o.URL = clip
	if info := checkSteady(t, o, " through the tap"); !info.Transport {
		t.Fatal("the tap did not run")
	}
}

func TestTapsURL(t *testing.T) {
	tests := map[string]bool{
		"/srv/a.ts": true, "a.TS": true, "file:/srv/a.ts": true, "file:///srv/a.trp": true, "/srv/a.mp4": false,
		"udp://239.0.0.1:1234": true, "srt://h:9000?mode=caller": true, "tcp://h:1": true,
		"rtp://239.0.0.1:5004": false, "http://h/live.m3u8": false, "https://h/seg.ts?token=1": true,
		"http://h/a.mp4": false, "rtmp://h/app": false, "pipe:0": false,
	}
	for u, want := range tests {
		if got := tapsURL(u); got != want {
			t.Errorf("tapsURL(%q) = %v, want %v", u, got, want)
		}
	}
}

// The protocol whitelist holds through the tap: a file input is refused
// where only network protocols are allowed, as avformat_open_input refuses it.
func TestTapProtocolWhitelist(t *testing.T) {
	clip := avClip(t, "wl.ts")
	o := quiet()
	o.URL, o.Protocols = clip, "udp,rtp,srt"
	r := &recorder{}
	if _, err := Run(context.Background(), o, r); err == nil || r.video != 0 {
		t.Fatalf("file input with protocols udp,rtp,srt: err %v, %d frames; want refused", err, r.video)
	}
	o.Protocols = "file"
	if info, err := Run(context.Background(), o, r); err != nil || !info.Transport {
		t.Fatalf("file input with protocols file: err %v, transport %v", err, info.Transport)
	}
}

// TestTapLiveUDPSameAsFile: the same damaged bytes sent live over UDP, at
// their real-time pace, and read from a file as fast as it decodes give the
// same counts: the timers run on the stream's PCR clock, not the wall clock.
func TestTapLiveUDPSameAsFile(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 5 s")
	}
	b, err := os.ReadFile(avClip(t, "udp.ts"))
	if err != nil {
		t.Fatal(err)
	}
	// Drop a video packet, and every PAT in the middle third (PAT_error by the clock).
	b = dropPacket(t, b, 0x100, 60)
	var kept []byte
	for off := 0; off+transport.PacketSize <= len(b); off += transport.PacketSize {
		p := b[off : off+transport.PacketSize]
		if off > len(b)/3 && off < 2*len(b)/3 && p[1]&0x1F == 0 && p[2] == 0 {
			continue
		}
		kept = append(kept, p...)
	}
	want := direct(t, writeTemp(t, kept))
	if want[transport.Continuity] < 1 || want[transport.PATError] < 1 {
		t.Fatalf("the injection did not take: %v", want)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	o := quiet()
	live := true
	o.URL, o.Live, o.StallTimeout, o.OpenTimeout = "udp://"+addr, &live, time.Second, 5*time.Second
	r := &recorder{}
	done := make(chan error, 1)
	runCtx, stop := context.WithCancel(ctx)
	go func() {
		_, err := Run(runCtx, o, r)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond) // the input is open and listening
	conn, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	const dgram = 7 * transport.PacketSize
	n := (len(kept) + dgram - 1) / dgram
	pace := 4 * time.Second / time.Duration(n) // the clip is 4 s long
	start := time.Now()
	for i := 0; i < n; i++ {
		if _, err := conn.Write(kept[i*dgram : min((i+1)*dgram, len(kept))]); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Until(start.Add(time.Duration(i+1) * pace)))
	}
	time.Sleep(500 * time.Millisecond)
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if r.tr != want {
		t.Errorf("live over UDP %v; from the file %v", r.tr, want)
	}
}

func writeTemp(t *testing.T, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "x.ts")
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestTapSRT: MPEG-TS over SRT goes through the tap too (we call, FFmpeg's
// CLI listens and sends the clip at its pace).
func TestTapSRT(t *testing.T) {
	if testing.Short() {
		t.Skip("takes about 5 s")
	}
	clip := avClip(t, "srt.ts")
	if out, err := exec.Command("ffmpeg", "-hide_banner", "-protocols").Output(); err != nil || !strings.Contains(string(out), "srt") {
		t.Skip("this FFmpeg has no srt protocol")
	}
	l, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.LocalAddr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sender := exec.CommandContext(ctx, "ffmpeg", "-hide_banner", "-loglevel", "error", "-re", "-i", clip, "-c", "copy",
		"-f", "mpegts", "srt://"+addr+"?mode=listener")
	if err := sender.Start(); err != nil {
		t.Fatal(err)
	}
	sent := make(chan error, 1)
	go func() { sent <- sender.Wait() }()
	time.Sleep(500 * time.Millisecond) // the listener is up
	o := quiet()
	o.URL, o.StallTimeout, o.OpenTimeout, o.MaxBackoff = "srt://"+addr+"?mode=caller", time.Second, 5*time.Second, time.Second
	r := &recorder{}
	info := runWhileSending(t, ctx, o, r, sent)
	if !info.Transport || r.trTimes == 0 || r.video < 80 {
		t.Errorf("over SRT: transport %v, %d clock reports, %d frames", info.Transport, r.trTimes, r.video)
	}
	if r.tr[transport.Continuity] != 0 || r.tr[transport.SyncLoss] != 0 || r.tr[transport.CRCError] != 0 {
		t.Errorf("a clean clip over SRT: %v", r.tr)
	}
}
