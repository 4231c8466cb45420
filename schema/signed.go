package schema

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
)

// SignedConfig is the schema name of the signed envelope of a desired document.
const SignedConfig = "signed-config"

// SignedConfigFormat is the envelope's format and the first line of what its
// signature covers.
const SignedConfigFormat = "streamqc-signed-config/1"

// MaxSignedConfig bounds an envelope: a 1 MiB document in base64 and the rest.
const MaxSignedConfig = (1<<20)*4/3 + 4096

// Envelope is a desired document (agent or fleet scope) signed with an
// Ed25519 key (signed-config.schema.json). The payload is the document's
// bytes in base64, so that what the signature covers is exactly what is
// parsed, with no canonical form to agree on.
type Envelope struct {
	Format    string `json:"format"`
	Scope     string `json:"scope"` // agent or fleet
	Fleet     string `json:"fleet"`
	Agent     string `json:"agent,omitempty"` // agent scope only
	Payload   string `json:"payload"`
	KeyID     string `json:"key_id"`
	Signature string `json:"signature"`
}

// SignedMessage is what an envelope's signature covers: the format, the
// target (scope, fleet, agent: a document signed for one agent is no other's)
// and the document's bytes.
func SignedMessage(scope, fleet, agent string, doc []byte) []byte {
	head := fmt.Sprintf("%s\nscope=%s\nfleet=%s\nagent=%s\n", SignedConfigFormat, scope, fleet, agent)
	return append([]byte(head), doc...)
}

// IsEnvelope reports whether a desired message is a signed envelope rather
// than a plain document: a JSON object with a "format" or "signature" member
// (plain documents have neither).
func IsEnvelope(b []byte) bool {
	if len(b) > MaxSignedConfig {
		return false
	}
	var probe struct {
		Format    json.RawMessage `json:"format"`
		Signature json.RawMessage `json:"signature"`
	}
	if json.Unmarshal(b, &probe) != nil {
		return false
	}
	return probe.Format != nil || probe.Signature != nil
}

// DecodeEnvelope checks an envelope against its schema and returns it with
// the document and the signature it carries (not verified: see
// agent/fleet.Open).
func (s *Set) DecodeEnvelope(b []byte) (Envelope, []byte, []byte, error) {
	var e Envelope
	if len(b) > MaxSignedConfig {
		return e, nil, nil, fmt.Errorf("signed document of %d bytes is larger than %d", len(b), MaxSignedConfig)
	}
	if err := s.Validate(SignedConfig, b); err != nil {
		return e, nil, nil, fmt.Errorf("signed document: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&e); err != nil {
		return e, nil, nil, fmt.Errorf("signed document: %w", err)
	}
	doc, err := base64.StdEncoding.Strict().DecodeString(e.Payload)
	if err != nil {
		return e, nil, nil, fmt.Errorf("signed document: payload: %w", err)
	}
	sig, err := base64.StdEncoding.Strict().DecodeString(e.Signature)
	if err != nil {
		return e, nil, nil, fmt.Errorf("signed document: signature: %w", err)
	}
	if len(sig) != 64 {
		return e, nil, nil, errors.New("signed document: signature: not 64 bytes")
	}
	return e, doc, sig, nil
}
