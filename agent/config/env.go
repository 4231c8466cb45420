package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// Environment variables that override keys of the agent's file. They are
// applied after the file and before validation; a variable that is set
// overrides its key even when empty (an empty STREAMQC_MEDIA_DIR refuses file
// inputs, an empty STREAMQC_BROKER_URL is reported as broker.url: required).
const (
	EnvFleet              = "STREAMQC_FLEET"                // fleet
	EnvAgent              = "STREAMQC_AGENT"                // agent
	EnvStateDir           = "STREAMQC_STATE_DIR"            // state_dir
	EnvMediaDir           = "STREAMQC_MEDIA_DIR"            // media_dir
	EnvBrokerURL          = "STREAMQC_BROKER_URL"           // broker.url
	EnvBrokerUsername     = "STREAMQC_BROKER_USERNAME"      // broker.username
	EnvBrokerPassword     = "STREAMQC_BROKER_PASSWORD"      // broker.password; wins over any password_file
	EnvBrokerPasswordFile = "STREAMQC_BROKER_PASSWORD_FILE" // broker.password_file
	EnvBrokerCAFile       = "STREAMQC_BROKER_CA_FILE"       // broker.ca_file
	EnvBrokerCertFile     = "STREAMQC_BROKER_CERT_FILE"     // broker.cert_file
	EnvBrokerKeyFile      = "STREAMQC_BROKER_KEY_FILE"      // broker.key_file
	EnvBrokerClientID     = "STREAMQC_BROKER_CLIENT_ID"     // broker.client_id
	EnvMetricsInterval    = "STREAMQC_METRICS_INTERVAL"     // metrics_interval: "10s" or seconds
	EnvSpoolMaxBytes      = "STREAMQC_SPOOL_MAX_BYTES"      // spool.max_bytes: a whole number of bytes
	EnvMetricsListen      = "STREAMQC_METRICS_LISTEN"       // metrics_listen
)

// EnvVars lists every variable ApplyEnv reads, in the order it applies them.
func EnvVars() []string {
	return []string{
		EnvFleet, EnvAgent, EnvStateDir, EnvMediaDir,
		EnvBrokerURL, EnvBrokerUsername, EnvBrokerPasswordFile, EnvBrokerPassword,
		EnvBrokerCAFile, EnvBrokerCertFile, EnvBrokerKeyFile, EnvBrokerClientID,
		EnvMetricsInterval, EnvSpoolMaxBytes, EnvMetricsListen,
	}
}

// ApplyEnv overrides keys of a with the STREAMQC_* variables that lookup
// finds (os.LookupEnv in production; nil: none). A password given directly
// (STREAMQC_BROKER_PASSWORD) clears broker.password_file, so that it wins
// over a file named by the agent's file or by STREAMQC_BROKER_PASSWORD_FILE.
// Each bad value is a *FieldError whose Path is the variable; they are
// joined, and the keys they would have set keep their values.
func ApplyEnv(a *Agent, lookup func(string) (string, bool)) error {
	if lookup == nil {
		return nil
	}
	for _, s := range []struct {
		name string
		dst  *string
	}{
		{EnvFleet, &a.Fleet},
		{EnvAgent, &a.ID},
		{EnvStateDir, &a.StateDir},
		{EnvMediaDir, &a.MediaDir},
		{EnvBrokerURL, &a.Broker.URL},
		{EnvBrokerUsername, &a.Broker.Username},
		{EnvBrokerPasswordFile, &a.Broker.PasswordFile},
		{EnvBrokerCAFile, &a.Broker.CAFile},
		{EnvBrokerCertFile, &a.Broker.CertFile},
		{EnvBrokerKeyFile, &a.Broker.KeyFile},
		{EnvBrokerClientID, &a.Broker.ClientID},
		{EnvMetricsListen, &a.MetricsListen},
	} {
		if v, ok := lookup(s.name); ok {
			*s.dst = v
		}
	}
	if v, ok := lookup(EnvBrokerPassword); ok {
		a.Broker.Password = v
		a.Broker.PasswordFile = ""
	}
	var errs []error
	if v, ok := lookup(EnvMetricsInterval); ok {
		d, err := parseDuration(v)
		if err != nil {
			errs = append(errs, &FieldError{Path: EnvMetricsInterval, Err: err})
		} else {
			a.MetricsInterval = Duration(d)
		}
	}
	if v, ok := lookup(EnvSpoolMaxBytes); ok {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil {
			errs = append(errs, &FieldError{Path: EnvSpoolMaxBytes, Err: fmt.Errorf("%q is not a whole number of bytes", v)})
		} else {
			a.Spool.MaxBytes = n
		}
	}
	return errors.Join(errs...)
}
