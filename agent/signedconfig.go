package agent

import (
	"fmt"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/fleet"
	"github.com/streamqc/streamqc/firmware"
)

// loadConfigKeys reads config.trusted_keys (nil when none is set: unsigned
// desired documents apply, as before signing existed).
func loadConfigKeys(cfg config.Agent) (*firmware.Keyring, error) {
	if len(cfg.Config.TrustedKeys) == 0 {
		return nil, nil
	}
	kr, err := firmware.LoadTrusted(cfg.Config.TrustedKeys)
	if err != nil {
		return nil, fmt.Errorf("config.trusted_keys: %w", err)
	}
	return kr, nil
}

// defaultClientID is broker.client_id, or the agent id where the client id
// is the identity (AWS IoT Core), or one derived from fleet and agent.
func defaultClientID(cfg config.Agent) string {
	switch {
	case cfg.Broker.ClientID != "":
		return cfg.Broker.ClientID
	case cfg.Broker.Identity == config.IdentityClientID:
		return cfg.ID
	}
	return "streamqc-" + cfg.Fleet + "-" + cfg.ID
}

// openDesired returns the document a desired message carries for this
// agent, verified against config.trusted_keys when it has any.
func (a *Agent) openDesired(fleetWide bool, msg []byte) ([]byte, error) {
	t := fleet.Target{Scope: fleet.ScopeAgent, Fleet: a.cfg.Fleet, Agent: a.cfg.ID}
	if fleetWide {
		t = fleet.Target{Scope: fleet.ScopeFleet, Fleet: a.cfg.Fleet}
	}
	doc, keyID, err := fleet.Open(a.schemas, a.cfgKeys, t, msg)
	if err != nil {
		return nil, err
	}
	if keyID != "" {
		a.log.Debug("desired config signature verified", "scope", t.Scope, "key_id", keyID)
	}
	return doc, nil
}

// openAgent opens and parses a stored agent document (stored as it came, so
// that its signature is checked again with today's keys).
func (a *Agent) openAgent(stored []byte) (fleet.Desired, []byte, error) {
	doc, err := a.openDesired(false, stored)
	if err != nil {
		return fleet.Desired{}, nil, err
	}
	d, err := fleet.ParseDesired(a.schemas, doc)
	return d, doc, err
}

// openFleet is openAgent for the stored fleet document.
func (a *Agent) openFleet(stored []byte) (fleet.FleetDesired, []byte, error) {
	doc, err := a.openDesired(true, stored)
	if err != nil {
		return fleet.FleetDesired{}, nil, err
	}
	f, err := fleet.ParseFleet(a.schemas, doc)
	return f, doc, err
}
