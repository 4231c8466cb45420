package fleet

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

// Scopes of a desired document.
const (
	ScopeAgent = "agent"
	ScopeFleet = "fleet"
)

// Target is whom a desired document is for: one agent of a fleet, or the
// fleet (Agent empty).
type Target struct {
	Scope, Fleet, Agent string
}

func (t Target) String() string {
	if t.Scope == ScopeFleet {
		return "fleet " + t.Fleet
	}
	return "agent " + t.Fleet + "/" + t.Agent
}

// Errors of Open, for errors.Is; the message says more.
var (
	ErrUnsigned     = errors.New("unsigned document refused: this agent's config.trusted_keys requires a signed one (streamqc fleet config push --sign)")
	ErrUntrustedKey = errors.New("signed by a key that is not in config.trusted_keys")
	ErrBadSignature = errors.New("signature does not verify: the document or its target was altered, or signed by another key")
	ErrWrongTarget  = errors.New("signed for another target")
	ErrMalformed    = errors.New("malformed signed document")
)

// Sign wraps doc (a desired or fleet-desired document, sent as its exact
// bytes) in an envelope for t signed with priv (schema/signed-config.schema.json).
func Sign(priv ed25519.PrivateKey, t Target, doc []byte) ([]byte, error) {
	if len(priv) != ed25519.PrivateKeySize {
		return nil, errors.New("sign: not an Ed25519 private key")
	}
	if t.Scope == ScopeFleet {
		t.Agent = ""
	}
	if len(doc) > MaxDocument {
		return nil, fmt.Errorf("sign: document of %d bytes is larger than %d", len(doc), MaxDocument)
	}
	pub := priv.Public().(ed25519.PublicKey)
	e := schema.Envelope{
		Format: schema.SignedConfigFormat, Scope: t.Scope, Fleet: t.Fleet, Agent: t.Agent,
		Payload:   base64.StdEncoding.EncodeToString(doc),
		KeyID:     firmware.KeyID(pub),
		Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(priv, schema.SignedMessage(t.Scope, t.Fleet, t.Agent, doc))),
	}
	return json.Marshal(e)
}

// Open returns the document a desired message carries for t. With trusted
// keys (kr not empty) only an envelope for t whose signature verifies with
// one of them is accepted; without, a plain document is returned as it is
// and an envelope's document unverified (its target still has to be t).
// It returns the id of the key that verified ("" when none did).
func Open(s *schema.Set, kr *firmware.Keyring, t Target, msg []byte) (doc []byte, keyID string, err error) {
	if t.Scope == ScopeFleet {
		t.Agent = ""
	}
	if !schema.IsEnvelope(msg) {
		if kr.Len() > 0 {
			return nil, "", ErrUnsigned
		}
		return msg, "", nil
	}
	e, doc, sig, err := s.DecodeEnvelope(msg)
	if err != nil {
		// Schema errors quote the offending values: a hostile one must not
		// become a megabyte of config/reported.
		return nil, "", fmt.Errorf("%w: %s", ErrMalformed, Shorten(err.Error(), 512))
	}
	if got := (Target{Scope: e.Scope, Fleet: e.Fleet, Agent: e.Agent}); got != t {
		return nil, "", fmt.Errorf("%w: signed for %s, this is %s", ErrWrongTarget, got, t)
	}
	if kr.Len() == 0 {
		return doc, "", nil
	}
	pub, ok := kr.Key(e.KeyID)
	if !ok {
		return nil, "", fmt.Errorf("%w: key %s (trusted: %s)", ErrUntrustedKey, e.KeyID, strings.Join(kr.IDs(), ", "))
	}
	if !ed25519.Verify(pub, schema.SignedMessage(t.Scope, t.Fleet, t.Agent, doc), sig) {
		return nil, "", fmt.Errorf("%w (key %s)", ErrBadSignature, e.KeyID)
	}
	return doc, e.KeyID, nil
}

// Shorten cuts s to at most n bytes (on a rune boundary), marking the cut.
func Shorten(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("… (%d bytes more)", len(s)-cut)
}
