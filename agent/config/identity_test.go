package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// selfSigned writes a certificate with the given CN and returns its path.
func selfSigned(t *testing.T, cn string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "c.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestCheckIdentity(t *testing.T) {
	box1, box2 := selfSigned(t, "box1"), selfSigned(t, "box2")
	garbage := filepath.Join(t.TempDir(), "g.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		broker Broker
		want   []string // substrings, one per problem; none: accepted
	}{
		{name: "nothing to check", broker: Broker{}},
		{name: "certificate of this box", broker: Broker{CertFile: box1}},
		{name: "certificate and username of this box", broker: Broker{CertFile: box1, Username: "box1"}},
		{name: "certificate of another box", broker: Broker{CertFile: box2},
			want: []string{`broker.cert_file: the certificate is for "box2" (its CN), not for agent "box1"`}},
		{name: "username of another box", broker: Broker{Username: "box2"}, want: []string{`broker.username: "box2" is not the agent id "box1"`}},
		{name: "both wrong", broker: Broker{CertFile: box2, Username: "shared"}, want: []string{"broker.cert_file", "broker.username"}},
		{name: "explicit auto", broker: Broker{CertFile: box2, Identity: IdentityAuto}, want: []string{"broker.cert_file"}},
		{name: "unreadable certificate", broker: Broker{CertFile: filepath.Join(t.TempDir(), "none.pem")}, want: []string{"broker.cert_file", "no such file"}},
		{name: "not a certificate", broker: Broker{CertFile: garbage}, want: []string{"broker.cert_file", "no PEM CERTIFICATE"}},
		{name: "none", broker: Broker{CertFile: box2, Username: "shared", Identity: IdentityNone}},
		{name: "client_id: CN not looked at", broker: Broker{CertFile: box2, Identity: IdentityClientID}},
		{name: "client_id: default", broker: Broker{Identity: IdentityClientID}},
		{name: "client_id: another", broker: Broker{ClientID: "box2", Identity: IdentityClientID}, want: []string{`broker.client_id: "box2" is not the agent id`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a := DefaultAgent()
			a.ID, a.Broker = "box1", tc.broker
			problems := Problems(CheckIdentity(a))
			if len(tc.want) == 0 {
				if len(problems) > 0 {
					t.Fatalf("refused: %v", problems)
				}
				return
			}
			all := ""
			for _, p := range problems {
				all += p.Error() + "\n"
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("problems %q lack %q", all, w)
				}
			}
		})
	}
}

func TestIdentityAndTrustedKeysValidate(t *testing.T) {
	for doc, want := range map[string]string{
		"broker: {identity: cn}":       `broker.identity: "cn" is not auto, client_id or none`,
		"config: {trusted_keys: ['']}": "config.trusted_keys[0]: empty path",
		"config: {nosuch: 1}":          "unknown key",
	} {
		a := DefaultAgent()
		err := ParseAgent([]byte(doc), &a)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", doc, err, want)
		}
	}
	a := DefaultAgent()
	if err := ParseAgent([]byte("broker: {identity: client_id}\nconfig: {trusted_keys: [/etc/streamqc/config.pub]}\n"), &a); err != nil {
		t.Fatal(err)
	}
	if a.Broker.Identity != IdentityClientID || len(a.Config.TrustedKeys) != 1 {
		t.Fatalf("parsed %+v %+v", a.Broker, a.Config)
	}
}
