package firmware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

const dlSize = 300 << 10

// dlData returns n deterministic pseudo-random bytes.
func dlData(n int, seed byte) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	rand.NewChaCha8(s).Read(b)
	return b
}

func dlRef(data []byte) BundleRef {
	sum := sha256.Sum256(data)
	return BundleRef{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}
}

// dlProgress records the progress calls of one Download.
type dlProgress struct {
	mu   sync.Mutex
	seen []int64
}

func (p *dlProgress) add(have int64) {
	p.mu.Lock()
	p.seen = append(p.seen, have)
	p.mu.Unlock()
}

// check: increasing, within the bundle, and ending at its size when done.
func (p *dlProgress) check(t *testing.T, size int64, complete bool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, v := range p.seen {
		if v <= 0 || v > size || i > 0 && v <= p.seen[i-1] {
			t.Fatalf("progress %v: want increasing values in (0, %d]", p.seen, size)
		}
	}
	if complete && (len(p.seen) == 0 || p.seen[len(p.seen)-1] != size) {
		t.Fatalf("progress %v: want it to end at %d", p.seen, size)
	}
}

// fileIs checks the part file: absent when want is nil.
func fileIs(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if want == nil {
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("part file: want it absent, got %d bytes, %v", len(got), err)
		}
		return
	}
	if err != nil {
		t.Fatalf("part file: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("part file: %d bytes, want %d (equal: %v)", len(got), len(want), bytes.Equal(got[:min(len(got), len(want))], want[:min(len(got), len(want))]))
	}
}

// httpBundle serves data over HTTP the way mode says, and records what it
// was asked and how many bytes of body it wrote.
type httpBundle struct {
	data []byte
	mu   sync.Mutex
	mode string
	// "range": honours Range; "ignore": always 200 with everything;
	// "chunked": like ignore without Content-Length; "badrange": 206 from
	// byte 0 whatever was asked; "abort"/"stall": write half of the body,
	// then drop the connection / block; "404"; "redirect": to Location.
	location string
	ranges   []string
	served   int64
	inflight int        // handlers running
	idle     *sync.Cond // signalled when inflight drops to 0
}

func (b *httpBundle) setMode(m string) {
	b.mu.Lock()
	b.mode = m
	b.mu.Unlock()
}

// stats waits for the handlers to finish: the client may have all the
// bytes before the handler's Write returns.
func (b *httpBundle) stats() ([]string, int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for b.inflight > 0 {
		b.idle.Wait()
	}
	return append([]string(nil), b.ranges...), b.served
}

func (b *httpBundle) write(w http.ResponseWriter, p []byte) {
	n, _ := w.Write(p)
	b.mu.Lock()
	b.served += int64(n)
	b.mu.Unlock()
}

func (b *httpBundle) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b.mu.Lock()
	mode := b.mode
	b.ranges = append(b.ranges, r.Header.Get("Range"))
	b.inflight++
	b.mu.Unlock()
	defer func() {
		b.mu.Lock()
		if b.inflight--; b.inflight == 0 {
			b.idle.Broadcast()
		}
		b.mu.Unlock()
	}()
	switch mode {
	case "404":
		http.NotFound(w, r)
		return
	case "redirect":
		http.Redirect(w, r, b.location, http.StatusFound)
		return
	}
	body, status := b.data, http.StatusOK
	if rng := r.Header.Get("Range"); rng != "" && mode != "ignore" && mode != "chunked" {
		off, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(rng, "bytes="), "-"), 10, 64)
		if err != nil || off >= int64(len(b.data)) {
			http.Error(w, "bad range", http.StatusRequestedRangeNotSatisfiable)
			return
		}
		if mode == "badrange" {
			off = 0
		}
		body, status = b.data[off:], http.StatusPartialContent
		w.Header().Set("Content-Range", fmt.Sprintf("bytes %d-%d/%d", off, len(b.data)-1, len(b.data)))
	}
	if mode == "chunked" {
		w.WriteHeader(status)
		w.(http.Flusher).Flush()
	} else {
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(status)
	}
	switch mode {
	case "abort", "stall":
		b.write(w, body[:len(body)/2])
		w.(http.Flusher).Flush()
		if mode == "abort" {
			panic(http.ErrAbortHandler)
		}
		<-r.Context().Done()
	default:
		b.write(w, body)
	}
}

func newBundleServer(t *testing.T, b *httpBundle) (*httptest.Server, *x509.CertPool) {
	t.Helper()
	b.idle = sync.NewCond(&b.mu)
	srv := httptest.NewTLSServer(b)
	t.Cleanup(srv.Close)
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	return srv, pool
}

func TestDownloadHTTP(t *testing.T) {
	data := dlData(dlSize, 1)
	half := len(data) / 2
	flipped := bytes.Clone(data)
	flipped[len(data)-7] ^= 0x40
	garbage := dlData(half, 2)
	longer := append(bytes.Clone(data), "left over"...)
	extra := append(bytes.Clone(data), make([]byte, 4096)...)
	rangeAt := func(off int) string { return "bytes=" + strconv.Itoa(off) + "-" }

	cases := []struct {
		name    string
		mode    string
		serve   []byte // nil: data
		prefill []byte // the part file before; nil: none
		limit   int64
		query   string
		idle    time.Duration

		wantErr    error  // nil: success
		wantText   string // in the error
		wantFile   []byte // nil: removed or never created
		wantRanges []string
		wantServed int64 // -1: do not check
	}{
		{name: "full", mode: "range", wantFile: data, wantRanges: []string{""}, wantServed: dlSize},
		{name: "resume half", mode: "range", prefill: data[:half], wantFile: data, wantRanges: []string{rangeAt(half)}, wantServed: int64(dlSize - half)},
		{name: "server ignores Range", mode: "ignore", prefill: data[:half], wantFile: data, wantRanges: []string{rangeAt(half)}, wantServed: dlSize},
		{name: "part file longer than the bundle starts over", mode: "range", prefill: longer, wantFile: data, wantRanges: []string{""}, wantServed: dlSize},
		{name: "part file already complete", mode: "range", prefill: data, wantFile: data, wantRanges: nil, wantServed: 0},
		{name: "corrupt content", mode: "range", serve: flipped, wantErr: ErrCorrupt, wantText: "bundle SHA-256 mismatch", wantRanges: []string{""}, wantServed: dlSize},
		{name: "garbage held before a resume", mode: "range", prefill: garbage, wantErr: ErrCorrupt, wantText: "SHA-256 mismatch", wantRanges: []string{rangeAt(half)}, wantServed: int64(dlSize - half)},
		{name: "more than Size with Content-Length", mode: "range", serve: extra, wantErr: ErrTooLarge, wantRanges: []string{""}, wantServed: -1},
		{name: "more than Size chunked", mode: "chunked", serve: extra, wantErr: ErrTooLarge, wantRanges: []string{""}, wantServed: -1},
		{name: "over the limit", mode: "range", limit: dlSize - 1, wantErr: ErrTooLarge, wantText: "limit", wantRanges: nil, wantServed: 0},
		{name: "closed mid-body", mode: "abort", wantErr: io.ErrUnexpectedEOF, wantFile: data[:half], wantRanges: []string{""}, wantServed: int64(half)},
		{name: "stalled body", mode: "stall", idle: 200 * time.Millisecond, wantErr: errStalled, wantFile: data[:half], wantRanges: []string{""}, wantServed: int64(half)},
		{name: "404 names the status, not the token", mode: "404", query: "?token=s3cret", wantText: "404 Not Found", wantFile: []byte{}, wantRanges: []string{""}, wantServed: -1},
		{name: "206 at the wrong offset", mode: "badrange", prefill: data[:half], wantText: "206 for offset 0, asked for " + strconv.Itoa(half), wantFile: data[:half], wantRanges: []string{rangeAt(half)}, wantServed: -1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &httpBundle{data: tc.serve, mode: tc.mode}
			if b.data == nil {
				b.data = data
			}
			srv, pool := newBundleServer(t, b)
			path := filepath.Join(t.TempDir(), "bundle.part")
			if tc.prefill != nil {
				if err := os.WriteFile(path, tc.prefill, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			src := &HTTPSource{URL: srv.URL + "/bundle" + tc.query, Size: dlSize, Client: NewHTTPClient(pool, nil), IdleTimeout: tc.idle}
			var p dlProgress
			start := time.Now()
			err := Download(context.Background(), src, dlRef(data), path, DownloadOptions{Limit: tc.limit, SyncEvery: 64 << 10, Progress: p.add})

			switch {
			case tc.wantErr == nil && tc.wantText == "" && err != nil:
				t.Fatalf("Download: %v", err)
			case tc.wantErr != nil && !errors.Is(err, tc.wantErr):
				t.Fatalf("Download: %v, want an error wrapping %q", err, tc.wantErr)
			case tc.wantText != "" && (err == nil || !strings.Contains(err.Error(), tc.wantText)):
				t.Fatalf("Download: %v, want an error saying %q", err, tc.wantText)
			}
			t.Logf("Download: %v", err)
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error leaks the URL's query: %v", err)
			}
			if tc.wantErr == errStalled && time.Since(start) > 5*time.Second {
				t.Fatalf("a stall took %v to notice", time.Since(start))
			}
			fileIs(t, path, tc.wantFile)
			p.check(t, dlSize, err == nil)
			ranges, served := b.stats()
			if fmt.Sprint(ranges) != fmt.Sprint(tc.wantRanges) {
				t.Fatalf("Range headers %q, want %q", ranges, tc.wantRanges)
			}
			if tc.wantServed >= 0 && served != tc.wantServed {
				t.Fatalf("server wrote %d bytes of body, want %d", served, tc.wantServed)
			}
		})
	}
}

// After a dropped connection the part file keeps what arrived and the next
// Download asks only for the rest.
func TestDownloadHTTPResumesAfterDrop(t *testing.T) {
	data := dlData(dlSize, 3)
	half := len(data) / 2
	b := &httpBundle{data: data, mode: "abort"}
	srv, pool := newBundleServer(t, b)
	path := filepath.Join(t.TempDir(), "bundle.part")
	src := &HTTPSource{URL: srv.URL + "/b", Size: dlSize, Client: NewHTTPClient(pool, nil)}

	err := Download(context.Background(), src, dlRef(data), path, DownloadOptions{})
	if !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("first Download: %v, want io.ErrUnexpectedEOF", err)
	}
	fileIs(t, path, data[:half])

	b.setMode("range")
	if err := Download(context.Background(), src, dlRef(data), path, DownloadOptions{}); err != nil {
		t.Fatalf("second Download: %v", err)
	}
	fileIs(t, path, data)
	ranges, served := b.stats()
	if want := []string{"", "bytes=" + strconv.Itoa(half) + "-"}; fmt.Sprint(ranges) != fmt.Sprint(want) {
		t.Fatalf("Range headers %q, want %q", ranges, want)
	}
	if served != int64(dlSize) {
		t.Fatalf("served %d bytes in all, want %d (half, then the other half)", served, dlSize)
	}
}

func TestHTTPClientRedirects(t *testing.T) {
	data := dlData(8<<10, 4)
	target := &httpBundle{data: data, mode: "range"}
	tsrv, pool := newBundleServer(t, target)

	// A chain of n https redirects on one server, ending at the bundle.
	chain := func(n int) *httptest.Server {
		var srv *httptest.Server
		srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			k, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/"))
			if k >= n {
				http.Redirect(w, r, tsrv.URL+"/bundle?sig=s3cret", http.StatusFound)
				return
			}
			http.Redirect(w, r, srv.URL+"/"+strconv.Itoa(k+1), http.StatusFound)
		}))
		t.Cleanup(srv.Close)
		pool.AddCert(srv.Certificate())
		return srv
	}
	plain := httptest.NewServer(http.NotFoundHandler())
	t.Cleanup(plain.Close)
	toHTTP := &httpBundle{mode: "redirect", location: plain.URL + "/bundle?sig=s3cret"}
	hsrv, _ := newBundleServer(t, toHTTP)
	pool.AddCert(hsrv.Certificate())

	cases := []struct {
		name     string
		url      string
		wantText string
	}{
		{name: "two https redirects followed", url: chain(1).URL + "/0"},
		{name: "five redirects followed", url: chain(4).URL + "/0"},
		{name: "six redirects refused", url: chain(5).URL + "/0", wantText: "stopped after 5 redirects"},
		{name: "redirect to http refused", url: hsrv.URL + "/bundle", wantText: "not https"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			src := &HTTPSource{URL: tc.url, Size: int64(len(data)), Client: NewHTTPClient(pool, nil)}
			err := src.Copy(context.Background(), 0, &buf)
			if tc.wantText == "" {
				if err != nil || !bytes.Equal(buf.Bytes(), data) {
					t.Fatalf("Copy: %v, %d bytes", err, buf.Len())
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantText) {
				t.Fatalf("Copy: %v, want an error saying %q", err, tc.wantText)
			}
			t.Logf("Copy: %v", err)
			if strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("the error leaks a query string: %v", err)
			}
			if buf.Len() != 0 {
				t.Fatalf("%d bytes written after a refused redirect", buf.Len())
			}
		})
	}
}

func TestHTTPClientCheckAddr(t *testing.T) {
	data := dlData(8<<10, 5)
	errLoopback := errors.New("loopback refused")
	refuseLoopback := func(ip net.IP) error {
		if ip.IsLoopback() {
			return errLoopback
		}
		return nil
	}
	cases := []struct {
		name    string
		host    string // replaces 127.0.0.1 in the server's URL
		check   func(net.IP) error
		wantErr error
	}{
		// A name goes through the resolver, as a rebinding name would.
		{name: "name resolving to loopback refused", host: "localhost", check: refuseLoopback, wantErr: errLoopback},
		{name: "loopback address refused", host: "127.0.0.1", check: refuseLoopback, wantErr: errLoopback},
		// The test certificate names 127.0.0.1, not localhost.
		{name: "allowed address dialed", host: "127.0.0.1", check: func(net.IP) error { return nil }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			b := &httpBundle{data: data, mode: "range"}
			srv, pool := newBundleServer(t, b)
			var mu sync.Mutex
			var checked []string
			check := func(ip net.IP) error {
				mu.Lock()
				checked = append(checked, ip.String())
				mu.Unlock()
				return tc.check(ip)
			}
			url := strings.Replace(srv.URL, "127.0.0.1", tc.host, 1) + "/bundle"
			var buf bytes.Buffer
			err := (&HTTPSource{URL: url, Size: int64(len(data)), Client: NewHTTPClient(pool, check)}).Copy(context.Background(), 0, &buf)
			ranges, _ := b.stats()
			mu.Lock()
			defer mu.Unlock()
			if len(checked) == 0 {
				t.Fatal("no dialed address was checked")
			}
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("Copy: %v, want an error wrapping %v", err, tc.wantErr)
				}
				if len(ranges) != 0 || buf.Len() != 0 {
					t.Fatalf("the server got %d requests through a refused address", len(ranges))
				}
				return
			}
			if err != nil || !bytes.Equal(buf.Bytes(), data) {
				t.Fatalf("Copy: %v, %d bytes", err, buf.Len())
			}
		})
	}
}

// Refusals before any byte is fetched or any file made.
func TestDownloadRefusesUpFront(t *testing.T) {
	data := dlData(4<<10, 6)
	good := dlRef(data)
	cases := []struct {
		name string
		ref  BundleRef
		opt  DownloadOptions
		want error
	}{
		{name: "over the default limit", ref: BundleRef{Size: DefaultLimit + 1, SHA256: good.SHA256}, want: ErrTooLarge},
		{name: "over the given limit", ref: good, opt: DownloadOptions{Limit: 100}, want: ErrTooLarge},
		{name: "no size", ref: BundleRef{SHA256: good.SHA256}},
		{name: "bad sha256", ref: BundleRef{Size: good.Size, SHA256: "abc"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "bundle.part")
			src := &BlockSource{Size: tc.ref.Size, Request: func(context.Context, BlockRequest) error {
				t.Error("a request was made")
				return nil
			}, Blocks: make(chan []byte)}
			err := Download(context.Background(), src, tc.ref, path, tc.opt)
			if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Download: %v, want an error wrapping %v", err, tc.want)
			}
			fileIs(t, path, nil)
		})
	}
}
