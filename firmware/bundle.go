package firmware

import (
	"archive/tar"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"
)

// Why a bundle is refused. Every error Verify and Extract return for a bad
// bundle wraps exactly one of these, so callers report with errors.Is.
var (
	ErrSignature  = errors.New("bad or missing signature")
	ErrUnknownKey = errors.New("signed by an unknown key")
	ErrTarget     = errors.New("built for another target")
	ErrDowngrade  = errors.New("not newer than the installed version")
	ErrCorrupt    = errors.New("corrupt or truncated bundle")
	ErrTooLarge   = errors.New("bundle larger than the limit")
)

// Entry names inside the bundle.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
	FilesDir      = "files/"
)

// MaxManifestSize bounds the manifest entry.
const MaxManifestSize = 1 << 20

// DefaultLimit is the bundle size limit used when the caller passes 0.
const DefaultLimit = 512 << 20

// Target is what the device runs and accepts.
type Target struct {
	OS, Arch, Flavor string
	// CurrentVersion is the installed version; empty skips the version
	// check (a first install). A bundle must be newer unless
	// AllowDowngrade; the same version is refused as already installed.
	CurrentVersion string
	AllowDowngrade bool
}

func refuse(kind error, format string, a ...any) error {
	return fmt.Errorf("firmware: %w: %s", kind, fmt.Sprintf(format, a...))
}

// Sign writes a bundle to w: manifest.json, manifest.sig, then each file
// under files/. files maps the path in the bundle (relative to files/) to
// the local file to read. Sign fills m.Files (sizes, hashes and modes from
// the local files), m.KeyID, m.Format, m.Product and, when zero, m.Created.
func Sign(w io.Writer, priv ed25519.PrivateKey, m Manifest, files map[string]string) error {
	if len(priv) != ed25519.PrivateKeySize {
		return errors.New("firmware: sign: bad private key")
	}
	m.Format, m.Product = Format, Product
	m.KeyID = KeyID(priv.Public().(ed25519.PublicKey))
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	m.Created = m.Created.UTC().Truncate(time.Second)
	m.Files = nil
	paths := make([]string, 0, len(files))
	for p := range files {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, p := range paths {
		f, err := hashFile(files[p])
		if err != nil {
			return fmt.Errorf("firmware: sign: %w", err)
		}
		f.Path = p
		m.Files = append(m.Files, f)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	data, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	data = append(data, '\n')
	sig := ed25519.Sign(priv, data)

	tw := tar.NewWriter(w)
	hdr := func(name string, size int64, mode int64) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeReg, Name: name, Size: size, Mode: mode, ModTime: m.Created}
	}
	if err := tw.WriteHeader(hdr(ManifestName, int64(len(data)), 0o644)); err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	if _, err := tw.Write(data); err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	if err := tw.WriteHeader(hdr(SignatureName, int64(len(sig)), 0o644)); err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	if _, err := tw.Write(sig); err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	for _, f := range m.Files {
		perm, _ := f.Perm()
		if err := tw.WriteHeader(hdr(FilesDir+f.Path, f.Size, int64(perm))); err != nil {
			return fmt.Errorf("firmware: sign: %w", err)
		}
		if err := copyChecked(tw, files[f.Path], f); err != nil {
			return fmt.Errorf("firmware: sign: %w", err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("firmware: sign: %w", err)
	}
	return nil
}

func hashFile(local string) (File, error) {
	fh, err := os.Open(local)
	if err != nil {
		return File{}, err
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return File{}, err
	}
	if !st.Mode().IsRegular() {
		return File{}, fmt.Errorf("%s: not a regular file", local)
	}
	h := sha256.New()
	n, err := io.Copy(h, fh)
	if err != nil {
		return File{}, err
	}
	return File{SHA256: hex.EncodeToString(h.Sum(nil)), Size: n, Mode: fmt.Sprintf("%04o", st.Mode().Perm())}, nil
}

// copyChecked copies the local file into the bundle, refusing it when it
// changed since it was hashed.
func copyChecked(w io.Writer, local string, f File) error {
	fh, err := os.Open(local)
	if err != nil {
		return err
	}
	defer fh.Close()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(w, h), io.LimitReader(fh, f.Size))
	if err != nil {
		return err
	}
	if n != f.Size || hex.EncodeToString(h.Sum(nil)) != f.SHA256 {
		return fmt.Errorf("%s changed while signing", local)
	}
	return nil
}

// Verify reads a bundle once, from the start, and returns its manifest if
// the bundle is sound: the signature is checked against the trusted keys
// before anything in the manifest is believed, then the target and the
// version, then every payload file's size and SHA-256 as it streams by.
// limit bounds the bundle's size in bytes (0: DefaultLimit); it is enforced
// while reading. Nothing is written anywhere.
func Verify(r io.Reader, kr *Keyring, want Target, limit int64) (*Manifest, error) {
	return process(r, kr, want, limit, nil)
}

// Extract verifies like Verify while writing the payload into a new
// temporary directory next to dir, and renames that directory to dir only
// when everything verified. dir must not exist yet; on any error nothing
// is left behind.
func Extract(r io.Reader, kr *Keyring, want Target, limit int64, dir string) (*Manifest, error) {
	return extract(r, kr, want, limit, dir, false)
}

// extract is Extract; keep also stores the signed manifest and its
// signature in dir (SlotManifest, SlotSignature), so a slot can be
// verified again before each run (Slots.Verify).
func extract(r io.Reader, kr *Keyring, want Target, limit int64, dir string, keep bool) (m *Manifest, err error) {
	if dir == "" {
		return nil, errors.New("firmware: extract: no directory")
	}
	dir = strings.TrimRight(dir, string(os.PathSeparator))
	if _, err := os.Lstat(dir); err == nil {
		return nil, fmt.Errorf("firmware: extract: %s already exists", dir)
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("firmware: extract: %w", err)
	}
	parent, base := splitDir(dir)
	tmp, err := os.MkdirTemp(parent, "."+base+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("firmware: extract: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(tmp)
		}
	}()
	m, err = process(r, kr, want, limit, &extractor{root: tmp, keep: keep})
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("firmware: extract: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("firmware: extract: %w", err)
	}
	if d, err := os.Open(parent); err == nil {
		d.Sync()
		d.Close()
	}
	return m, nil
}

func splitDir(dir string) (parent, base string) {
	i := strings.LastIndexByte(dir, os.PathSeparator)
	if i < 0 {
		return ".", dir
	}
	if i == 0 {
		return string(os.PathSeparator), dir[1:]
	}
	return dir[:i], dir[i+1:]
}

// limitedReader counts what it reads and fails with ErrTooLarge as soon as
// the stream goes past the limit. It also notes a clean end of stream, so
// a bundle cut just before its end-of-archive blocks is caught.
type limitedReader struct {
	r         io.Reader
	remaining int64
	zeroEOF   bool // the last read returned 0 bytes and io.EOF
}

func (l *limitedReader) Read(p []byte) (int, error) {
	if l.remaining <= 0 {
		var one [1]byte
		n, err := io.ReadFull(l.r, one[:])
		if n > 0 {
			return 0, ErrTooLarge
		}
		if errors.Is(err, io.EOF) {
			l.zeroEOF = true
			return 0, io.EOF
		}
		return 0, err
	}
	if int64(len(p)) > l.remaining {
		p = p[:l.remaining]
	}
	n, err := l.r.Read(p)
	l.remaining -= int64(n)
	l.zeroEOF = n == 0 && errors.Is(err, io.EOF)
	return n, err
}

// sink receives the payload files during verification.
type sink interface {
	create(f File, perm uint32) (io.WriteCloser, error)
	// signed receives the manifest's bytes and signature once they verified.
	signed(manifest, sig []byte) error
}

func process(r io.Reader, kr *Keyring, want Target, limit int64, out sink) (*Manifest, error) {
	if kr.Len() == 0 {
		return nil, refuse(ErrUnknownKey, "no trusted keys")
	}
	if want.OS == "" || want.Arch == "" || want.Flavor == "" {
		return nil, errors.New("firmware: target os, arch and flavor must be set")
	}
	var current Version
	if want.CurrentVersion != "" {
		v, err := ParseVersion(strings.TrimPrefix(want.CurrentVersion, "v"))
		if err != nil {
			return nil, fmt.Errorf("firmware: current %w", err)
		}
		current = v
	}
	if limit <= 0 {
		limit = DefaultLimit
	}
	lr := &limitedReader{r: r, remaining: limit}
	tr := tar.NewReader(lr)
	// readErr classifies an error of the tar reader.
	readErr := func(what string, err error) error {
		if errors.Is(err, ErrTooLarge) {
			return refuse(ErrTooLarge, "more than %d bytes", limit)
		}
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("firmware: %w: %s: %w", ErrCorrupt, what, err)
	}
	next := func(what string) (*tar.Header, error) {
		h, err := tr.Next()
		if err != nil {
			return nil, err
		}
		if h.Typeflag != tar.TypeReg {
			return nil, refuse(ErrCorrupt, "%s: entry %q is not a regular file (type %q)", what, h.Name, h.Typeflag)
		}
		for k := range h.PAXRecords {
			if strings.HasPrefix(k, "GNU.sparse") {
				return nil, refuse(ErrCorrupt, "%s: entry %q is a sparse file", what, h.Name)
			}
		}
		if h.Size < 0 || h.Mode&^0o777 != 0 {
			return nil, refuse(ErrCorrupt, "%s: entry %q has a bad size or mode", what, h.Name)
		}
		if h.Size > lr.remaining {
			return nil, refuse(ErrTooLarge, "entry %q of %d bytes goes past the limit of %d bytes", h.Name, h.Size, limit)
		}
		return h, nil
	}

	// 1. The manifest, unverified bytes.
	h, err := next("manifest")
	if err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, readErr("manifest", err)
	}
	if h.Name != ManifestName {
		return nil, refuse(ErrCorrupt, "first entry is %q, want %q", h.Name, ManifestName)
	}
	if h.Size > MaxManifestSize {
		return nil, refuse(ErrCorrupt, "manifest of %d bytes is over %d", h.Size, MaxManifestSize)
	}
	data := make([]byte, h.Size)
	if _, err := io.ReadFull(tr, data); err != nil {
		return nil, readErr("manifest", err)
	}

	// 2. The signature, checked before the manifest is believed.
	h, err = next("signature")
	if errors.Is(err, io.EOF) {
		return nil, refuse(ErrSignature, "%s is missing", SignatureName)
	}
	if err != nil {
		if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
			return nil, err
		}
		return nil, readErr("signature", err)
	}
	if h.Name != SignatureName {
		return nil, refuse(ErrSignature, "%s is missing (second entry is %q)", SignatureName, h.Name)
	}
	if h.Size != ed25519.SignatureSize {
		return nil, refuse(ErrSignature, "%s is %d bytes, want %d", SignatureName, h.Size, ed25519.SignatureSize)
	}
	sig := make([]byte, ed25519.SignatureSize)
	if _, err := io.ReadFull(tr, sig); err != nil {
		return nil, readErr("signature", err)
	}
	m, err := checkSigned(kr, data, sig)
	if err != nil {
		return nil, err
	}
	if out != nil {
		if err := out.signed(data, sig); err != nil {
			return nil, fmt.Errorf("firmware: extract manifest: %w", err)
		}
	}

	// 3. Target and version, before reading the payload.
	if m.OS != want.OS || m.Arch != want.Arch || m.Flavor != want.Flavor {
		return nil, refuse(ErrTarget, "bundle is for %s/%s %s, this is %s/%s %s", m.OS, m.Arch, m.Flavor, want.OS, want.Arch, want.Flavor)
	}
	if want.CurrentVersion != "" && !want.AllowDowngrade {
		v, _ := ParseVersion(m.Version) // validated
		switch c := v.Compare(current); {
		case c == 0:
			return nil, refuse(ErrDowngrade, "version %s is already installed", m.Version)
		case c < 0:
			return nil, refuse(ErrDowngrade, "version %s is older than the installed %s (downgrade not allowed)", m.Version, want.CurrentVersion)
		}
	}
	var total int64
	for _, f := range m.Files {
		total += f.Size
		if total > lr.remaining || total < 0 {
			return nil, refuse(ErrTooLarge, "payload of the manifest goes past the limit of %d bytes", limit)
		}
	}

	// 4. The payload, each file hashed as it streams by.
	byPath := make(map[string]File, len(m.Files))
	for _, f := range m.Files {
		byPath[f.Path] = f
	}
	seen := make(map[string]bool, len(m.Files))
	for {
		h, err := next("payload")
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			if errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) {
				return nil, err
			}
			return nil, readErr("payload", err)
		}
		rel, ok := strings.CutPrefix(h.Name, FilesDir)
		if !ok || validPath(rel) != nil {
			return nil, refuse(ErrCorrupt, "unexpected entry %q", h.Name)
		}
		f, ok := byPath[rel]
		if !ok {
			return nil, refuse(ErrCorrupt, "entry %q is not in the manifest", h.Name)
		}
		if seen[rel] {
			return nil, refuse(ErrCorrupt, "entry %q appears twice", h.Name)
		}
		seen[rel] = true
		perm, _ := f.Perm()
		if h.Size != f.Size {
			return nil, refuse(ErrCorrupt, "%s: %d bytes, manifest says %d", h.Name, h.Size, f.Size)
		}
		if uint32(h.Mode) != perm {
			return nil, refuse(ErrCorrupt, "%s: mode %04o, manifest says %s", h.Name, h.Mode, f.Mode)
		}
		var w io.WriteCloser
		if out != nil {
			if w, err = out.create(f, perm); err != nil {
				return nil, fmt.Errorf("firmware: extract %s: %w", f.Path, err)
			}
		}
		hash := sha256.New()
		dst := io.Writer(hash)
		if w != nil {
			dst = io.MultiWriter(hash, w)
		}
		n, err := io.Copy(dst, tr)
		if w != nil {
			if cerr := w.Close(); err == nil && cerr != nil {
				return nil, fmt.Errorf("firmware: extract %s: %w", f.Path, cerr)
			}
		}
		if err != nil {
			var we *writeError
			if errors.As(err, &we) {
				return nil, fmt.Errorf("firmware: extract %s: %w", f.Path, we.err)
			}
			return nil, readErr(h.Name, err)
		}
		if n != f.Size {
			return nil, refuse(ErrCorrupt, "%s: truncated", h.Name)
		}
		if got := hex.EncodeToString(hash.Sum(nil)); got != f.SHA256 {
			return nil, refuse(ErrCorrupt, "%s: sha256 %s, manifest says %s", h.Name, got, f.SHA256)
		}
	}
	if lr.zeroEOF {
		return nil, refuse(ErrCorrupt, "truncated: the end-of-archive marker is missing")
	}
	for _, f := range m.Files {
		if !seen[f.Path] {
			return nil, refuse(ErrCorrupt, "file %q of the manifest is missing", f.Path)
		}
	}
	return m, nil
}

// checkSigned checks sig over the manifest bytes against the trusted keys
// before anything in them is believed, then decodes the manifest.
func checkSigned(kr *Keyring, data, sig []byte) (*Manifest, error) {
	signer := ""
	for _, id := range kr.IDs() {
		if ed25519.Verify(kr.keys[id], data, sig) {
			signer = id
			break
		}
	}
	if signer == "" {
		// Only to word the refusal: which key does it claim?
		var peek struct {
			KeyID string `json:"key_id"`
		}
		if json.Unmarshal(data, &peek) == nil && peek.KeyID != "" {
			if _, ok := kr.keys[peek.KeyID]; !ok {
				return nil, refuse(ErrUnknownKey, "key %q is not among the trusted keys %s", peek.KeyID, strings.Join(kr.IDs(), ", "))
			}
		}
		return nil, refuse(ErrSignature, "the signature does not match the manifest for any trusted key")
	}
	m, err := decodeManifest(data)
	if err != nil {
		return nil, refuse(ErrCorrupt, "%v", err)
	}
	if m.KeyID != signer {
		return nil, refuse(ErrSignature, "manifest names key %s but was signed by %s", m.KeyID, signer)
	}
	return m, nil
}

// writeError marks a failure of the local disk, not of the bundle.
type writeError struct{ err error }

func (e *writeError) Error() string { return e.err.Error() }

type extractor struct {
	root string
	keep bool // store the signed manifest too
}

func (x *extractor) signed(manifest, sig []byte) error {
	if !x.keep {
		return nil
	}
	for name, data := range map[string][]byte{SlotManifest: manifest, SlotSignature: sig} {
		fh, err := os.OpenFile(x.root+string(os.PathSeparator)+name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return err
		}
		w := extractFile{fh}
		_, err = w.Write(data)
		if cerr := w.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type extractFile struct{ f *os.File }

func (e extractFile) Write(p []byte) (int, error) {
	n, err := e.f.Write(p)
	if err != nil {
		err = &writeError{err}
	}
	return n, err
}

func (e extractFile) Close() error {
	err := e.f.Sync()
	if cerr := e.f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (x *extractor) create(f File, perm uint32) (io.WriteCloser, error) {
	// f.Path was validated: clean, relative, no "..".
	p := x.root + string(os.PathSeparator) + strings.ReplaceAll(f.Path, "/", string(os.PathSeparator))
	if i := strings.LastIndexByte(p, os.PathSeparator); i > len(x.root) {
		if err := os.MkdirAll(p[:i], 0o755); err != nil {
			return nil, err
		}
	}
	fh, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, err
	}
	if err := fh.Chmod(os.FileMode(perm)); err != nil {
		fh.Close()
		return nil, err
	}
	return extractFile{fh}, nil
}
