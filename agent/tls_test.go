package agent

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
)

// TestMutualTLSAndPassword runs the agent against a broker that wants both a
// client certificate of its CA and a password, as a hardened production
// broker (or AWS IoT Core, for the certificate) does; an agent with a
// certificate from another CA never gets in.
func TestMutualTLSAndPassword(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true, Users: map[string]string{"box1": "pw-box", "rogue": "pw-box", "ops": "pw-ops"}})
	ops, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "ops", Username: "ops", Password: "pw-ops",
		CAFile: b.Certs.CA, CertFile: b.Certs.ClientCert, KeyFile: b.Certs.ClientKey})
	if err != nil {
		t.Fatal(err)
	}
	online := make(chan string, 16)
	ops.Subscribe("streamqc/v1/test/+/status", 1, func(m mqtt.Message) {
		if strings.Contains(string(m.Payload), `"online"`) {
			online <- m.Topic
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ops.Start(ctx)
	defer ops.Close(time.Second)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := ops.WaitConnected(wctx); err != nil {
		t.Fatal(err)
	}

	rogue := agentConfig(t, b, "")
	rogue.ID = "rogue"
	rogue.Broker.Identity = config.IdentityNone // its CN is not "rogue": the broker has to refuse it, not the agent
	rogue.Broker.Username, rogue.Broker.Password = "rogue", "pw-box"
	rogue.Broker.CAFile, rogue.Broker.CertFile, rogue.Broker.KeyFile = b.Certs.CA, b.Certs.RogueCert, b.Certs.RogueKey
	startAgent(t, rogue)

	c := agentConfig(t, b, "")
	cert, key, err := b.Certs.Issue(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.Broker.Username, c.Broker.Password = c.ID, "pw-box"
	c.Broker.CAFile, c.Broker.CertFile, c.Broker.KeyFile = b.Certs.CA, cert, key
	startAgent(t, c)

	deadline := time.After(10 * time.Second)
	for {
		select {
		case topic := <-online:
			if strings.Contains(topic, "/rogue/") {
				t.Fatal("an agent with a certificate of another CA got in")
			}
			// The good agent is in; give the rogue one a few connect attempts.
			select {
			case topic := <-online:
				t.Fatalf("unexpected status on %s", topic)
			case <-time.After(3 * time.Second):
			}
			return
		case <-deadline:
			t.Fatal("the agent with a valid certificate and password did not come online")
		}
	}
}
