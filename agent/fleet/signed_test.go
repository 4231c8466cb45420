package fleet

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

func newKey(t testing.TB) (ed25519.PublicKey, ed25519.PrivateKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub, priv
}

// edit decodes an envelope, lets f change it and encodes it again.
func edit(t *testing.T, env []byte, f func(e *schema.Envelope)) []byte {
	t.Helper()
	var e schema.Envelope
	if err := json.Unmarshal(env, &e); err != nil {
		t.Fatal(err)
	}
	f(&e)
	b, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestOpen(t *testing.T) {
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	pub, priv := newKey(t)
	otherPub, otherPriv := newKey(t)
	trusted := firmware.NewKeyring(pub)
	box1 := Target{Scope: ScopeAgent, Fleet: "eu", Agent: "box1"}
	fleetEU := Target{Scope: ScopeFleet, Fleet: "eu"}
	doc := []byte(`{"version": 7, "streams": [{"id": "a", "url": "udp://239.0.0.1:5000"}]}`)
	sign := func(k ed25519.PrivateKey, tg Target, d []byte) []byte {
		b, err := Sign(k, tg, d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	good := sign(priv, box1, doc)
	flipped := append([]byte(nil), doc...)
	flipped[bytes.IndexByte(flipped, '7')] = '8'

	tests := []struct {
		name   string
		kr     *firmware.Keyring
		target Target
		msg    []byte
		want   error // nil: accepted, the document is doc
		wantID string
	}{
		{name: "good", kr: trusted, target: box1, msg: good, wantID: firmware.KeyID(pub)},
		{name: "good, fleet scope", kr: trusted, target: fleetEU, msg: sign(priv, fleetEU, doc), wantID: firmware.KeyID(pub)},
		{name: "second trusted key", kr: firmware.NewKeyring(pub, otherPub), target: box1, msg: sign(otherPriv, box1, doc), wantID: firmware.KeyID(otherPub)},
		{name: "unsigned", kr: trusted, target: box1, msg: doc, want: ErrUnsigned},
		{name: "unsigned garbage", kr: trusted, target: box1, msg: []byte("\x00garbage{"), want: ErrUnsigned},
		{name: "unsigned, no trusted keys", kr: nil, target: box1, msg: doc},
		{name: "signed, no trusted keys", kr: firmware.NewKeyring(), target: box1, msg: good},
		{name: "wrong key", kr: trusted, target: box1, msg: sign(otherPriv, box1, doc), want: ErrUntrustedKey},
		{name: "wrong key claiming the trusted key's id", kr: trusted, target: box1,
			msg: edit(t, sign(otherPriv, box1, doc), func(e *schema.Envelope) { e.KeyID = firmware.KeyID(pub) }), want: ErrBadSignature},
		{name: "tampered payload", kr: trusted, target: box1,
			msg: edit(t, good, func(e *schema.Envelope) { e.Payload = base64.StdEncoding.EncodeToString(flipped) }), want: ErrBadSignature},
		{name: "tampered signature", kr: trusted, target: box1,
			msg: edit(t, good, func(e *schema.Envelope) {
				sig, _ := base64.StdEncoding.DecodeString(e.Signature)
				sig[10] ^= 1
				e.Signature = base64.StdEncoding.EncodeToString(sig)
			}), want: ErrBadSignature},
		{name: "another agent's document", kr: trusted, target: Target{Scope: ScopeAgent, Fleet: "eu", Agent: "box2"}, msg: good, want: ErrWrongTarget},
		{name: "retargeted envelope", kr: trusted, target: Target{Scope: ScopeAgent, Fleet: "eu", Agent: "box2"},
			msg: edit(t, good, func(e *schema.Envelope) { e.Agent = "box2" }), want: ErrBadSignature},
		{name: "agent document as the fleet's", kr: trusted, target: fleetEU,
			msg: edit(t, good, func(e *schema.Envelope) { e.Scope, e.Agent = "fleet", "" }), want: ErrBadSignature},
		{name: "another fleet", kr: trusted, target: Target{Scope: ScopeAgent, Fleet: "us", Agent: "box1"}, msg: good, want: ErrWrongTarget},
		{name: "wrong target, no trusted keys", kr: nil, target: Target{Scope: ScopeAgent, Fleet: "eu", Agent: "box2"}, msg: good, want: ErrWrongTarget},
		{name: "truncated signature", kr: trusted, target: box1,
			msg: edit(t, good, func(e *schema.Envelope) { e.Signature = e.Signature[:40] }), want: ErrMalformed},
		{name: "payload not base64", kr: trusted, target: box1,
			msg: edit(t, good, func(e *schema.Envelope) { e.Payload = "%%%" }), want: ErrMalformed},
		{name: "unknown format", kr: trusted, target: box1,
			msg: edit(t, good, func(e *schema.Envelope) { e.Format = "streamqc-signed-config/2" }), want: ErrMalformed},
		{name: "extra member", kr: trusted, target: box1,
			msg: append(append([]byte(nil), good[:len(good)-1]...), []byte(`,"x":1}`)...), want: ErrMalformed},
		{name: "signature only", kr: trusted, target: box1, msg: []byte(`{"signature": 5}`), want: ErrMalformed},
		{name: "garbage envelope", kr: trusted, target: box1, msg: []byte(`{"format": {"a": [1, 2]}, "payload": null}`), want: ErrMalformed},
		{name: "hostile field", kr: trusted, target: box1,
			msg: edit(t, good, func(e *schema.Envelope) { e.Agent = strings.Repeat("\x1b[2J", 100000) }), want: ErrMalformed},
		{name: "hostile size", kr: trusted, target: box1,
			msg: []byte(`{"format":"streamqc-signed-config/1","payload":"` + strings.Repeat("A", schema.MaxSignedConfig) + `"}`), want: ErrUnsigned},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, id, err := Open(s, tc.kr, tc.target, tc.msg)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				if got != nil {
					t.Fatalf("a refused message returned a document: %q", got)
				}
				if len(err.Error()) > 1024 {
					t.Fatalf("reason of %d bytes", len(err.Error()))
				}
				return
			}
			if err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !bytes.Equal(got, doc) || id != tc.wantID {
				t.Fatalf("got %q signed by %q, want %q signed by %q", got, id, doc, tc.wantID)
			}
		})
	}
}

func TestSignedVersionIsPeeked(t *testing.T) {
	_, priv := newKey(t)
	env, err := Sign(priv, Target{Scope: ScopeAgent, Fleet: "eu", Agent: "box1"}, []byte(`{"version": 42, "streams": []}`))
	if err != nil {
		t.Fatal(err)
	}
	if v := schema.PeekVersion(env); v != 42 {
		t.Fatalf("PeekVersion of an envelope = %d, want 42", v)
	}
	s, err := schema.Load()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate(schema.SignedConfig, env); err != nil {
		t.Fatalf("Sign's envelope does not match its schema: %v", err)
	}
}

// FuzzOpen: whatever arrives on a desired topic, Open returns an error or a
// document, never panics, and never accepts one it cannot verify.
func FuzzOpen(f *testing.F) {
	pub, priv := newKey(f)
	box1 := Target{Scope: ScopeAgent, Fleet: "eu", Agent: "box1"}
	env, err := Sign(priv, box1, []byte(`{"version": 1, "streams": []}`))
	if err != nil {
		f.Fatal(err)
	}
	fleetEnv, _ := Sign(priv, Target{Scope: ScopeFleet, Fleet: "eu"}, []byte(`{"version": 2}`))
	f.Add(env)
	f.Add(fleetEnv)
	f.Add([]byte(`{"version": 1, "streams": []}`))
	f.Add([]byte(`{"format":"streamqc-signed-config/1","scope":"agent","fleet":"eu","agent":"box1","payload":"","key_id":"0000000000000000","signature":""}`))
	f.Add([]byte(`{"signature":null}`))
	f.Add([]byte(`[]`))
	f.Add([]byte{})
	s, err := schema.Load()
	if err != nil {
		f.Fatal(err)
	}
	kr := firmware.NewKeyring(pub)
	f.Fuzz(func(t *testing.T, msg []byte) {
		for _, tg := range []Target{box1, {Scope: ScopeFleet, Fleet: "eu"}} {
			doc, id, err := Open(s, kr, tg, msg)
			if err != nil {
				continue
			}
			if id != firmware.KeyID(pub) {
				t.Fatalf("accepted without the trusted key: id %q", id)
			}
			if !ed25519.Verify(pub, schema.SignedMessage(tg.Scope, tg.Fleet, tg.Agent, doc), mustSig(t, msg)) {
				t.Fatal("accepted a document whose signature does not verify")
			}
		}
		_, _, _ = Open(s, nil, box1, msg)
	})
}

func mustSig(t *testing.T, msg []byte) []byte {
	var e schema.Envelope
	if err := json.Unmarshal(msg, &e); err != nil {
		t.Fatalf("accepted message is not an envelope: %v", err)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Signature)
	if err != nil {
		t.Fatal(err)
	}
	return sig
}

func TestShorten(t *testing.T) {
	for _, c := range []struct {
		in   string
		n    int
		want string
	}{
		{"abc", 3, "abc"},
		{"abcd", 3, "abc… (1 bytes more)"},
		{"aé", 2, "a… (2 bytes more)"}, // never half a rune
		{"", 0, ""},
	} {
		if got := Shorten(c.in, c.n); got != c.want {
			t.Errorf("Shorten(%q, %d) = %q, want %q", c.in, c.n, got, c.want)
		}
	}
}
