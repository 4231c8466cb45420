package firmware

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strconv"
	"strings"
	"time"
)

// Format is the manifest format this package reads and writes.
const Format = 1

// Product is the only product a manifest may name.
const Product = "streamqc"

// Flavors a bundle may be built for.
var Flavors = []string{"cpu", "cuda"}

// Manifest describes a bundle. Its exact bytes are what the Ed25519
// signature covers, and it lists the size and SHA-256 of every payload
// file, so the signature binds the payload too.
type Manifest struct {
	Format           int       `json:"format"`
	Product          string    `json:"product"`
	Version          string    `json:"version"`
	OS               string    `json:"os"`
	Arch             string    `json:"arch"`
	Flavor           string    `json:"flavor"`
	MinConfigVersion int64     `json:"min_config_version"`
	Created          time.Time `json:"created"`
	KeyID            string    `json:"key_id"`
	Files            []File    `json:"files"`
}

// File is one payload file: Path is relative to the bundle's files/
// directory (and to the extraction directory).
type File struct {
	Path   string `json:"path"`
	SHA256 string `json:"sha256"`
	Size   int64  `json:"size"`
	Mode   string `json:"mode"` // octal permission bits, e.g. "0755"
}

// Perm returns the file's permission bits.
func (f File) Perm() (uint32, error) {
	if len(f.Mode) != 4 || f.Mode[0] != '0' {
		return 0, fmt.Errorf("mode %q: want 4 octal digits such as \"0755\"", f.Mode)
	}
	n, err := strconv.ParseUint(f.Mode, 8, 32)
	if err != nil || n&^0o777 != 0 {
		return 0, fmt.Errorf("mode %q: want permission bits only (0000-0777)", f.Mode)
	}
	return uint32(n), nil
}

// decodeManifest decodes strictly: unknown fields, trailing data and
// invalid contents are refused.
func decodeManifest(data []byte) (*Manifest, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var m Manifest
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("manifest: trailing data after the JSON object")
	}
	if err := m.Validate(); err != nil {
		return nil, err
	}
	return &m, nil
}

// Validate checks every field of the manifest.
func (m *Manifest) Validate() error {
	if m.Format != Format {
		return fmt.Errorf("manifest: format %d, want %d", m.Format, Format)
	}
	if m.Product != Product {
		return fmt.Errorf("manifest: product %q, want %q", m.Product, Product)
	}
	if _, err := ParseVersion(m.Version); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if !isToken(m.OS) {
		return fmt.Errorf("manifest: bad os %q", m.OS)
	}
	if !isToken(m.Arch) {
		return fmt.Errorf("manifest: bad arch %q", m.Arch)
	}
	if !validFlavor(m.Flavor) {
		return fmt.Errorf("manifest: flavor %q, want one of %s", m.Flavor, strings.Join(Flavors, ", "))
	}
	if m.MinConfigVersion < 0 {
		return fmt.Errorf("manifest: negative min_config_version %d", m.MinConfigVersion)
	}
	if m.Created.IsZero() {
		return errors.New("manifest: created is missing")
	}
	if len(m.KeyID) != 16 || !isLowerHex(m.KeyID) {
		return fmt.Errorf("manifest: key_id %q: want 16 lower-case hex digits", m.KeyID)
	}
	if len(m.Files) == 0 {
		return errors.New("manifest: no files")
	}
	seen := make(map[string]bool, len(m.Files))
	for _, f := range m.Files {
		if err := validPath(f.Path); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		if seen[f.Path] {
			return fmt.Errorf("manifest: file %q listed twice", f.Path)
		}
		seen[f.Path] = true
		if len(f.SHA256) != 64 || !isLowerHex(f.SHA256) {
			return fmt.Errorf("manifest: file %q: sha256 %q: want 64 lower-case hex digits", f.Path, f.SHA256)
		}
		if f.Size < 0 {
			return fmt.Errorf("manifest: file %q: negative size", f.Path)
		}
		if _, err := f.Perm(); err != nil {
			return fmt.Errorf("manifest: file %q: %w", f.Path, err)
		}
	}
	// A file may not also be a directory of another ("a" and "a/b").
	for p := range seen {
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			if seen[d] {
				return fmt.Errorf("manifest: %q is both a file and a directory", d)
			}
		}
	}
	return nil
}

// validPath accepts clean relative slash paths of plain characters.
func validPath(p string) error {
	if p == "" || len(p) > 255 {
		return fmt.Errorf("bad path %q", p)
	}
	if path.Clean(p) != p || path.IsAbs(p) || p == "." || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("path %q is not a clean relative path", p)
	}
	for _, el := range strings.Split(p, "/") {
		if el == "." || el == ".." || el == "" {
			return fmt.Errorf("path %q is not a clean relative path", p)
		}
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || strings.IndexByte("._-+/", c) >= 0) {
			return fmt.Errorf("path %q: character %q not allowed", p, c)
		}
	}
	return nil
}

func validFlavor(s string) bool {
	for _, f := range Flavors {
		if s == f {
			return true
		}
	}
	return false
}

func isToken(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c == '_') {
			return false
		}
	}
	return true
}

func isLowerHex(s string) bool {
	if _, err := hex.DecodeString(s); err != nil {
		return false
	}
	return strings.ToLower(s) == s
}
