package mqtttest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Certs holds the paths of the PEM files of a throw-away PKI: a test CA, a
// server certificate for 127.0.0.1/localhost and a client certificate, both
// signed by it, and a rogue client certificate signed by another CA (a broker
// requiring client certificates from CA must refuse it).
type Certs struct {
	CA, ServerCert, ServerKey, ClientCert, ClientKey, RogueCert, RogueKey string

	dir string
	ca  *issuer
}

type issuer struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// makeCerts writes a fresh PKI into dir.
func makeCerts(dir string) (*Certs, error) {
	c := &Certs{
		CA:         filepath.Join(dir, "ca.pem"),
		ServerCert: filepath.Join(dir, "server.pem"),
		ServerKey:  filepath.Join(dir, "server.key"),
		ClientCert: filepath.Join(dir, "client.pem"),
		ClientKey:  filepath.Join(dir, "client.key"),
		RogueCert:  filepath.Join(dir, "rogue.pem"),
		RogueKey:   filepath.Join(dir, "rogue.key"),
	}
	ca, err := newCA("streamqc test CA")
	if err != nil {
		return nil, err
	}
	c.dir, c.ca = dir, ca
	if err := writePEM(c.CA, "CERTIFICATE", ca.cert.Raw); err != nil {
		return nil, err
	}
	rogueCA, err := newCA("rogue CA")
	if err != nil {
		return nil, err
	}
	server := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "localhost"},
		DNSNames:    []string{"localhost"},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if err := issue(ca, server, c.ServerCert, c.ServerKey); err != nil {
		return nil, err
	}
	client := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "streamqc-test-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := issue(ca, client, c.ClientCert, c.ClientKey); err != nil {
		return nil, err
	}
	rogue := &x509.Certificate{
		Subject:     pkix.Name{CommonName: "streamqc-rogue-client"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := issue(rogueCA, rogue, c.RogueCert, c.RogueKey); err != nil {
		return nil, err
	}
	return c, nil
}

// Issue mints a client certificate of the test CA with the given CN (one
// per box: with Options.CertIdentity the CN is the username) and returns the
// paths of the certificate and its key.
func (c *Certs) Issue(cn string) (certPath, keyPath string, err error) {
	if c == nil || c.ca == nil {
		return "", "", fmt.Errorf("mqtttest: no test CA (Options.TLS is off)")
	}
	name := fmt.Sprintf("client-%x", sha256.Sum256([]byte(cn)))
	certPath, keyPath = filepath.Join(c.dir, name+".pem"), filepath.Join(c.dir, name+".key")
	tmpl := &x509.Certificate{
		Subject:     pkix.Name{CommonName: cn},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	if err := issue(c.ca, tmpl, certPath, keyPath); err != nil {
		return "", "", err
	}
	return certPath, keyPath, nil
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
}

func newCA(name string) (*issuer, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, fmt.Errorf("serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("create CA certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("parse CA certificate: %w", err)
	}
	return &issuer{cert: cert, key: key}, nil
}

// issue completes tmpl, signs it with ca and writes the certificate and its key.
func issue(ca *issuer, tmpl *x509.Certificate, certPath, keyPath string) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("generate key for %s: %w", tmpl.Subject.CommonName, err)
	}
	sn, err := serial()
	if err != nil {
		return fmt.Errorf("serial number: %w", err)
	}
	tmpl.SerialNumber = sn
	tmpl.NotBefore = time.Now().Add(-time.Hour)
	tmpl.NotAfter = time.Now().Add(24 * time.Hour)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("create certificate %s: %w", tmpl.Subject.CommonName, err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("marshal key %s: %w", tmpl.Subject.CommonName, err)
	}
	if err := writePEM(certPath, "CERTIFICATE", der); err != nil {
		return err
	}
	return writePEM(keyPath, "PRIVATE KEY", keyDER)
}

func writePEM(path, typ string, der []byte) error {
	data := pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}
