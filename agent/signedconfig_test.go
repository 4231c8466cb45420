package agent

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/fleet"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/schema"
)

// configKey makes an Ed25519 key pair as `streamqc firmware keygen` does and
// returns the private key and the public key file.
func configKey(t *testing.T, name string) (ed25519.PrivateKey, string) {
	t.Helper()
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, name+".key"), filepath.Join(dir, name+".pub")
	if err := firmware.GenerateKey(priv, pub); err != nil {
		t.Fatal(err)
	}
	k, err := firmware.LoadPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k, pub
}

func signed(t *testing.T, k ed25519.PrivateKey, tg fleet.Target, doc string) string {
	t.Helper()
	b, err := fleet.Sign(k, tg, []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestSignedConfigs: an agent with config.trusted_keys applies only desired
// documents signed for it by a trusted key, in both scopes; every refusal
// is on config/reported with its reason while the running config stays; an
// older signed document replayed is refused by its version; after a restart
// the stored document is verified again and runs.
func TestSignedConfigs(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watch(t, b, "")
	key, pub := configKey(t, "ops")
	rogueKey, _ := configKey(t, "rogue")
	c := agentConfig(t, b, t.TempDir())
	c.Config.TrustedKeys = []string{pub}
	a := startAgent(t, c)
	topics := schema.NewTopics("test", "box1")
	box1 := fleet.Target{Scope: fleet.ScopeAgent, Fleet: "test", Agent: "box1"}
	fleetTest := fleet.Target{Scope: fleet.ScopeFleet, Fleet: "test"}
	w.waitFor("online status", 10*time.Second, func() bool { return strings.Contains(string(w.last("status")), `"online"`) })

	v1 := signed(t, key, box1, `{"version":1,"streams":[{"id":"a","url":"a.ts"}]}`)
	w.push(t, topics.Desired, v1)
	if r := w.verdict(1, "agent"); r.Status != "accepted" || r.AppliedVersion != 1 || len(r.Streams) != 1 {
		t.Fatalf("signed v1: %+v", r)
	}
	v2 := signed(t, key, box1, `{"version":2,"streams":[{"id":"a","url":"a.ts"},{"id":"b","url":"b.ts"}]}`)
	var tampered schema.Envelope
	if err := json.Unmarshal([]byte(signed(t, key, box1, `{"version":5,"streams":[]}`)), &tampered); err != nil {
		t.Fatal(err)
	}
	tampered.Payload = base64.StdEncoding.EncodeToString([]byte(`{"version":6,"streams":[]}`))
	tamperedDoc, _ := json.Marshal(tampered)

	refusals := []struct {
		name, doc string
		version   int64
		reason    string
	}{
		{"unsigned", `{"version":3,"streams":[]}`, 3, "unsigned document refused"},
		{"wrong key", signed(t, rogueKey, box1, `{"version":4,"streams":[]}`), 4, "not in config.trusted_keys"},
		{"tampered payload", string(tamperedDoc), 6, "signature does not verify"},
		{"signed for another agent", signed(t, key, fleet.Target{Scope: fleet.ScopeAgent, Fleet: "test", Agent: "box2"}, `{"version":7,"streams":[]}`), 7, "signed for agent test/box2"},
		{"garbage", `{"format":"streamqc-signed-config/1","payload":"!!"}`, 0, "malformed signed document"},
	}
	for _, rc := range refusals {
		w.push(t, topics.Desired, rc.doc)
		r := w.verdict(rc.version, "agent")
		if r.Status != "rejected" || !strings.Contains(r.Reason, rc.reason) || r.AppliedVersion != 1 || len(r.Streams) != 1 {
			t.Errorf("%s: %+v, want rejected with %q and version 1 running", rc.name, r, rc.reason)
		}
	}

	w.push(t, topics.Desired, v2)
	if r := w.verdict(2, "agent"); r.Status != "accepted" || r.AppliedVersion != 2 || len(r.Streams) != 2 {
		t.Fatalf("signed v2: %+v", r)
	}
	// A forged version 2 is refused; the operators' version 2 pushed again
	// after it is answered (applied again), not taken for other content.
	w.push(t, topics.Desired, `{"version":2,"streams":[]}`)
	w.waitFor("unsigned v2 refused", 15*time.Second, func() bool {
		var r Reported
		return json.Unmarshal(w.last("config/reported"), &r) == nil && r.Version == 2 && r.Status == "rejected" &&
			strings.Contains(r.Reason, "unsigned") && r.AppliedVersion == 2 && len(r.Streams) == 2
	})
	w.push(t, topics.Desired, v2)
	w.waitFor("v2 accepted again", 15*time.Second, func() bool {
		var r Reported
		return json.Unmarshal(w.last("config/reported"), &r) == nil && r.Version == 2 && r.Status == "accepted" && r.AppliedVersion == 2
	})
	// A replay of version 1, validly signed, is stale.
	w.push(t, topics.Desired, v1)
	if r := w.verdict(1, "agent"); r.Status != "rejected" || !strings.Contains(r.Reason, "stale version 1") || r.AppliedVersion != 2 {
		t.Fatalf("replayed v1: %+v", r)
	}

	// The fleet scope: unsigned refused, an agent-scope signature refused, signed applied.
	w.push(t, topics.FleetDesired, `{"version":1,"detectors":{"black":{"min_duration":3}}}`)
	if r := w.verdict(1, "fleet"); r.Status != "rejected" || !strings.Contains(r.Reason, "unsigned") || r.FleetVersion != 0 {
		t.Fatalf("unsigned fleet v1: %+v", r)
	}
	w.push(t, topics.FleetDesired, signed(t, key, box1, `{"version":2}`))
	if r := w.verdict(2, "fleet"); r.Status != "rejected" || !strings.Contains(r.Reason, "signed for agent test/box1, this is fleet test") {
		t.Fatalf("agent-scope envelope as the fleet's: %+v", r)
	}
	w.push(t, topics.FleetDesired, signed(t, key, fleetTest, `{"version":3,"detectors":{"black":{"min_duration":3}}}`))
	if r := w.verdict(3, "fleet"); r.Status != "accepted" || r.FleetVersion != 3 || r.AppliedVersion != 2 {
		t.Fatalf("signed fleet v3: %+v", r)
	}

	// Restart: the stored (signed) documents are verified again and run;
	// the retained replay of v1 is refused again.
	a.stop(t)
	w.push(t, topics.Desired, v1)
	startAgent(t, c)
	w.waitFor("reported after the restart", 15*time.Second, func() bool {
		var r Reported
		return json.Unmarshal(w.last("config/reported"), &r) == nil && r.Status == "rejected" && r.Version == 1 &&
			r.AppliedVersion == 2 && r.FleetVersion == 3 && len(r.Streams) == 2
	})
}

// TestSignedConfigsWithoutTrustedKeys: without config.trusted_keys nothing
// changes: unsigned documents apply, and a signed one (pushed to a mixed
// fleet) applies too, its target still checked.
func TestSignedConfigsWithoutTrustedKeys(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{})
	w := watch(t, b, "")
	key, _ := configKey(t, "ops")
	startAgent(t, agentConfig(t, b, t.TempDir()))
	topics := schema.NewTopics("test", "box1")
	w.push(t, topics.Desired, `{"version":1,"streams":[]}`)
	if r := w.verdict(1, "agent"); r.Status != "accepted" {
		t.Fatalf("unsigned v1: %+v", r)
	}
	w.push(t, topics.Desired, signed(t, key, fleet.Target{Scope: fleet.ScopeAgent, Fleet: "test", Agent: "box1"}, `{"version":2,"streams":[]}`))
	if r := w.verdict(2, "agent"); r.Status != "accepted" || r.AppliedVersion != 2 {
		t.Fatalf("signed v2: %+v", r)
	}
	w.push(t, topics.Desired, signed(t, key, fleet.Target{Scope: fleet.ScopeAgent, Fleet: "test", Agent: "box9"}, `{"version":3,"streams":[]}`))
	if r := w.verdict(3, "agent"); r.Status != "rejected" || !strings.Contains(r.Reason, "signed for agent test/box9") {
		t.Fatalf("v3 for another agent: %+v", r)
	}
}
