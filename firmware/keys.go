package firmware

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
)

// KeyID names a public key: the hex of the first 8 bytes of its SHA-256.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// GenerateKey makes a new Ed25519 key pair and writes the private key to
// privPath (PEM "PRIVATE KEY", PKCS#8, mode 0600) and the public key to
// pubPath (PEM "PUBLIC KEY", PKIX, mode 0644). It refuses to overwrite
// either file.
func GenerateKey(privPath, pubPath string) error {
	for _, p := range []string{privPath, pubPath} {
		if _, err := os.Lstat(p); err == nil {
			return fmt.Errorf("firmware: %s already exists, not overwriting", p)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("firmware: %w", err)
		}
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("firmware: generate key: %w", err)
	}
	privDER, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	if err := writeNew(privPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}), 0o600); err != nil {
		return err
	}
	if err := writeNew(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		os.Remove(privPath)
		return err
	}
	return nil
}

// writeNew creates path exclusively (never overwriting) and writes data.
func writeNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("firmware: %w", err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("firmware: write %s: %w", path, err)
	}
	return nil
}

// LoadPrivateKey reads a private key written by GenerateKey.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("firmware: %s: not a PEM \"PRIVATE KEY\"", path)
	}
	k, err := x509.ParsePKCS8PrivateKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("firmware: %s: %w", path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("firmware: %s: not an Ed25519 key (%T)", path, k)
	}
	return priv, nil
}

// LoadPublicKey reads a public key written by GenerateKey.
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("firmware: %w", err)
	}
	b, _ := pem.Decode(data)
	if b == nil || b.Type != "PUBLIC KEY" {
		return nil, fmt.Errorf("firmware: %s: not a PEM \"PUBLIC KEY\"", path)
	}
	k, err := x509.ParsePKIXPublicKey(b.Bytes)
	if err != nil {
		return nil, fmt.Errorf("firmware: %s: %w", path, err)
	}
	pub, ok := k.(ed25519.PublicKey)
	if !ok {
		return nil, fmt.Errorf("firmware: %s: not an Ed25519 key (%T)", path, k)
	}
	return pub, nil
}

// Keyring holds the public keys a device trusts. They come from the local
// configuration only, never from the broker or from a bundle.
type Keyring struct {
	keys map[string]ed25519.PublicKey // by KeyID
}

// NewKeyring makes a keyring of the given keys.
func NewKeyring(keys ...ed25519.PublicKey) *Keyring {
	kr := &Keyring{keys: make(map[string]ed25519.PublicKey)}
	for _, k := range keys {
		kr.Add(k)
	}
	return kr
}

// Add trusts one more key.
func (kr *Keyring) Add(pub ed25519.PublicKey) {
	if kr.keys == nil {
		kr.keys = make(map[string]ed25519.PublicKey)
	}
	kr.keys[KeyID(pub)] = append(ed25519.PublicKey(nil), pub...)
}

// Key returns the trusted key with this id (KeyID).
func (kr *Keyring) Key(id string) (ed25519.PublicKey, bool) {
	if kr == nil {
		return nil, false
	}
	k, ok := kr.keys[id]
	return k, ok
}

// IDs lists the key ids of the keyring, sorted.
func (kr *Keyring) IDs() []string {
	var ids []string
	if kr != nil {
		for id := range kr.keys {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Len is the number of trusted keys.
func (kr *Keyring) Len() int {
	if kr == nil {
		return 0
	}
	return len(kr.keys)
}

// LoadTrusted reads the public-key files (PEM "PUBLIC KEY") the local
// configuration lists. An empty list or any unreadable file is an error.
func LoadTrusted(paths []string) (*Keyring, error) {
	if len(paths) == 0 {
		return nil, errors.New("firmware: no trusted public keys configured")
	}
	kr := NewKeyring()
	for _, p := range paths {
		pub, err := LoadPublicKey(p)
		if err != nil {
			return nil, err
		}
		kr.Add(pub)
	}
	return kr, nil
}
