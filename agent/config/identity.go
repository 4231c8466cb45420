package config

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// Values of broker.identity: which broker identity must be the agent id.
const (
	// IdentityAuto: the client certificate's CN (when cert_file is set) and
	// the username (when set) must both be the agent id, as the packaged
	// Mosquitto ACL (%u) expects.
	IdentityAuto = "auto"
	// IdentityClientID: the MQTT client id is the agent id (default client
	// id then), as AWS IoT Core's ${iot:Connection.Thing.ThingName} wants;
	// the certificate's CN is not looked at (AWS-made ones have none of ours).
	IdentityClientID = "client_id"
	// IdentityNone checks nothing (a broker without per-box identities).
	IdentityNone = "none"
)

// CheckIdentity refuses a file whose agent id is not who the agent is on the
// broker: under a least-privilege ACL every publish of such an agent would be
// dropped without a word, so it is better not to start. It reads the client
// certificate; each problem is a *FieldError.
func CheckIdentity(a Agent) error {
	switch a.Broker.Identity {
	case IdentityNone:
		return nil
	case IdentityClientID:
		if a.Broker.ClientID != "" && a.Broker.ClientID != a.ID {
			return &FieldError{Path: "broker.client_id", Err: fmt.Errorf("%q is not the agent id %q (broker.identity: client_id)", a.Broker.ClientID, a.ID)}
		}
		return nil
	}
	var errs []error
	if a.Broker.CertFile != "" {
		cn, err := CertificateCN(a.Broker.CertFile)
		switch {
		case err != nil:
			errs = append(errs, &FieldError{Path: "broker.cert_file", Err: err})
		case cn != a.ID:
			errs = append(errs, &FieldError{Path: "broker.cert_file", Err: fmt.Errorf(
				"the certificate is for %q (its CN), not for agent %q: mint one certificate per box with CN=%s, or set broker.identity (client_id for AWS IoT Core, none without per-box identities)", cn, a.ID, a.ID)})
		}
	}
	if a.Broker.Username != "" && a.Broker.Username != a.ID {
		errs = append(errs, &FieldError{Path: "broker.username", Err: fmt.Errorf(
			"%q is not the agent id %q: the broker's ACL grants an agent the topics of its username only (or set broker.identity: none)", a.Broker.Username, a.ID)})
	}
	return errors.Join(errs...)
}

// CertificateCN reads the subject CN of the first certificate of a PEM file.
func CertificateCN(path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return "", fmt.Errorf("%s: no PEM CERTIFICATE", path)
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return "", fmt.Errorf("%s: %w", path, err)
		}
		return c.Subject.CommonName, nil
	}
}

// FleetConfig is the local, never remote, trust in desired documents.
type FleetConfig struct {
	// TrustedKeys are Ed25519 public key files (`streamqc firmware keygen`);
	// when set, only desired documents (agent and fleet scope) signed by one
	// of them for this agent are applied. None: unsigned documents apply.
	TrustedKeys []string `yaml:"trusted_keys"`
}
