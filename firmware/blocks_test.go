package firmware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const testBlock = 4 << 10

// testStreamer runs a BlockServer over channels, the way the agent and
// `firmware push` wire it to MQTT, with an optional mangle of what it
// publishes (the broker's or a broken streamer's doing).
type testStreamer struct {
	reqs   chan []byte
	blocks chan []byte
	mu     sync.Mutex
	asked  []int64 // offsets the agent asked for, in order
	served int64   // bytes of blocks published
}

// mangle gets each published message and returns what is delivered.
type mangle func(msg []byte) [][]byte

func startStreamer(t *testing.T, data []byte, size int64, m mangle) *testStreamer {
	t.Helper()
	ts := &testStreamer{reqs: make(chan []byte, 16), blocks: make(chan []byte, 64)}
	srv := &BlockServer{
		Data: bytes.NewReader(data), Size: size, MaxBlock: testBlock, Requests: ts.reqs,
		Publish: func(ctx context.Context, msg []byte) error {
			out := [][]byte{msg}
			if m != nil {
				out = m(bytes.Clone(msg))
			}
			for _, o := range out {
				select {
				case ts.blocks <- o:
				default: // full: dropped, as the MQTT handler does
				}
			}
			return nil
		},
		Served: func(off int64, n int) {
			ts.mu.Lock()
			ts.served += int64(n)
			ts.mu.Unlock()
		},
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Serve: %v, want context.Canceled", err)
		}
	})
	return ts
}

func (ts *testStreamer) source(size int64) *BlockSource {
	return &BlockSource{
		Size: size, BlockSize: testBlock, Blocks: ts.blocks, Timeout: 2 * time.Second,
		Request: func(ctx context.Context, r BlockRequest) error {
			b, err := json.Marshal(r)
			if err != nil {
				return err
			}
			ts.mu.Lock()
			ts.asked = append(ts.asked, r.Offset)
			ts.mu.Unlock()
			select {
			case ts.reqs <- b:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		},
	}
}

func (ts *testStreamer) stats() (asked []int64, served int64) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]int64(nil), ts.asked...), ts.served
}

func countOf(xs []int64, x int64) int {
	n := 0
	for _, v := range xs {
		if v == x {
			n++
		}
	}
	return n
}

// Mangles, each applied to the block at offset at (every block when at < 0).
func header(t *testing.T, msg []byte) BlockHeader {
	h, _, err := DecodeBlock(msg)
	if err != nil {
		t.Errorf("the streamer published a bad block: %v", err)
	}
	return h
}

func flipOnce(t *testing.T, at int64) mangle {
	done := false
	return func(msg []byte) [][]byte {
		if !done && header(t, msg).Offset == at {
			done = true
			msg[len(msg)-1] ^= 1
		}
		return [][]byte{msg}
	}
}

func truncateAlways(t *testing.T, at int64) mangle {
	return func(msg []byte) [][]byte {
		if header(t, msg).Offset == at {
			msg = msg[:len(msg)-100]
		}
		return [][]byte{msg}
	}
}

// shortSound sends a sound block one byte shorter than asked.
func shortSound(t *testing.T, at int64) mangle {
	return func(msg []byte) [][]byte {
		h, data, _ := DecodeBlock(msg)
		if h.Offset == at {
			msg = EncodeBlock(BlockHeader{Offset: h.Offset, Total: h.Total}, data[:len(data)-1])
		}
		return [][]byte{msg}
	}
}

// stale delivers, before each block, the previous one, a damaged copy of
// it and an error header for it, and after it a duplicate.
func stale(t *testing.T) mangle {
	var prev []byte
	return func(msg []byte) [][]byte {
		out := [][]byte{}
		if prev != nil {
			h := header(t, prev)
			out = append(out, prev, prev[:len(prev)-1], EncodeBlock(BlockHeader{Offset: h.Offset, Total: h.Total, Error: "late"}, nil))
		}
		prev = bytes.Clone(msg)
		return append(out, msg, msg)
	}
}

// garbageOnce delivers two undecodable messages before the block at at:
// counted against that offset (nothing says which they were for), but
// fewer than MaxBad.
func garbageOnce(t *testing.T, at int64) mangle {
	done := false
	return func(msg []byte) [][]byte {
		if !done && header(t, msg).Offset == at {
			done = true
			return [][]byte{[]byte("junk"), {0, 0, 0, 200, '{'}, msg}
		}
		return [][]byte{msg}
	}
}

func errorAt(t *testing.T, at int64, text string) mangle {
	return func(msg []byte) [][]byte {
		if h := header(t, msg); h.Offset == at {
			msg = EncodeBlock(BlockHeader{Offset: h.Offset, Total: h.Total, Error: text}, nil)
		}
		return [][]byte{msg}
	}
}

func dropOnce(t *testing.T, at int64) mangle {
	done := false
	return func(msg []byte) [][]byte {
		if !done && header(t, msg).Offset == at {
			done = true
			return nil
		}
		return [][]byte{msg}
	}
}

func TestBlockSourceCopy(t *testing.T) {
	data := dlData(dlSize, 7)
	size := int64(len(data))
	blocks := int(size / testBlock)
	const at = 20 * testBlock // the offset a mangle picks on
	cases := []struct {
		name       string
		serverSize int64 // 0: size
		mangle     func(t *testing.T) mangle
		maxBad     int
		timeout    time.Duration

		wantErr   error  // nil: success
		wantText  string // in the error
		notErr    error  // the error must not wrap this
		wantHeld  int    // on an error: the bytes copied before it
		wantAsked func(asked []int64) bool
	}{
		{name: "full", wantAsked: func(a []int64) bool { return len(a) == blocks }},
		{name: "corrupt once, asked again", mangle: func(t *testing.T) mangle { return flipOnce(t, at) },
			wantAsked: func(a []int64) bool { return countOf(a, at) == 2 }},
		{name: "truncated always", mangle: func(t *testing.T) mangle { return truncateAlways(t, at) },
			wantErr: ErrCorrupt, wantText: "offset " + strconv.Itoa(at), wantHeld: at, wantAsked: func(a []int64) bool { return countOf(a, at) == DefaultMaxBad }},
		{name: "sound block of the wrong length", mangle: func(t *testing.T) mangle { return shortSound(t, at) }, maxBad: 2,
			wantErr: ErrCorrupt, wantText: "offset " + strconv.Itoa(at), wantHeld: at, wantAsked: func(a []int64) bool { return countOf(a, at) == 2 }},
		// With MaxBad 1 any stale message counted as bad would fail it.
		{name: "stale duplicates ignored", mangle: stale, maxBad: 1,
			wantAsked: func(a []int64) bool { return len(a) == blocks }},
		{name: "undecodable messages refused, not fatal", mangle: func(t *testing.T) mangle { return garbageOnce(t, at) }},
		{name: "lost block asked again after the timeout", mangle: func(t *testing.T) mangle { return dropOnce(t, at) }, timeout: 100 * time.Millisecond,
			wantAsked: func(a []int64) bool { return countOf(a, at) >= 2 }},
		{name: "streamer error returned", mangle: func(t *testing.T) mangle { return errorAt(t, at, "no such job") },
			wantText: `"no such job"`, notErr: ErrCorrupt, wantHeld: at},
		{name: "streamer serves another bundle", serverSize: size + 1, wantText: "bundle of " + strconv.FormatInt(size+1, 10) + " bytes", notErr: ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			serverSize := tc.serverSize
			if serverSize == 0 {
				serverSize = size
			}
			var m mangle
			if tc.mangle != nil {
				m = tc.mangle(t)
			}
			ts := startStreamer(t, data, serverSize, m)
			src := ts.source(size)
			src.MaxBad = tc.maxBad
			if tc.timeout > 0 {
				src.Timeout = tc.timeout
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var buf bytes.Buffer
			err := src.Copy(ctx, 0, &buf)
			t.Logf("Copy: %v", err)

			asked, _ := ts.stats()
			switch {
			case tc.wantErr == nil && tc.wantText == "":
				if err != nil {
					t.Fatalf("Copy: %v", err)
				}
				if !bytes.Equal(buf.Bytes(), data) {
					t.Fatalf("copied %d bytes, not the bundle", buf.Len())
				}
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr),
				tc.wantText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantText)),
				tc.notErr != nil && errors.Is(err, tc.notErr):
				t.Fatalf("Copy: %v, want an error wrapping %v saying %q (and not %v)", err, tc.wantErr, tc.wantText, tc.notErr)
			default:
				// Everything before the refused block, nothing of it.
				if !bytes.Equal(buf.Bytes(), data[:tc.wantHeld]) {
					t.Fatalf("copied %d bytes, want the %d before the refused block", buf.Len(), tc.wantHeld)
				}
			}
			if tc.wantAsked != nil && !tc.wantAsked(asked) {
				t.Fatalf("asked %d times (at offset %d: %d times)", len(asked), at, countOf(asked, at))
			}
		})
	}
}

// Download over blocks: the bundle's SHA-256 checked, a refused block
// removes the part file (ErrCorrupt, as the whole download is refused).
func TestDownloadBlocks(t *testing.T) {
	data := dlData(dlSize, 8)
	ref := dlRef(data)
	ref.BlockSize = testBlock

	t.Run("complete", func(t *testing.T) {
		ts := startStreamer(t, data, ref.Size, flipOnce(t, 3*testBlock))
		path := filepath.Join(t.TempDir(), "bundle.part")
		var p dlProgress
		if err := Download(context.Background(), ts.source(ref.Size), ref, path, DownloadOptions{SyncEvery: 32 << 10, Progress: p.add}); err != nil {
			t.Fatalf("Download: %v", err)
		}
		fileIs(t, path, data)
		p.check(t, ref.Size, true)
		if _, served := ts.stats(); served != ref.Size+testBlock {
			t.Fatalf("served %d bytes, want the bundle and the block sent twice", served)
		}
	})
	t.Run("refused block", func(t *testing.T) {
		ts := startStreamer(t, data, ref.Size, truncateAlways(t, 3*testBlock))
		path := filepath.Join(t.TempDir(), "bundle.part")
		err := Download(context.Background(), ts.source(ref.Size), ref, path, DownloadOptions{})
		if !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Download: %v, want ErrCorrupt", err)
		}
		fileIs(t, path, nil)
	})
}

// Killed halfway (the job's ctx cancelled), then a new Download with a new
// BlockSource resumes at the bytes held.
func TestDownloadBlocksResume(t *testing.T) {
	data := dlData(dlSize, 9)
	ref := dlRef(data)
	ref.BlockSize = testBlock
	path := filepath.Join(t.TempDir(), "bundle.part")

	ts := startStreamer(t, data, ref.Size, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := Download(ctx, ts.source(ref.Size), ref, path, DownloadOptions{SyncEvery: testBlock, Progress: func(have int64) {
		if have >= ref.Size/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Download: %v, want context.Canceled", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	held := st.Size()
	if held < ref.Size/2 || held >= ref.Size || held%testBlock != 0 {
		t.Fatalf("part file of %d bytes after a cancel at half of %d", held, ref.Size)
	}
	fileIs(t, path, data[:held])

	ts2 := startStreamer(t, data, ref.Size, nil)
	if err := Download(context.Background(), ts2.source(ref.Size), ref, path, DownloadOptions{}); err != nil {
		t.Fatalf("resumed Download: %v", err)
	}
	fileIs(t, path, data)
	asked, served := ts2.stats()
	if len(asked) == 0 || asked[0] != held {
		t.Fatalf("resumed with requests at %v, want the first at %d", asked[:min(len(asked), 3)], held)
	}
	if served != ref.Size-held {
		t.Fatalf("the resumed download served %d bytes, want %d", served, ref.Size-held)
	}
}

// Request failing (not connected) is retried after Timeout/2, not in a
// tight loop.
func TestBlockSourceRequestErrors(t *testing.T) {
	data := dlData(16<<10, 10)
	ts := startStreamer(t, data, int64(len(data)), nil)
	src := ts.source(int64(len(data)))
	src.Timeout = 100 * time.Millisecond
	inner := src.Request
	var calls []time.Time // only Copy's goroutine touches it
	src.Request = func(ctx context.Context, r BlockRequest) error {
		calls = append(calls, time.Now())
		if len(calls) <= 3 {
			return errors.New("not connected")
		}
		return inner(ctx, r)
	}
	var buf bytes.Buffer
	if err := src.Copy(context.Background(), 0, &buf); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatalf("copied %d bytes, not the bundle", buf.Len())
	}
	if len(calls) < 3+len(data)/testBlock {
		t.Fatalf("%d requests", len(calls))
	}
	for i := 1; i <= 3; i++ {
		if gap := calls[i].Sub(calls[i-1]); gap < 40*time.Millisecond {
			t.Fatalf("request %d retried after %v, want about Timeout/2", i, gap)
		}
	}
}

func TestServeBlocks(t *testing.T) {
	data := dlData(10000, 11)
	size := int64(len(data))
	const maxBlock = 4096
	cases := []struct {
		name     string
		req      string
		wantOff  int64
		wantErr  string // in the header's Error; "" : a block
		wantData []byte
	}{
		{name: "first block", req: `{"offset":0,"length":4096}`, wantData: data[:4096]},
		{name: "last block clamped at the end", req: `{"offset":9000,"length":4096}`, wantOff: 9000, wantData: data[9000:]},
		{name: "bad JSON", req: `{"offset":`, wantOff: -1, wantErr: "bad request"},
		{name: "unknown field", req: `{"offset":0,"length":1,"x":1}`, wantOff: -1, wantErr: "bad request"},
		{name: "trailing data", req: `{"offset":0,"length":1} {}`, wantOff: -1, wantErr: "trailing data"},
		{name: "too long", req: `{"offset":0,"length":1}` + strings.Repeat(" ", maxBlockRequest), wantOff: -1, wantErr: "bad request"},
		{name: "offset beyond the end", req: `{"offset":10000,"length":1}`, wantOff: 10000, wantErr: "beyond the end"},
		{name: "negative offset", req: `{"offset":-5,"length":1}`, wantOff: -5, wantErr: "beyond the end"},
		{name: "length 0", req: `{"offset":0,"length":0}`, wantErr: "length 0"},
		{name: "length too big", req: `{"offset":0,"length":4097}`, wantErr: "length 4097"},
	}
	reqs := make(chan []byte)
	out := make(chan []byte, 1)
	var served []int64
	var publishes int
	srv := &BlockServer{Data: bytes.NewReader(data), Size: size, MaxBlock: maxBlock, Requests: reqs,
		Publish: func(ctx context.Context, msg []byte) error {
			if publishes++; publishes == 1 {
				return errors.New("not connected") // dropped; the next request is still served
			}
			out <- msg
			return nil
		},
		Served: func(off int64, n int) { served = append(served, off, int64(n)) },
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(context.Background()) }()
	reqs <- []byte(`{"offset":0,"length":1}`) // its publish fails

	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reqs <- []byte(tc.req)
			h, got, err := DecodeBlock(<-out)
			if err != nil {
				t.Fatalf("DecodeBlock: %v", err)
			}
			if h.Offset != tc.wantOff || h.Total != size {
				t.Fatalf("header %+v, want offset %d, total %d", h, tc.wantOff, size)
			}
			if tc.wantErr != "" {
				if !strings.Contains(h.Error, tc.wantErr) || len(got) != 0 {
					t.Fatalf("header error %q with %d bytes, want %q and none", h.Error, len(got), tc.wantErr)
				}
				return
			}
			if h.Error != "" || !bytes.Equal(got, tc.wantData) {
				t.Fatalf("header %+v, %d bytes, want %d bytes of the bundle", h, len(got), len(tc.wantData))
			}
		})
	}
	close(reqs)
	if err := <-done; err != nil {
		t.Fatalf("Serve after its requests closed: %v, want nil", err)
	}
	if want := []int64{0, 4096, 9000, 1000}; fmt.Sprint(served) != fmt.Sprint(want) {
		t.Fatalf("Served hook saw %v, want %v (refusals and failed publishes not counted)", served, want)
	}
}

// Blocks that arrive out of order (a window of requests outstanding) are
// written in order; memory holds at most a window of them.
func TestBlockSourceOutOfOrder(t *testing.T) {
	data := dlData(40*testBlock+123, 11)
	var held []byte
	swap := func(msg []byte) [][]byte { // each block after the next one
		if held == nil {
			held = msg
			return nil
		}
		out := [][]byte{msg, held}
		held = nil
		return out
	}
	ts := startStreamer(t, data, int64(len(data)), swap)
	src := ts.source(int64(len(data)))
	src.Timeout = 200 * time.Millisecond // the last block, held back, is asked for again
	src.Window = 4
	var buf bytes.Buffer
	if err := src.Copy(context.Background(), 0, &buf); err != nil {
		t.Fatalf("Copy: %v", err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Fatal("out-of-order blocks were not written in order")
	}
	asked, _ := ts.stats()
	seen := map[int64]bool{}
	for _, o := range asked {
		seen[o] = true
	}
	if len(seen) != 41 {
		t.Fatalf("asked for %d distinct offsets, want 41", len(seen))
	}
}
