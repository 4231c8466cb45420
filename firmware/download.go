package firmware

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Defaults of the download.
const (
	DefaultSyncEvery   = 1 << 20
	DefaultIdleTimeout = 60 * time.Second
	maxRedirects       = 5
)

// Source copies the bundle's bytes from offset off onward into w, until
// the end (the bundle's size) or an error. An error wrapping ErrCorrupt or
// ErrTooLarge says the bytes cannot be trusted (Download then starts over);
// any other error is taken as resumable.
type Source interface {
	Copy(ctx context.Context, off int64, w io.Writer) error
}

// DownloadOptions tunes Download; the zero value is the defaults.
type DownloadOptions struct {
	// Limit refuses a bundle larger than this many bytes (0: DefaultLimit).
	Limit int64
	// SyncEvery is the most bytes written between two fsyncs of the part
	// file (0: DefaultSyncEvery).
	SyncEvery int64
	// Progress, when set, is called with the bytes held after each fsync
	// and once at the end (before the SHA-256 check), from Download's
	// goroutine or the source's.
	Progress func(have int64)
}

// Download fills the part file path with the bundle ref describes,
// resuming from the bytes already in it (a part file longer than ref.Size
// is started over), and when complete checks the whole file's size and
// SHA-256 against ref.
//
//   - ref.Size over the limit: an error wrapping ErrTooLarge before
//     anything is created on disk.
//   - The source sends more than ref.Size bytes: ErrTooLarge, part file
//     removed.
//   - The SHA-256 does not match: ErrCorrupt ("bundle SHA-256 mismatch"),
//     part file removed. After a power cut the part file may end in bytes
//     that were never fsynced (zeros, garbage); this is where that shows,
//     and the caller may retry once from zero.
//   - Any other error of the source (offline, cancelled, truncated body) is
//     returned wrapped and the part file is kept, so the next Download
//     resumes; ErrCorrupt and ErrTooLarge of the source remove it.
//
// Only one Download may use a path at a time.
func Download(ctx context.Context, src Source, ref BundleRef, path string, opt DownloadOptions) error {
	limit := opt.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	every := opt.SyncEvery
	if every <= 0 {
		every = DefaultSyncEvery
	}
	if ref.Size <= 0 {
		return fmt.Errorf("firmware: download: bundle size %d", ref.Size)
	}
	if ref.Size > limit {
		return refuse(ErrTooLarge, "bundle of %d bytes, the limit is %d", ref.Size, limit)
	}
	want, err := hex.DecodeString(ref.SHA256)
	if err != nil || len(want) != sha256.Size {
		return errors.New("firmware: download: bundle sha256 is not 64 hex digits")
	}
	if src == nil {
		return errors.New("firmware: download: no source")
	}

	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("firmware: download: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("firmware: download: %w", err)
	}
	have := st.Size()
	if have > ref.Size {
		// Not a prefix of this bundle (another job's leftovers): start over.
		if err := f.Truncate(0); err != nil {
			f.Close()
			return fmt.Errorf("firmware: download: %w", err)
		}
		have = 0
	}
	pw := &partWriter{ctx: ctx, f: f, have: have, synced: have, size: ref.Size, every: every, progress: opt.Progress}
	if have < ref.Size {
		err = src.Copy(ctx, have, pw)
		if err == nil && pw.have < ref.Size {
			err = fmt.Errorf("source ended at %d of %d bytes: %w", pw.have, ref.Size, io.ErrUnexpectedEOF)
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
				return removePart(f, path, fmt.Errorf("firmware: download: %w", err))
			}
			// Keep what arrived for the next try.
			pw.sync()
			f.Close()
			return fmt.Errorf("firmware: download: %w", err)
		}
	}
	if err := pw.sync(); err != nil {
		f.Close()
		return fmt.Errorf("firmware: download: %w", err)
	}
	if pw.progress != nil && pw.reported != pw.have {
		pw.progress(pw.have)
	}

	// Hash what is on disk rather than what was sent: this is what gets
	// installed, and it is where a tail that was never fsynced shows.
	st, err = f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("firmware: download: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, io.NewSectionReader(f, 0, ref.Size))
	if err != nil {
		f.Close()
		return fmt.Errorf("firmware: download: hash part file: %w", err)
	}
	if st.Size() != ref.Size || n != ref.Size {
		return removePart(f, path, refuse(ErrCorrupt, "bundle SHA-256 mismatch: the part file has %d bytes, want %d", st.Size(), ref.Size))
	}
	if !bytes.Equal(h.Sum(nil), want) {
		return removePart(f, path, refuse(ErrCorrupt, "bundle SHA-256 mismatch"))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("firmware: download: %w", err)
	}
	return nil
}

// removePart closes and removes the part file, returning cause (and why
// the removal failed, if it did).
func removePart(f *os.File, path string, cause error) error {
	f.Close()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return errors.Join(cause, fmt.Errorf("firmware: download: remove part file: %w", err))
	}
	return cause
}

// partWriter writes at explicit offsets (no O_APPEND: a resumed file is
// written from exactly the byte held), refuses bytes past the bundle's
// size and fsyncs every so often.
type partWriter struct {
	ctx      context.Context
	f        *os.File
	have     int64
	synced   int64
	reported int64
	size     int64
	every    int64
	progress func(int64)
}

func (w *partWriter) Write(p []byte) (int, error) {
	if err := w.ctx.Err(); err != nil {
		return 0, err
	}
	if int64(len(p)) > w.size-w.have {
		return 0, fmt.Errorf("%w: the source sent more than the bundle's %d bytes", ErrTooLarge, w.size)
	}
	n, err := w.f.WriteAt(p, w.have)
	w.have += int64(n)
	if err != nil {
		return n, fmt.Errorf("write part file: %w", err)
	}
	if w.have-w.synced >= w.every {
		if err := w.sync(); err != nil {
			return n, err
		}
		if w.progress != nil {
			w.reported = w.have
			w.progress(w.have)
		}
	}
	return n, nil
}

func (w *partWriter) sync() error {
	if w.synced == w.have {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		return fmt.Errorf("fsync part file: %w", err)
	}
	w.synced = w.have
	return nil
}

// HTTPSource downloads a bundle from an https URL, resuming with a Range
// request.
type HTTPSource struct {
	URL string
	// Size is the bundle's size in bytes (ref.Size); required.
	Size int64
	// Client nil: NewHTTPClient(nil, nil).
	Client *http.Client
	// IdleTimeout fails the copy when no byte arrives for this long
	// (0: DefaultIdleTimeout); there is no limit on the whole body.
	IdleTimeout time.Duration
}

// errStalled is the cause of a copy cancelled by the idle timer.
var errStalled = errors.New("download stalled")

// Copy implements Source. Errors never carry the URL's query string (it
// may hold a token).
func (s *HTTPSource) Copy(ctx context.Context, off int64, w io.Writer) error {
	u, err := url.Parse(s.URL)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return errors.New("bundle url: want an https URL")
	}
	name := redactURL(u)
	if s.Size <= 0 {
		return fmt.Errorf("GET %s: bundle size %d", name, s.Size)
	}
	if off < 0 || off >= s.Size {
		return fmt.Errorf("GET %s: offset %d outside the bundle's %d bytes", name, off, s.Size)
	}
	client := s.Client
	if client == nil {
		client = NewHTTPClient(nil, nil)
		defer client.CloseIdleConnections()
	}
	idle := s.IdleTimeout
	if idle <= 0 {
		idle = DefaultIdleTimeout
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	// The timer runs only while waiting for the server (headers, then each
	// read), so slow disk writes do not count as a stall.
	timer := time.AfterFunc(idle, func() { cancel(errStalled) })
	defer timer.Stop()
	fail := func(err error) error {
		if errors.Is(context.Cause(ctx), errStalled) {
			return fmt.Errorf("GET %s: %w: no data for %s", name, errStalled, idle)
		}
		return fmt.Errorf("GET %s: %w", name, stripURLError(err))
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", name, stripURLError(err))
	}
	// Offsets count the bundle's own bytes, never a compressed encoding.
	req.Header.Set("Accept-Encoding", "identity")
	if off > 0 {
		req.Header.Set("Range", "bytes="+strconv.FormatInt(off, 10)+"-")
	}
	resp, err := client.Do(req)
	timer.Stop()
	if err != nil {
		return fail(err)
	}
	defer resp.Body.Close()

	var skip int64
	switch {
	case resp.StatusCode == http.StatusPartialContent && off > 0:
		if err := checkContentRange(resp.Header.Get("Content-Range"), off, s.Size); err != nil {
			return fmt.Errorf("GET %s: %w", name, err)
		}
	case resp.StatusCode == http.StatusOK:
		// A server that ignores Range sends it all: skip what is held.
		skip = off
	default:
		return fmt.Errorf("GET %s: %w", name, &HTTPStatusError{Code: resp.StatusCode})
	}
	remaining := s.Size - off
	if resp.ContentLength > skip+remaining {
		return fmt.Errorf("GET %s: %w: %d bytes from offset %d, the bundle has %d", name, ErrTooLarge, resp.ContentLength, off-skip, s.Size)
	}

	buf := make([]byte, 32<<10)
	for {
		timer.Reset(idle)
		n, rerr := resp.Body.Read(buf)
		timer.Stop()
		p := buf[:n]
		if skip > 0 {
			k := min(int64(len(p)), skip)
			skip -= k
			p = p[k:]
		}
		if int64(len(p)) > remaining {
			return fmt.Errorf("GET %s: %w: the server sent more than the bundle's %d bytes", name, ErrTooLarge, s.Size)
		}
		if len(p) > 0 {
			if _, err := w.Write(p); err != nil {
				return fmt.Errorf("GET %s: %w", name, err)
			}
			remaining -= int64(len(p))
		}
		if errors.Is(rerr, io.EOF) {
			if remaining > 0 || skip > 0 {
				return fmt.Errorf("GET %s: body ended %d bytes short: %w", name, remaining+skip, io.ErrUnexpectedEOF)
			}
			return nil
		}
		if rerr != nil {
			return fail(rerr)
		}
	}
}

// checkContentRange accepts "bytes off-end/total" (total may be "*").
func checkContentRange(v string, off, size int64) error {
	rest, ok := strings.CutPrefix(v, "bytes ")
	rng, total, ok2 := strings.Cut(rest, "/")
	first, last, ok3 := strings.Cut(rng, "-")
	start, err1 := strconv.ParseInt(first, 10, 64)
	end, err2 := strconv.ParseInt(last, 10, 64)
	if !ok || !ok2 || !ok3 || err1 != nil || err2 != nil || end < start {
		return fmt.Errorf("206 with Content-Range %.64q", v)
	}
	if start != off {
		return fmt.Errorf("206 for offset %d, asked for %d", start, off)
	}
	if total != "*" {
		t, err := strconv.ParseInt(total, 10, 64)
		if err != nil {
			return fmt.Errorf("206 with Content-Range %.64q", v)
		}
		if t != size {
			return fmt.Errorf("%w: the server's file has %d bytes, the bundle %d", ErrCorrupt, t, size)
		}
	}
	if end >= size {
		return fmt.Errorf("%w: 206 up to byte %d, the bundle has %d", ErrTooLarge, end, size)
	}
	return nil
}

// stripURLError drops the *url.Error around a client error: its URL (the
// request's or a redirect's target) may carry a token in its query, and
// the caller names the URL itself.
func stripURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// NewHTTPClient returns a client for bundle downloads: TLS roots from
// rootCAs (nil: the system's), redirects followed only to https and at most
// 5, timeouts on connect (10 s), the TLS handshake (10 s) and the response
// headers (30 s) but none on the body (large bundles on slow links: see
// HTTPSource.IdleTimeout). When checkAddr is non-nil it checks every IP
// address dialed, in the dialer's Control hook, so a name that resolves
// (or rebinds) to a refused address cannot reach it; proxies from the
// environment are then not used, since a proxy would dial for us.
func NewHTTPClient(rootCAs *x509.CertPool, checkAddr func(net.IP) error) *http.Client {
	dialer := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	proxy := http.ProxyFromEnvironment
	if checkAddr != nil {
		proxy = nil
		dialer.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil {
				return fmt.Errorf("dial %s: %w", address, err)
			}
			ip := net.IP(ap.Addr().Unmap().WithZone("").AsSlice())
			if err := checkAddr(ip); err != nil {
				return fmt.Errorf("dial %s refused: %w", ip, err)
			}
			return nil
		}
	}
	tr := &http.Transport{
		Proxy:                 proxy,
		DialContext:           dialer.DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: rootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
		MaxIdleConns:          2,
		DisableCompression:    true,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport: tr,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) > maxRedirects { // via holds the first request too
				return fmt.Errorf("stopped after %d redirects", maxRedirects)
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("redirect to %s refused: not https", redactURL(req.URL))
			}
			return nil
		},
	}
}

// HTTPStatusError is a bundle server's answer other than 200 or 206.
type HTTPStatusError struct{ Code int }

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("status %d %s", e.Code, http.StatusText(e.Code))
}

// Permanent reports whether asking again cannot help: a client error other
// than a timeout or a rate limit (404, 403, 410...).
func (e *HTTPStatusError) Permanent() bool {
	return e.Code >= 400 && e.Code < 500 && e.Code != http.StatusRequestTimeout && e.Code != http.StatusTooManyRequests
}
