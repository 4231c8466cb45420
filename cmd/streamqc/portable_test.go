package main

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/streamqc/streamqc/testdata/clips"
)

// portableBin is the portable binary under test (make portable; make test
// builds it and sets STREAMQC_PORTABLE_BIN), or a skip saying how to get it.
func portableBin(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("STREAMQC_PORTABLE_BIN")
	if bin == "" {
		if os.Getenv("STREAMQC_REQUIRE_PORTABLE") != "" {
			t.Fatal("STREAMQC_REQUIRE_PORTABLE is set but STREAMQC_PORTABLE_BIN is not")
		}
		t.Skip("SKIP portable: STREAMQC_PORTABLE_BIN not set (make portable builds build/portable/streamqc; make test sets it)")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(abs); err != nil {
		t.Fatalf("portable binary: %v", err)
	}
	return abs
}

// TestPortableComponents: every decoder, demuxer and protocol the README
// promises is in the portable build (a missing one fails here, not at a
// customer's).
func TestPortableComponents(t *testing.T) {
	bin := portableBin(t)
	out, err := exec.Command(bin, "version", "-v").CombinedOutput()
	if err != nil {
		t.Fatalf("%s version -v: %v\n%s", bin, err, out)
	}
	for _, want := range []string{"ffmpeg: 5.1.9", "components: all"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version -v lacks %q:\n%s", want, out)
		}
	}
}

// glibcMax is the newest glibc the portable binary may need: Amazon Linux
// 2023's.
const glibcMax = "2.34"

// TestPortableSelfContained: the binary asks the host for glibc and nothing
// else (ELF NEEDED and symbol versions, and ldd), and analyzes a clip in a
// root that holds only the binary, glibc and the clip.
func TestPortableSelfContained(t *testing.T) {
	bin := portableBin(t)
	f, err := elf.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	glibc := []string{"libc.so.6", "libm.so.6", "libdl.so.2", "libpthread.so.0", "ld-linux-x86-64.so.2"}
	for _, l := range libs {
		if !slices.Contains(glibc, l) {
			t.Errorf("NEEDED %s: not part of glibc", l)
		}
	}
	syms, err := f.DynamicSymbols()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range syms {
		if strings.HasPrefix(s.Version, "GLIBC_") && versionAfter(strings.TrimPrefix(s.Version, "GLIBC_"), glibcMax) {
			t.Errorf("%s@%s: newer than glibc %s (Amazon Linux 2023)", s.Name, s.Version, glibcMax)
		}
	}
	if ldd, err := exec.LookPath("ldd"); err == nil {
		out, err := exec.Command(ldd, bin).CombinedOutput()
		if err != nil {
			t.Fatalf("ldd: %v\n%s", err, out)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			name := strings.Fields(line)[0]
			if name != "linux-vdso.so.1" && !slices.Contains(glibc, filepath.Base(name)) {
				t.Errorf("ldd: %s", strings.TrimSpace(line))
			}
		}
	}

	t.Run("bare root", func(t *testing.T) {
		if os.Geteuid() != 0 {
			t.Skip("SKIP bare root: chroot needs root")
		}
		clip := portableClip(t)
		root := t.TempDir()
		interp := "/lib64/ld-linux-x86-64.so.2"
		copyInto(t, root, bin, "/streamqc")
		copyInto(t, root, clip, "/clip.mp4")
		for _, l := range []string{interp, "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6"} {
			real, err := filepath.EvalSymlinks(l)
			if err != nil {
				t.Fatal(err)
			}
			copyInto(t, root, real, l)
		}
		var found []string
		filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				found = append(found, strings.TrimPrefix(p, root))
			}
			return nil
		})
		slices.Sort(found)
		if want := []string{"/clip.mp4", "/lib/x86_64-linux-gnu/libc.so.6", "/lib/x86_64-linux-gnu/libm.so.6", interp, "/streamqc"}; !slices.Equal(found, want) {
			t.Fatalf("root holds %v, want %v", found, want)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "/streamqc", "analyze", "--format", "json", "/clip.mp4")
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root}
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/"}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			t.Fatalf("analyze in a root without FFmpeg: %v\n%s", err, stderr.String())
		}
		lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
		var sum struct {
			Type   string `json:"type"`
			Frames int    `json:"frames"`
		}
		if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" || sum.Frames == 0 {
			t.Fatalf("no summary with frames (%v):\n%s", err, stdout.String())
		}
	})
}

// TestPortableParity: the portable binary and the Debian-linked code (this
// test, in process) give the same events and summaries, decoding with one
// thread, on the labeled corpus and ../shared/media. By default a subset of
// the labeled corpus; STREAMQC_PARITY=all takes every clip.
func TestPortableParity(t *testing.T) {
	bin := portableBin(t)
	var inputs []string
	if dir := sharedMedia(); dir != "" {
		for _, pat := range []string{"*.mp4", "*.ts", "*.webm", "corrupt/*.ts"} {
			m, _ := filepath.Glob(filepath.Join(dir, pat))
			inputs = append(inputs, m...)
		}
	} else {
		t.Log("SKIP real clips: ../shared/media is absent")
	}
	var only []string
	if os.Getenv("STREAMQC_PARITY") != "all" {
		only = []string{clips.BroadcastTS, clips.Black, clips.Freeze, clips.Blocky}
	}
	truths, err := clips.Ensure(context.Background(), only...)
	if err != nil {
		t.Fatalf("labeled clips: %v", err)
	}
	for _, tr := range truths {
		inputs = append(inputs, tr.File)
	}
	if len(inputs) == 0 {
		t.Fatal("no input to compare")
	}
	for _, in := range inputs {
		t.Run(filepath.Base(in), func(t *testing.T) {
			args := []string{"--threads", "1", "--format", "json", "--id", "clip", in}
			var want, werr bytes.Buffer
			wcode := analyzeCmd(context.Background(), args, &want, &werr)
			cmd := exec.Command(bin, append([]string{"analyze"}, args...)...)
			var got, gerr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &got, &gerr
			gcode := 0
			if err := cmd.Run(); err != nil {
				ee, ok := err.(*exec.ExitError)
				if !ok {
					t.Fatal(err)
				}
				gcode = ee.ExitCode()
			}
			if gcode != wcode {
				t.Fatalf("exit %d, Debian-linked %d\nportable: %s\nDebian: %s", gcode, wcode, gerr.String(), werr.String())
			}
			g, w := withoutElapsed(t, got.Bytes()), withoutElapsed(t, want.Bytes())
			if g != w {
				t.Errorf("events differ\nportable:\n%s\nDebian-linked:\n%s", g, w)
			}
		})
	}
}

// withoutElapsed drops the summary's wall time, the one field that differs
// between two runs of the same input.
func withoutElapsed(t *testing.T, b []byte) string {
	t.Helper()
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not JSON: %q", line)
		}
		delete(m, "elapsed")
		j, _ := json.Marshal(m)
		out.Write(j)
		out.WriteByte('\n')
	}
	return out.String()
}

// portableClip is a short clip with video and audio for the bare-root run.
func portableClip(t *testing.T) string {
	t.Helper()
	if dir := sharedMedia(); dir != "" {
		return filepath.Join(dir, "flower_timelapse_cc0_540p_h264_silentaac.mp4")
	}
	truths, err := clips.Ensure(context.Background(), clips.Black)
	if err != nil {
		t.Fatalf("labeled clips: %v", err)
	}
	return truths[0].File
}

func sharedMedia() string {
	d := filepath.Join("..", "..", "..", "shared", "media")
	if st, err := os.Stat(d); err == nil && st.IsDir() {
		abs, _ := filepath.Abs(d)
		return abs
	}
	return ""
}

func copyInto(t *testing.T, root, src, dst string) {
	t.Helper()
	in, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, dst)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, st.Mode().Perm())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}

// versionAfter reports whether dotted version a is newer than b.
func versionAfter(a, b string) bool {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := 0; i < max(len(as), len(bs)); i++ {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if x != y {
			return x > y
		}
	}
	return false
}

// TestPortableProtocols: the portable binary reads a live MPEG-TS over every
// network protocol a sender here can serve on loopback: http, https and HLS
// (Go servers), udp, rtp, srt and rtmp (Debian's ffmpeg CLI as the sender).
// rtsp and rtmps need servers this machine lacks: their demuxer and protocols
// are checked by TestPortableComponents.
func TestPortableProtocols(t *testing.T) {
	bin := portableBin(t)
	ffmpeg, err := exec.LookPath("ffmpeg")
	if err != nil {
		t.Skip("SKIP protocols: no ffmpeg CLI to send with (make deps installs it)")
	}
	truths, err := clips.Ensure(context.Background(), clips.BroadcastTS)
	if err != nil {
		t.Fatalf("labeled clips: %v", err)
	}
	clip := truths[0].File
	dir := t.TempDir()
	hls := filepath.Join(dir, "hls")
	if err := os.Mkdir(hls, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(ffmpeg, "-hide_banner", "-loglevel", "error", "-i", clip, "-c", "copy", "-f", "hls",
		"-hls_time", "2", "-hls_list_size", "0", "-hls_playlist_type", "vod", filepath.Join(hls, "index.m3u8")).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg hls: %v\n%s", err, out)
	}
	files := http.FileServer(http.Dir(dir))
	mux := http.NewServeMux()
	mux.HandleFunc("/clip.ts", func(w http.ResponseWriter, r *http.Request) { http.ServeFile(w, r, clip) })
	mux.Handle("/hls/", files)
	plain := httptest.NewServer(mux)
	defer plain.Close()
	tlsSrv := httptest.NewTLSServer(mux)
	defer tlsSrv.Close()

	// sender starts ffmpeg sending the clip in real time to url, looping.
	sender := func(t *testing.T, args ...string) {
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, ffmpeg, append([]string{"-hide_banner", "-loglevel", "error", "-re", "-stream_loop", "-1", "-i", clip, "-c", "copy"}, args...)...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); cmd.Wait() })
	}
	tests := []struct {
		name   string
		url    string
		before func(t *testing.T, port int) // a sender that listens (started before the reader)
		after  func(t *testing.T, port int) // a sender that pushes (started after the reader binds)
	}{
		{name: "http", url: plain.URL + "/clip.ts"},
		{name: "https", url: tlsSrv.URL + "/clip.ts"},
		{name: "hls over https", url: tlsSrv.URL + "/hls/index.m3u8"},
		{name: "udp", url: "udp://127.0.0.1:%d", after: func(t *testing.T, port int) {
			sender(t, "-f", "mpegts", fmt.Sprintf("udp://127.0.0.1:%d?pkt_size=1316", port))
		}},
		{name: "rtp", url: "rtp://127.0.0.1:%d", after: func(t *testing.T, port int) {
			sender(t, "-f", "rtp_mpegts", fmt.Sprintf("rtp://127.0.0.1:%d", port))
		}},
		{name: "srt", url: "srt://127.0.0.1:%d?mode=caller", before: func(t *testing.T, port int) {
			sender(t, "-f", "mpegts", fmt.Sprintf("srt://127.0.0.1:%d?mode=listener", port))
		}},
		{name: "rtmp", url: "rtmp://127.0.0.1:%d/live/s", before: func(t *testing.T, port int) {
			sender(t, "-f", "flv", "-listen", "1", fmt.Sprintf("rtmp://127.0.0.1:%d/live/s", port))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			url := tc.url
			if strings.Contains(url, "%d") {
				port := freeTCPUDPPort(t)
				url = fmt.Sprintf(url, port)
				if tc.before != nil {
					tc.before(t, port)
					time.Sleep(500 * time.Millisecond) // the listener binds
				}
				if tc.after != nil {
					time.AfterFunc(500*time.Millisecond, func() { tc.after(t, port) })
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, "analyze", "--format", "json", "--duration", "3", "--open-timeout", "15s", url).Output()
			if err != nil {
				var stderr []byte
				if ee, ok := err.(*exec.ExitError); ok {
					stderr = ee.Stderr
				}
				t.Fatalf("analyze %s: %v\n%s", url, err, stderr)
			}
			lines := strings.Split(strings.TrimSpace(string(out)), "\n")
			var sum struct {
				Type        string  `json:"type"`
				Frames      int     `json:"frames"`
				AudioBlocks int     `json:"audio_blocks"`
				Duration    float64 `json:"duration"`
			}
			if err := json.Unmarshal([]byte(lines[len(lines)-1]), &sum); err != nil || sum.Type != "summary" {
				t.Fatalf("no summary (%v):\n%s", err, out)
			}
			if sum.Frames < 25 || sum.AudioBlocks == 0 {
				t.Errorf("read %d frames and %d audio blocks over %s, want a second of each at least:\n%s", sum.Frames, sum.AudioBlocks, url, out)
			}
		})
	}
}

// freeTCPUDPPort is a loopback port free for TCP and UDP alike right now.
func freeTCPUDPPort(t *testing.T) int {
	t.Helper()
	for range 20 {
		port := freePort(t)
		if u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port)); err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}
