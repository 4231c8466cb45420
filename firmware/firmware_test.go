package firmware

import (
	"archive/tar"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

var (
	keyA    = testKey(1)
	keyB    = testKey(2) // trusted too
	keyEvil = testKey(3) // not trusted
	trusted = NewKeyring(keyA.Public().(ed25519.PublicKey), keyB.Public().(ed25519.PublicKey))
	target  = Target{OS: "linux", Arch: "amd64", Flavor: "cpu", CurrentVersion: "1.2.2"}
)

func testManifest(version string) Manifest {
	return Manifest{Version: version, OS: "linux", Arch: "amd64", Flavor: "cpu", MinConfigVersion: 3,
		Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
}

// payload is the default set of files: bundle path -> content.
func payload(tag string) map[string][]byte {
	return map[string][]byte{
		"streamqc":         []byte(strings.Repeat("BINARY-"+tag+"-", 300)),
		"share/readme.txt": []byte("readme " + tag + "\n"),
	}
}

// makeBundle signs files with priv through Sign, from real local files.
func makeBundle(t testing.TB, priv ed25519.PrivateKey, m Manifest, files map[string][]byte) []byte {
	t.Helper()
	dir := t.TempDir()
	local := map[string]string{}
	i := 0
	for p, data := range files {
		i++
		lp := filepath.Join(dir, fmt.Sprint(i))
		if err := os.WriteFile(lp, data, 0o644); err != nil {
			t.Fatal(err)
		}
		if p == "streamqc" {
			os.Chmod(lp, 0o755)
		}
		local[p] = lp
	}
	var buf bytes.Buffer
	if err := Sign(&buf, priv, m, local); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

type entry struct {
	name     string
	data     []byte
	typeflag byte
	mode     int64
	link     string
}

// entries lists a bundle's entries, with their data.
func entries(t testing.TB, bundle []byte) []entry {
	t.Helper()
	tr := tar.NewReader(bytes.NewReader(bundle))
	var es []entry
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return es
		}
		if err != nil {
			t.Fatal(err)
		}
		data, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		es = append(es, entry{name: h.Name, data: data, typeflag: h.Typeflag, mode: h.Mode})
	}
}

// build writes entries as a tar, as an attacker could.
func build(t testing.TB, es []entry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range es {
		tf := e.typeflag
		if tf == 0 {
			tf = tar.TypeReg
		}
		mode := e.mode
		if mode == 0 {
			mode = 0o644
		}
		h := &tar.Header{Name: e.name, Typeflag: tf, Mode: mode, Linkname: e.link, ModTime: time.Unix(0, 0)}
		if tf == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if tf == tar.TypeReg {
			if _, err := tw.Write(e.data); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// resign replaces the manifest of a bundle's entries with edit(manifest),
// signed by priv.
func resign(t testing.TB, es []entry, priv ed25519.PrivateKey, edit func(map[string]any)) []entry {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(es[0].data, &m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]entry(nil), es...)
	out[0].data = data
	out[1].data = ed25519.Sign(priv, data)
	return out
}

func TestFirmwareGoodBundle(t *testing.T) {
	files := payload("A")
	bundle := makeBundle(t, keyA, testManifest("1.2.3"), files)
	m, err := Verify(bytes.NewReader(bundle), trusted, target, int64(len(bundle)))
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.2.3" || m.KeyID != KeyID(keyA.Public().(ed25519.PublicKey)) || len(m.Files) != 2 || m.MinConfigVersion != 3 {
		t.Fatalf("manifest %+v", m)
	}
	es := entries(t, bundle)
	if len(es) != 4 || es[0].name != ManifestName || es[1].name != SignatureName || len(es[1].data) != 64 {
		t.Fatalf("layout %v", es)
	}
	for _, e := range es[2:] {
		if !strings.HasPrefix(e.name, FilesDir) {
			t.Fatalf("entry %q", e.name)
		}
	}

	parent := t.TempDir()
	dir := filepath.Join(parent, "slot")
	m, err = Extract(bytes.NewReader(bundle), trusted, target, 0, dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Version != "1.2.3" || len(m.Files) != 2 {
		t.Fatalf("extracted manifest %+v", m)
	}
	for p, want := range files {
		got, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s: %v, %d bytes", p, err, len(got))
		}
	}
	st, err := os.Stat(filepath.Join(dir, "streamqc"))
	if err != nil || st.Mode().Perm() != 0o755 {
		t.Fatalf("mode %v %v", st.Mode(), err)
	}
	if names := dirNames(t, parent); len(names) != 1 || names[0] != "slot" {
		t.Fatalf("parent holds %v", names)
	}
	// An existing directory is not overwritten.
	if _, err := Extract(bytes.NewReader(bundle), trusted, target, 0, dir); err == nil {
		t.Fatal("extracted over an existing directory")
	}
}

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range des {
		names = append(names, d.Name())
	}
	return names
}

func TestFirmwareRefused(t *testing.T) {
	good := makeBundle(t, keyA, testManifest("1.2.3"), payload("A"))
	goodEs := entries(t, good)
	otherRelease := makeBundle(t, keyB, testManifest("1.2.4"), payload("B"))
	otherEs := entries(t, otherRelease)
	evil := makeBundle(t, keyEvil, testManifest("1.2.3"), payload("A"))

	with := func(f func(es []entry) []entry) []byte {
		es := append([]entry(nil), goodEs...)
		return build(t, f(es))
	}
	flip := func(b []byte, marker string) []byte {
		i := bytes.Index(b, []byte(marker))
		if i < 0 {
			t.Fatalf("no %q", marker)
		}
		out := bytes.Clone(b)
		out[i] ^= 1
		return out
	}
	replace := func(b []byte, old, new string) []byte {
		if !bytes.Contains(b, []byte(old)) {
			t.Fatalf("no %q", old)
		}
		return bytes.Replace(bytes.Clone(b), []byte(old), []byte(new), 1)
	}
	var pathIdx, streamqcIdx int // entries' indexes in goodEs
	for i, e := range goodEs {
		switch e.name {
		case "files/share/readme.txt":
			pathIdx = i
		case "files/streamqc":
			streamqcIdx = i
		}
	}

	tests := []struct {
		name   string
		bundle []byte
		want   Target
		limit  int64
		err    error
	}{
		{name: "tampered payload byte", bundle: flip(good, "BINARY-A-BINARY"), err: ErrCorrupt},
		{name: "manifest version bumped", bundle: replace(good, `"version": "1.2.3"`, `"version": "1.2.4"`), err: ErrSignature},
		{name: "manifest edited longer", bundle: with(func(es []entry) []entry {
			es[0].data = bytes.Replace(es[0].data, []byte(`"1.2.3"`), []byte(`"1.20.3"`), 1)
			return es
		}), err: ErrSignature},
		{name: "signature bit flipped", bundle: with(func(es []entry) []entry {
			es[1].data = bytes.Clone(es[1].data)
			es[1].data[10] ^= 0x80
			return es
		}), err: ErrSignature},
		{name: "signature missing", bundle: with(func(es []entry) []entry { return append(es[:1:1], es[2:]...) }), err: ErrSignature},
		{name: "signature short", bundle: with(func(es []entry) []entry { es[1].data = es[1].data[:63]; return es }), err: ErrSignature},
		{name: "signature only manifest", bundle: with(func(es []entry) []entry { return es[:1] }), err: ErrSignature},
		{name: "signed by untrusted key", bundle: evil, err: ErrUnknownKey},
		{name: "key_id of another trusted key", bundle: build(t, resign(t, goodEs, keyA, func(m map[string]any) {
			m["key_id"] = KeyID(keyB.Public().(ed25519.PublicKey))
		})), err: ErrSignature},
		{name: "manifest of A, payload of B", bundle: with(func(es []entry) []entry { return append(es[:2:2], otherEs[2:]...) }), err: ErrCorrupt},
		{name: "manifest of B, payload of A", bundle: build(t, append(otherEs[:2:2], goodEs[2:]...)), want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu"}, err: ErrCorrupt},
		{name: "extra payload entry", bundle: with(func(es []entry) []entry { return append(es, entry{name: "files/extra", data: []byte("x")}) }), err: ErrCorrupt},
		{name: "extra top-level entry", bundle: with(func(es []entry) []entry { return append(es, entry{name: "README", data: []byte("x")}) }), err: ErrCorrupt},
		{name: "missing file", bundle: with(func(es []entry) []entry { return append(es[:pathIdx:pathIdx], es[pathIdx+1:]...) }), err: ErrCorrupt},
		{name: "duplicate file", bundle: with(func(es []entry) []entry { return append(es, es[streamqcIdx]) }), err: ErrCorrupt},
		{name: "path traversal", bundle: with(func(es []entry) []entry {
			es[streamqcIdx].name = "files/../streamqc"
			return es
		}), err: ErrCorrupt},
		{name: "absolute path", bundle: with(func(es []entry) []entry { es[streamqcIdx].name = "/files/streamqc"; return es }), err: ErrCorrupt},
		{name: "symlink entry", bundle: with(func(es []entry) []entry {
			es[streamqcIdx] = entry{name: "files/streamqc", typeflag: tar.TypeSymlink, link: "/bin/sh", mode: 0o755}
			return es
		}), err: ErrCorrupt},
		{name: "directory entry", bundle: with(func(es []entry) []entry {
			return append(es, entry{name: "files/share/", typeflag: tar.TypeDir, mode: 0o755})
		}), err: ErrCorrupt},
		{name: "setuid mode", bundle: with(func(es []entry) []entry { es[streamqcIdx].mode = 0o4755; return es }), err: ErrCorrupt},
		{name: "mode differs from manifest", bundle: with(func(es []entry) []entry { es[streamqcIdx].mode = 0o777; return es }), err: ErrCorrupt},
		{name: "manifest not first", bundle: with(func(es []entry) []entry { return append([]entry{es[streamqcIdx]}, es...) }), err: ErrCorrupt},
		{name: "unknown manifest field", bundle: build(t, resign(t, goodEs, keyA, func(m map[string]any) { m["extra"] = 1 })), err: ErrCorrupt},
		{name: "manifest traversal path", bundle: build(t, resign(t, goodEs, keyA, func(m map[string]any) {
			m["files"].([]any)[0].(map[string]any)["path"] = "../x"
		})), err: ErrCorrupt},
		{name: "wrong arch", bundle: good, want: Target{OS: "linux", Arch: "arm64", Flavor: "cpu"}, err: ErrTarget},
		{name: "wrong flavor", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cuda"}, err: ErrTarget},
		{name: "wrong os", bundle: good, want: Target{OS: "windows", Arch: "amd64", Flavor: "cpu"}, err: ErrTarget},
		{name: "older version", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu", CurrentVersion: "1.10.0"}, err: ErrDowngrade},
		{name: "equal version", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu", CurrentVersion: "1.2.3"}, err: ErrDowngrade},
		{name: "release over its pre-release", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu", CurrentVersion: "v1.2.3-rc.1"}},
		{name: "older allowed", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu", CurrentVersion: "2.0.0", AllowDowngrade: true}},
		{name: "equal allowed", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu", CurrentVersion: "1.2.3", AllowDowngrade: true}},
		{name: "first install", bundle: good, want: Target{OS: "linux", Arch: "amd64", Flavor: "cpu"}},
		{name: "over the limit", bundle: good, limit: int64(len(good)) - 1, err: ErrTooLarge},
		{name: "manifest over a small limit", bundle: good, limit: 700, err: ErrTooLarge},
		{name: "exactly the limit", bundle: good, limit: int64(len(good))},
		{name: "empty", bundle: nil, err: ErrCorrupt},
		{name: "garbage", bundle: bytes.Repeat([]byte("garbage!"), 200), err: ErrCorrupt},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.want
			if want.OS == "" {
				want = target
			}
			limit := tc.limit
			if limit == 0 {
				limit = 1 << 20
			}
			cr := &countingReader{r: bytes.NewReader(tc.bundle)}
			_, err := Verify(cr, trusted, want, limit)
			check(t, "verify", err, tc.err)
			if cr.n > limit+512 {
				t.Errorf("read %d bytes with a limit of %d", cr.n, limit)
			}
			parent := t.TempDir()
			_, err = Extract(bytes.NewReader(tc.bundle), trusted, want, limit, filepath.Join(parent, "slot"))
			check(t, "extract", err, tc.err)
			if names := dirNames(t, parent); tc.err != nil && len(names) != 0 {
				t.Errorf("extract left %v behind", names)
			}
		})
	}
}

func check(t *testing.T, what string, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Errorf("%s: %v", what, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s: got %v, want %v", what, err, want)
	}
	if err != nil {
		n := 0
		for _, k := range []error{ErrSignature, ErrUnknownKey, ErrTarget, ErrDowngrade, ErrCorrupt, ErrTooLarge} {
			if errors.Is(err, k) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s: %v matches %d kinds", what, err, n)
		}
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// TestFirmwareTooLargeStreams feeds an endless stream: the limit must stop
// it, not memory.
func TestFirmwareTooLargeStreams(t *testing.T) {
	es := entries(t, makeBundle(t, keyA, testManifest("1.2.3"), payload("A")))
	// A header claiming a huge file: refused from the header alone.
	huge := build(t, es[:2])
	huge = huge[:len(huge)-1024] // drop the end-of-archive marker
	var hb bytes.Buffer
	tw := tar.NewWriter(&hb)
	tw.WriteHeader(&tar.Header{Name: "files/streamqc", Typeflag: tar.TypeReg, Size: 1 << 32, Mode: 0o755})
	hdr := hb.Bytes()[:512]
	cr := &countingReader{r: io.MultiReader(bytes.NewReader(huge), bytes.NewReader(hdr), zeroReader{})}
	_, err := Verify(cr, trusted, target, 1<<20)
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v", err)
	}
	if cr.n > 1<<20+512 {
		t.Fatalf("read %d bytes", cr.n)
	}
	// An endless stream of small valid-looking entries.
	cr = &countingReader{r: zeroReader{}}
	if _, err := Verify(cr, trusted, target, 4096); err == nil {
		t.Fatal("accepted zeros")
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestFirmwareTruncated(t *testing.T) {
	bundle := makeBundle(t, keyA, testManifest("1.2.3"), payload("A"))
	es := entries(t, bundle)
	mi := bytes.Index(bundle, es[0].data)
	si := bytes.Index(bundle, es[1].data)
	pi := bytes.Index(bundle, []byte("BINARY-A"))
	named := map[int]string{0: "empty", mi + 10: "inside manifest", si + 5: "inside signature", pi + 100: "inside payload",
		len(bundle) - 1024: "before end marker", len(bundle) - 512: "inside end marker", len(bundle) - 1: "last byte"}
	for cut := 0; cut < len(bundle); cut++ {
		_, err := Verify(bytes.NewReader(bundle[:cut]), trusted, target, 0)
		if err == nil {
			t.Fatalf("cut at %d of %d verified", cut, len(bundle))
		}
		if name, ok := named[cut]; ok || cut%61 == 0 {
			parent := t.TempDir()
			if _, err := Extract(bytes.NewReader(bundle[:cut]), trusted, target, 0, filepath.Join(parent, "slot")); err == nil {
				t.Fatalf("cut at %d (%s) extracted", cut, name)
			}
			if names := dirNames(t, parent); len(names) != 0 {
				t.Fatalf("cut at %d (%s): left %v", cut, name, names)
			}
		}
	}
	// A reader that returns its last bytes together with io.EOF.
	if _, err := Verify(&eofReader{bundle}, trusted, target, 0); err != nil {
		t.Fatal(err)
	}
}

type eofReader struct{ b []byte }

func (r *eofReader) Read(p []byte) (int, error) {
	n := copy(p, r.b)
	r.b = r.b[n:]
	if len(r.b) == 0 {
		return n, io.EOF
	}
	return n, nil
}

func TestFirmwareVersionCompare(t *testing.T) {
	order := []string{"0.0.1", "0.9.0", "1.0.0-0.3.7", "1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta",
		"1.0.0-beta.2", "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.2.0", "1.10.0", "2.0.0"}
	for i := range order {
		for j := range order {
			a, err := ParseVersion(order[i])
			if err != nil {
				t.Fatal(err)
			}
			b, _ := ParseVersion(order[j])
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := a.Compare(b); got != want {
				t.Errorf("%s vs %s: %d, want %d", order[i], order[j], got, want)
			}
		}
	}
	a, _ := ParseVersion("1.0.0+a")
	b, _ := ParseVersion("1.0.0+b")
	if a.Compare(b) != 0 || a.String() != "1.0.0+a" {
		t.Error("build metadata")
	}
	for _, bad := range []string{"", "1", "1.2", "v1.2.3", "01.2.3", "1.2.3-", "1.2.3-01", "1.2.3-a..b", "1.2.3+", "1.2.x", "1.2.3.4", "-1.2.3", "1.2.3-a_b"} {
		if _, err := ParseVersion(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

func TestFirmwareKeys(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.key"), filepath.Join(dir, "k.pub")
	if err := GenerateKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(priv); st.Mode().Perm() != 0o600 {
		t.Fatalf("private key mode %v", st.Mode())
	}
	if err := GenerateKey(priv, filepath.Join(dir, "other.pub")); err == nil {
		t.Fatal("overwrote the private key")
	}
	if err := GenerateKey(filepath.Join(dir, "other.key"), pub); err == nil {
		t.Fatal("overwrote the public key")
	}
	if _, err := os.Stat(filepath.Join(dir, "other.key")); err == nil {
		t.Fatal("left a key behind")
	}
	k, err := LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := LoadTrusted([]string{pub})
	if err != nil || kr.Len() != 1 || kr.IDs()[0] != KeyID(k.Public().(ed25519.PublicKey)) {
		t.Fatalf("%v %v", kr.IDs(), err)
	}
	bundle := makeBundle(t, k, testManifest("1.2.3"), payload("A"))
	if _, err := Verify(bytes.NewReader(bundle), kr, target, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTrusted(nil); err == nil {
		t.Fatal("empty keyring loaded")
	}
	if _, err := LoadTrusted([]string{priv}); err == nil {
		t.Fatal("private key loaded as public")
	}
	if _, err := LoadPrivateKey(pub); err == nil {
		t.Fatal("public key loaded as private")
	}
	if _, err := Verify(bytes.NewReader(bundle), NewKeyring(), target, 0); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("empty keyring: %v", err)
	}
	sum := sha256.Sum256(k.Public().(ed25519.PublicKey))
	if KeyID(k.Public().(ed25519.PublicKey)) != fmt.Sprintf("%x", sum[:8]) {
		t.Fatal("key id")
	}
}

func TestFirmwareSignRefuses(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "f")
	os.WriteFile(f, []byte("x"), 0o644)
	for name, tc := range map[string]struct {
		m     Manifest
		files map[string]string
	}{
		"bad version":  {testManifest("1.2"), map[string]string{"f": f}},
		"bad flavor":   {func() Manifest { m := testManifest("1.2.3"); m.Flavor = "gpu"; return m }(), map[string]string{"f": f}},
		"no files":     {testManifest("1.2.3"), nil},
		"bad path":     {testManifest("1.2.3"), map[string]string{"../f": f}},
		"missing file": {testManifest("1.2.3"), map[string]string{"f": filepath.Join(dir, "nope")}},
		"directory":    {testManifest("1.2.3"), map[string]string{"f": dir}},
		"file and dir": {testManifest("1.2.3"), map[string]string{"a": f, "a/b": f}},
	} {
		if err := Sign(io.Discard, keyA, tc.m, tc.files); err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

func FuzzFirmwareVerify(f *testing.F) {
	good := makeBundle(f, keyA, testManifest("1.2.3"), map[string][]byte{"streamqc": []byte("bin"), "a/b": []byte("c")})
	f.Add(good)
	f.Add(good[:700])
	f.Add(good[:len(good)-600])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0}, 1024))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Verify(bytes.NewReader(data), trusted, Target{OS: "linux", Arch: "amd64", Flavor: "cpu"}, 1<<16)
		if err == nil && m == nil {
			t.Fatal("nil manifest without error")
		}
		if err == nil && !bytes.Equal(data, good) {
			// Only the signed bundle (or an equivalent re-encoding of its
			// tar framing) may pass; its manifest must be the signed one.
			if m.Version != "1.2.3" {
				t.Fatalf("accepted %+v", m)
			}
		}
	})
}
