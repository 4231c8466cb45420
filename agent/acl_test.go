package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/mqtttest"
	"github.com/streamqc/streamqc/schema"
)

// aclFile is the ACL the package ships; the tests run it as it is.
const aclFile = "../packaging/mosquitto/streamqc.acl"

const (
	operator     = "streamqc-operator"
	dashboard    = "streamqc-dashboard"
	recorderUser = "streamqc-recorder"
)

// aclUsers are the accounts of the ACL tests: two agents, an operator, a
// dashboard, the consumer of record.
func aclUsers() map[string]string {
	return map[string]string{"box1": "pw-box1", "box2": "pw-box2", operator: "pw-op", dashboard: "pw-dash", recorderUser: "pw-rec"}
}

// peer is a raw client of one account that records what it receives.
type peer struct {
	t   *testing.T
	c   *mqtt.Client
	mu  sync.Mutex
	got map[string][][]byte
	any chan struct{}
}

func connectAs(t *testing.T, b *mqtttest.Broker, user string, filters ...string) *peer {
	t.Helper()
	c, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: fmt.Sprintf("%s-%d", user, time.Now().UnixNano()),
		Username: user, Password: aclUsers()[user], Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, c: c, got: map[string][][]byte{}, any: make(chan struct{}, 1)}
	for _, f := range filters {
		c.Subscribe(f, 1, func(m mqtt.Message) {
			p.mu.Lock()
			p.got[m.Topic] = append(p.got[m.Topic], append([]byte(nil), m.Payload...))
			p.mu.Unlock()
			select {
			case p.any <- struct{}{}:
			default:
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.Start(ctx)
	wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
	defer wcancel()
	if err := c.WaitConnected(wctx); err != nil {
		t.Fatalf("%s: %v", user, err)
	}
	t.Cleanup(func() { c.Close(time.Second); cancel() })
	return p
}

func (p *peer) publish(topic string, payload []byte, retained bool) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	// A denied QoS 1 publish is acknowledged all the same (MQTT 3.1.1).
	if err := p.c.Publish(ctx, mqtt.Message{Topic: topic, Payload: payload, QoS: 1, Retained: retained}); err != nil {
		p.t.Fatalf("publish %s: %v", topic, err)
	}
}

func (p *peer) seen(topic string) [][]byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([][]byte(nil), p.got[topic]...)
}

// waitSeen waits until payload arrived on topic.
func (p *peer) waitSeen(topic string, payload []byte, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, m := range p.seen(topic) {
			if bytes.Equal(m, payload) {
				return true
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}

// retained reads what the broker retains under streamqc/v1/# now, through
// a fresh operator session.
func retained(t *testing.T, b *mqtttest.Broker) map[string][]byte {
	t.Helper()
	p := connectAs(t, b, operator, "streamqc/v1/#")
	for {
		select {
		case <-p.any:
			continue
		case <-time.After(500 * time.Millisecond):
		}
		break
	}
	out := map[string][]byte{}
	p.mu.Lock()
	for topic, l := range p.got {
		out[topic] = l[len(l)-1]
	}
	p.mu.Unlock()
	return out
}

// TestACLAgentsCannotActForOthers runs the packaged ACL in a real Mosquitto
// with one password per account and checks every rule that keeps a
// compromised box to itself: what box1 publishes for box2, for the fleet or
// as an operator never reaches anyone (an operator subscribed to everything
// sees nothing of it, and the retained state is untouched), while its own
// topics work, and operators can do what box1 cannot.
func TestACLAgentsCannotActForOthers(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: aclUsers(), ACLFile: aclFile})
	ops := connectAs(t, b, operator, "streamqc/v1/#")
	dash := connectAs(t, b, dashboard, "streamqc/v1/#")
	own, other := schema.NewTopics("test", "box1"), schema.NewTopics("test", "box2")
	box2 := connectAs(t, b, "box2", other.Desired, other.FleetDesired, other.Jobs, other.Job("+").StreamData, other.Stored)
	// box1 subscribes as the agent does, and to what is not its own.
	box1 := connectAs(t, b, "box1", own.Desired, own.FleetDesired, own.Jobs, own.Job("+").StreamData, own.Stored,
		other.Desired, other.Jobs, other.Job("+").StreamData, other.Status, other.Stored, other.Missing, other.Thumbnails,
		schema.Filter("test", "", "events"), schema.Filter("test", "", "events/missing"), "streamqc/v1/#")
	rec := connectAs(t, b, recorderUser, "streamqc/v1/#")
	otherFleet := schema.NewTopics("other", "box2")
	// The state a forger would want to change: box2's retained status, its
	// desired config and job, the fleet's desired config; box1's own too.
	box2.publish(other.Status, []byte(`{"state":"online","agent":"box2"}`), true)
	ops.publish(other.Desired, []byte(`{"version":3,"streams":[]}`), true)
	ops.publish(own.Desired, []byte(`{"version":4,"streams":[]}`), true)
	ops.publish(other.FleetDesired, []byte(`{"version":5}`), true)
	ops.publish(other.Job("j1").Job, []byte(`{"job":"box2"}`), true)
	ops.publish(own.Job("j1").Job, []byte(`{"job":"box1"}`), true)
	ops.publish(own.Job("j1").StreamData, []byte("block for box1"), false)
	ops.publish(other.Job("j1").StreamData, []byte("block for box2"), false)
	// The consumer of record's watermarks of both agents; box2's thumbnail.
	rec.publish(own.Stored, []byte(`{"stored":"box1"}`), true)
	rec.publish(other.Stored, []byte(`{"stored":"box2"}`), true)
	box2.publish(other.Thumbnail("s1", schema.ThumbAlarm), []byte(`{"thumbnail":"box2"}`), true)
	for _, topic := range []string{other.Status, other.Desired, own.Desired, other.FleetDesired, other.Job("j1").Job,
		own.Stored, other.Stored, other.Thumbnail("s1", schema.ThumbAlarm)} {
		if !ops.waitSeen(topic, retainedPayload(t, ops, topic), 5*time.Second) {
			t.Fatalf("the operator's own write on %s did not arrive", topic)
		}
	}
	before := retained(t, b)
	for _, topic := range []string{other.Status, other.Desired, own.Desired, other.FleetDesired, other.Job("j1").Job, own.Job("j1").Job,
		own.Stored, other.Stored, other.Thumbnail("s1", schema.ThumbAlarm)} {
		if before[topic] == nil {
			t.Fatalf("setup: nothing retained on %s", topic)
		}
	}

	denied := []struct {
		who      *peer
		name     string
		topic    string
		retained bool
		payload  string
	}{
		{box1, "box1", other.Events, false, `{"forged":"event"}`},
		{box1, "box1", other.Status, true, `{"state":"offline","forged":true}`},
		{box1, "box1", other.Status, true, ""}, // clearing box2's retained status
		{box1, "box1", other.Metrics, true, `{"forged":"metrics"}`},
		{box1, "box1", other.Reported, true, `{"forged":"reported"}`},
		{box1, "box1", other.Job("j1").Status, true, `{"forged":"job status"}`},
		{box1, "box1", other.Job("j1").StreamGet, false, `{"offset":0,"length":1}`},
		{box1, "box1", other.Desired, true, `{"version":99,"streams":[]}`},
		{box1, "box1", other.Desired, true, ""},
		{box1, "box1", own.Desired, true, `{"version":99,"streams":[]}`},
		{box1, "box1", own.Desired, true, ""},
		{box1, "box1", other.FleetDesired, true, `{"version":99}`},
		{box1, "box1", other.FleetDesired, true, ""},
		{box1, "box1", own.Job("j2").Job, true, `{"forged":"job"}`},
		{box1, "box1", own.Job("j1").Job, true, ""},
		{box1, "box1", other.Job("j1").Job, true, ""},
		{box1, "box1", own.Job("j1").StreamData, false, "forged block"},
		{box1, "box1", otherFleet.Events, false, `{"forged":"other fleet"}`},
		{box1, "box1", "streamqc/v1/test/box1x/events", false, `{"forged":"prefix"}`},
		{box1, "box1", "elsewhere/box1", false, "outside the tree"},
		// Delivery: only the consumer of record writes watermarks; an
		// agent declares missing and publishes thumbnails for itself only.
		{box1, "box1", other.Stored, true, `{"forged":"watermark of box2"}`},
		{box1, "box1", other.Stored, true, ""},
		{box1, "box1", own.Stored, true, `{"forged":"own watermark"}`},
		{box1, "box1", other.Missing, false, `{"forged":"missing of box2"}`},
		{box1, "box1", other.Thumbnail("s1", schema.ThumbAlarm), true, `{"forged":"thumbnail"}`},
		{box1, "box1", "streamqc/v1/test/box1/thumbnails", true, `{"forged":"thumbnails leaf"}`},
		{dash, dashboard, other.Stored, true, `{"forged":"watermark by the dashboard"}`},
		{ops, operator, other.Stored, true, `{"forged":"watermark by an operator"}`},
		{rec, recorderUser, other.Events, false, `{"forged":"event by the recorder"}`},
		{rec, recorderUser, other.Missing, false, `{"forged":"missing by the recorder"}`},
		{rec, recorderUser, other.Status, true, `{"forged":"status by the recorder"}`},
		{rec, recorderUser, other.Desired, true, `{"version":97,"streams":[]}`},
		{rec, recorderUser, other.Job("j1").Job, true, ""},
		{dash, dashboard, other.Desired, true, `{"version":98,"streams":[]}`},
		{dash, dashboard, other.Events, false, `{"forged":"by the dashboard"}`},
		{dash, dashboard, other.Status, true, ""},
		{ops, operator, other.Events, false, `{"forged":"by an operator"}`},
		{ops, operator, other.Status, true, `{"forged":"by an operator"}`},
	}
	for _, d := range denied {
		d.who.publish(d.topic, []byte(d.payload), d.retained)
	}
	// box1 and the dashboard finish with a write of their own (box1) or a
	// marker the operator is allowed (the dashboard cannot write at all):
	// the broker handles a client's publishes in order, so once these
	// arrive, everything above has been delivered or dropped.
	box1.publish(own.Events, []byte(`{"marker":1}`), false)
	if !ops.waitSeen(own.Events, []byte(`{"marker":1}`), 5*time.Second) {
		t.Fatal("box1 could not publish its own events")
	}
	rec.publish(own.Stored, []byte(`{"marker":2}`), false)
	if !ops.waitSeen(own.Stored, []byte(`{"marker":2}`), 5*time.Second) {
		t.Fatal("the consumer of record could not publish box1's watermark")
	}
	time.Sleep(300 * time.Millisecond) // and a margin for other clients' publishes
	for _, d := range denied {
		for _, watcher := range []*peer{ops, dash, box2} {
			for _, m := range watcher.seen(d.topic) {
				if bytes.Equal(m, []byte(d.payload)) && !bytes.Equal(m, before[d.topic]) {
					t.Errorf("%s published %q on %s: it arrived", d.name, d.payload, d.topic)
				}
			}
		}
	}
	after := retained(t, b)
	for topic, was := range before {
		if !bytes.Equal(after[topic], was) {
			t.Errorf("retained %s changed from %q to %q", topic, was, after[topic])
		}
	}

	// box1's own topics, the will included, work.
	allowed := []string{own.Status, own.Metrics, own.Reported, own.Job("j1").Status, own.Job("j1").StreamGet,
		own.Missing, own.Thumbnail("s1", schema.ThumbAlarm), own.Thumbnail("s1", schema.ThumbLive)}
	for i, topic := range allowed {
		box1.publish(topic, []byte(`{"own":`+strconv.Itoa(i)+`}`), topic != own.Job("j1").StreamGet && topic != own.Missing)
	}
	for i, topic := range allowed {
		if !ops.waitSeen(topic, []byte(`{"own":`+strconv.Itoa(i)+`}`), 5*time.Second) {
			t.Errorf("box1's own %s did not arrive", topic)
		}
	}

	// What box1 reads: its desired config, the fleet's, its job and its
	// blocks (retained ones arrived at its subscription; blocks were sent
	// live); nothing of box2's, and no events of anyone.
	for _, topic := range []string{own.Desired, other.FleetDesired, own.Job("j1").Job, own.Job("j1").StreamData, own.Stored} {
		if len(box1.seen(topic)) == 0 {
			t.Errorf("box1 did not receive %s", topic)
		}
	}
	if len(box2.seen(other.Stored)) == 0 {
		t.Error("box2 did not receive its watermark")
	}
	for _, topic := range []string{other.Desired, other.Job("j1").Job, other.Job("j1").StreamData, other.Status, own.Events,
		other.Stored, other.Missing, other.Thumbnail("s1", schema.ThumbAlarm), own.Missing} {
		if n := len(box1.seen(topic)); n > 0 {
			t.Errorf("box1 read %d messages of %s", n, topic)
		}
	}
	// The dashboard reads everything.
	for _, topic := range []string{other.Status, other.Desired, own.Events, own.Status} {
		if len(dash.seen(topic)) == 0 {
			t.Errorf("the dashboard did not receive %s", topic)
		}
	}

	// Operators may clear what agents may not.
	ops.publish(other.Desired, nil, true)
	ops.publish(other.Job("j1").Job, nil, true)
	time.Sleep(200 * time.Millisecond)
	final := retained(t, b)
	if final[other.Desired] != nil || final[other.Job("j1").Job] != nil {
		t.Errorf("operator could not clear retained messages: %q, %q", final[other.Desired], final[other.Job("j1").Job])
	}
}

// retainedPayload is the last payload topic carried for p (setup helper:
// waits until there is one).
func retainedPayload(t *testing.T, p *peer, topic string) []byte {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if l := p.seen(topic); len(l) > 0 {
			return l[len(l)-1]
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing arrived on %s", topic)
	return nil
}

// TestACLLastWill: the broker publishes a client's will with its rights, so
// box1 cannot have box2 declared offline by dying with box2's status as its
// will; its own will works.
func TestACLLastWill(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{Users: aclUsers(), ACLFile: aclFile})
	ops := connectAs(t, b, operator, "streamqc/v1/#")
	box2 := connectAs(t, b, "box2")
	own, other := schema.NewTopics("test", "box1"), schema.NewTopics("test", "box2")
	box2.publish(other.Status, []byte(`{"state":"online"}`), true)
	if !ops.waitSeen(other.Status, []byte(`{"state":"online"}`), 5*time.Second) {
		t.Fatal("box2's status did not arrive")
	}

	forged := []byte(`{"state":"offline","reason":"forged will"}`)
	dieWithWill(t, b, "box1", other.Status, forged)
	mine := []byte(`{"state":"offline","reason":"connection lost"}`)
	dieWithWill(t, b, "box1", own.Status, mine)
	if !ops.waitSeen(own.Status, mine, 5*time.Second) {
		t.Fatal("box1's own will was not published")
	}
	// The wills of the two connections are handled in order; the margin
	// covers the rest.
	time.Sleep(300 * time.Millisecond)
	for _, m := range ops.seen(other.Status) {
		if bytes.Equal(m, forged) {
			t.Fatal("box1's will on box2's status was published")
		}
	}
	if got := retained(t, b)[other.Status]; !bytes.Equal(got, []byte(`{"state":"online"}`)) {
		t.Fatalf("box2's retained status is %q", got)
	}
}

// dieWithWill connects as user with a retained QoS 1 will and drops the
// TCP connection without DISCONNECT, as a box that loses power does
// (written by hand: MQTT clients send DISCONNECT when closed).
func dieWithWill(t *testing.T, b *mqtttest.Broker, user, topic string, payload []byte) {
	t.Helper()
	str := func(s []byte) []byte {
		return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...)
	}
	var body []byte
	body = append(body, str([]byte("MQTT"))...)
	body = append(body, 4)                     // MQTT 3.1.1
	body = append(body, 0x80|0x40|0x20|0x08|4) // username, password, will retain, will QoS 1, will flag
	body = binary.BigEndian.AppendUint16(body, 30)
	body = append(body, str([]byte(fmt.Sprintf("will-%s-%d", user, time.Now().UnixNano())))...)
	body = append(body, str([]byte(topic))...)
	body = append(body, str(payload)...)
	body = append(body, str([]byte(user))...)
	body = append(body, str([]byte(aclUsers()[user]))...)
	pkt := []byte{0x10}
	for n := len(body); ; { // remaining length, variable-length encoded
		d := byte(n % 128)
		if n /= 128; n > 0 {
			d |= 0x80
		}
		pkt = append(pkt, d)
		if n == 0 {
			break
		}
	}
	pkt = append(pkt, body...)
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(b.Port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := conn.Write(pkt); err != nil {
		t.Fatal(err)
	}
	ack := make([]byte, 4)
	if _, err := io.ReadFull(conn, ack); err != nil {
		t.Fatalf("CONNACK: %v", err)
	}
	if ack[0] != 0x20 || ack[3] != 0 {
		t.Fatalf("CONNACK %x: connection refused", ack)
	}
}

// TestACLAgentWithCertificateIdentity runs the agent unchanged behind the
// packaged ACL with one certificate per box as its identity (the broker
// takes the CN as username): it comes online, takes its desired config,
// reports, its events arrive, it takes an update job; an agent whose
// certificate names another box does not start.
func TestACLAgentWithCertificateIdentity(t *testing.T) {
	b := mqtttest.Start(t, mqtttest.Options{TLS: true, CertIdentity: true, ACLFile: aclFile})
	opCert, opKey, err := b.Certs.Issue(operator)
	if err != nil {
		t.Fatal(err)
	}
	ops, err := mqtt.New(mqtt.Options{Broker: b.URL, ClientID: "ops", CAFile: b.Certs.CA, CertFile: opCert, KeyFile: opKey,
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
	if err != nil {
		t.Fatal(err)
	}
	p := &peer{t: t, c: ops, got: map[string][][]byte{}, any: make(chan struct{}, 1)}
	ops.Subscribe("streamqc/v1/#", 1, func(m mqtt.Message) {
		p.mu.Lock()
		p.got[m.Topic] = append(p.got[m.Topic], append([]byte(nil), m.Payload...))
		p.mu.Unlock()
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

	c := agentConfig(t, b, t.TempDir())
	cert, key, err := b.Certs.Issue(c.ID)
	if err != nil {
		t.Fatal(err)
	}
	c.Broker.CAFile, c.Broker.CertFile, c.Broker.KeyFile = b.Certs.CA, cert, key
	c.Firmware.TrustedKeys = []string{trustedKey(t)}

	// A certificate of another box: refused before anything starts.
	wrong := c
	wrong.ID = "box2"
	if err := Run(ctx, Options{Config: wrong, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))}); err == nil ||
		!strings.Contains(err.Error(), `the certificate is for "box1" (its CN), not for agent "box2"`) {
		t.Fatalf("agent box2 with box1's certificate: %v", err)
	}

	startAgent(t, c)
	topics := schema.NewTopics("test", c.ID)
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for !ok() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s", what)
			}
			time.Sleep(25 * time.Millisecond)
		}
	}
	has := func(topic, s string) func() bool {
		return func() bool {
			for _, m := range p.seen(topic) {
				if strings.Contains(string(m), s) {
					return true
				}
			}
			return false
		}
	}
	waitFor("online status", has(topics.Status, `"online"`))
	pctx, pcancel := context.WithTimeout(ctx, 5*time.Second)
	defer pcancel()
	// A file that is not there: the stream fails, which is a signal_loss event.
	if err := ops.Publish(pctx, mqtt.Message{Topic: topics.Desired, QoS: 1, Retained: true,
		Payload: []byte(`{"version":1,"streams":[{"id":"gone","url":"gone.ts"}]}`)}); err != nil {
		t.Fatal(err)
	}
	waitFor("accepted v1", has(topics.Reported, `"status":"accepted","scope":"agent","applied_version":1`))
	waitFor("an event", has(topics.Events, `"signal_loss"`))
	waitFor("metrics", func() bool { return len(p.seen(topics.Metrics)) > 0 })
	// An update job: the agent takes it, reports on it and asks for blocks.
	job := topics.Job("j1")
	if err := ops.Publish(pctx, mqtt.Message{Topic: job.Job, QoS: 1, Retained: true, Payload: jobJSON(t, "j1", fakeRef(50_000), false)}); err != nil {
		t.Fatal(err)
	}
	waitFor("the job's status", has(job.Status, `"downloading"`))
	waitFor("a block request", func() bool { return len(p.seen(job.StreamGet)) > 0 })
}

// TestIoTPolicyMatchesACL: the AWS IoT Core agent policy grants exactly the
// topics the Mosquitto ACL grants an agent, scoped to the thing and its
// fleet attribute; the operator and dashboard policies parse.
func TestIoTPolicyMatchesACL(t *testing.T) {
	acl, err := os.ReadFile(aclFile)
	if err != nil {
		t.Fatal(err)
	}
	const (
		fleetVar = "${iot:Connection.Thing.Attributes[fleet]}"
		thingVar = "${iot:Connection.Thing.ThingName}"
	)
	toIoT := strings.NewReplacer("streamqc/v1/+/%u/", "streamqc/v1/"+fleetVar+"/"+thingVar+"/",
		"streamqc/v1/+/config/", "streamqc/v1/"+fleetVar+"/config/")
	var writes, reads []string
	for _, l := range strings.Split(string(acl), "\n") {
		f := strings.Fields(l)
		if len(f) != 3 || f[0] != "pattern" {
			continue
		}
		switch f[1] {
		case "write":
			writes = append(writes, toIoT.Replace(f[2]))
		case "read":
			reads = append(reads, toIoT.Replace(f[2]))
		default:
			t.Errorf("ACL pattern %q: agents get read or write, never both", l)
		}
	}
	if len(writes) != 8 || len(reads) != 5 {
		t.Fatalf("ACL agent rules: %d writes, %d reads", len(writes), len(reads))
	}
	type statement struct {
		Sid       string
		Condition map[string]map[string]string
		Effect    string
		Action    any
		Resource  any
	}
	load := func(name string) []statement {
		b, err := os.ReadFile(filepath.Join("..", "packaging", "aws-iot", name))
		if err != nil {
			t.Fatal(err)
		}
		var p struct {
			Version   string
			Statement []statement
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&p); err != nil || p.Version != "2012-10-17" || len(p.Statement) == 0 {
			t.Fatalf("%s: %v (version %q)", name, err, p.Version)
		}
		return p.Statement
	}
	list := func(v any) []string {
		switch v := v.(type) {
		case string:
			return []string{v}
		case []any:
			var out []string
			for _, s := range v {
				out = append(out, s.(string))
			}
			return out
		}
		t.Fatalf("%v: not a string or a list", v)
		return nil
	}
	got := map[string][]string{}
	for _, s := range load("streamqc-agent-policy.json") {
		if s.Effect != "Allow" {
			t.Errorf("agent policy: %s statement", s.Effect)
		}
		if slices.Contains(list(s.Action), "iot:Connect") && s.Condition["Bool"]["iot:Connection.Thing.IsAttached"] != "true" {
			t.Error("agent policy: a certificate not attached to the thing may connect as it")
		}
		for _, a := range list(s.Action) {
			for _, r := range list(s.Resource) {
				_, res, ok := strings.Cut(r, ":ACCOUNT:")
				if !ok {
					t.Errorf("%s: not an IoT ARN", r)
				}
				got[a] = append(got[a], res)
			}
		}
	}
	star := strings.NewReplacer("+", "*")
	want := map[string][]string{"iot:Connect": {"client/" + thingVar}}
	for _, w := range writes {
		want["iot:Publish"] = append(want["iot:Publish"], "topic/"+star.Replace(w))
		if !strings.HasSuffix(w, "/events") && !strings.HasSuffix(w, "/events/missing") && !strings.HasSuffix(w, "/stream/get") {
			want["iot:RetainPublish"] = append(want["iot:RetainPublish"], "topic/"+star.Replace(w))
		}
	}
	for _, r := range reads {
		want["iot:Subscribe"] = append(want["iot:Subscribe"], "topicfilter/"+r)
		want["iot:Receive"] = append(want["iot:Receive"], "topic/"+star.Replace(r))
	}
	for a, w := range want {
		if strings.Join(got[a], "\n") != strings.Join(w, "\n") {
			t.Errorf("%s:\n got %q\nwant %q", a, got[a], w)
		}
	}
	if len(got) != len(want) {
		t.Errorf("agent policy actions %v, want %v", slices.Sorted(maps.Keys(got)), slices.Sorted(maps.Keys(want)))
	}
	load("streamqc-operator-policy.json")
	for _, s := range load("streamqc-dashboard-policy.json") {
		for _, a := range list(s.Action) {
			if a != "iot:Connect" && a != "iot:Subscribe" && a != "iot:Receive" {
				t.Errorf("dashboard policy allows %s", a)
			}
		}
	}
	// The consumer of record reads everything and writes only watermarks.
	wrote := false
	for _, s := range load("streamqc-recorder-policy.json") {
		if s.Effect != "Allow" {
			t.Errorf("recorder policy: %s statement", s.Effect)
		}
		for _, a := range list(s.Action) {
			switch a {
			case "iot:Connect", "iot:Subscribe", "iot:Receive":
			case "iot:Publish", "iot:RetainPublish":
				for _, r := range list(s.Resource) {
					wrote = true
					if !strings.HasSuffix(r, ":topic/streamqc/v1/*/*/events/stored") {
						t.Errorf("recorder policy: %s on %s", a, r)
					}
				}
			default:
				t.Errorf("recorder policy allows %s", a)
			}
		}
	}
	if !wrote {
		t.Error("recorder policy: may not publish watermarks")
	}
	// The client ids the commands connect with (cmd/streamqc: broker.go,
	// events.go, dashboard.go) are ones their policy lets connect.
	connects := func(name, id string) bool {
		for _, s := range load(name) {
			if !slices.Contains(list(s.Action), "iot:Connect") {
				continue
			}
			for _, r := range list(s.Resource) {
				_, pat, _ := strings.Cut(r, ":client/")
				if p, ok := strings.CutSuffix(pat, "*"); ok && strings.HasPrefix(id, p) || pat == id {
					return true
				}
			}
		}
		return false
	}
	for _, c := range []struct{ policy, id string }{
		{"streamqc-dashboard-policy.json", "streamqc-cli-0a1b"},
		{"streamqc-dashboard-policy.json", "streamqc-events-ops"},
		{"streamqc-dashboard-policy.json", "streamqc-dashboard-0a1b"},  // --no-record
		{"streamqc-recorder-policy.json", "streamqc-recorder-plant-a"}, // recording, fleet plant-a
		{"streamqc-recorder-policy.json", "streamqc-recorder-all-fleets"},
	} {
		if !connects(c.policy, c.id) {
			t.Errorf("%s: client id %s may not connect", c.policy, c.id)
		}
	}
}

// TestACLPinnedFleet: the shipped ACL lets an agent use its id under any
// fleet name (Mosquitto identities carry no fleet); with the fleet written
// into its pattern lines, as the README says, it is held to its fleet.
func TestACLPinnedFleet(t *testing.T) {
	shipped, err := os.ReadFile(aclFile)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(shipped), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "pattern ") {
			lines[i] = strings.ReplaceAll(l, "streamqc/v1/+/", "streamqc/v1/test/")
		}
	}
	pinned := filepath.Join(t.TempDir(), "pinned.acl")
	if err := os.WriteFile(pinned, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	elsewhere := schema.NewTopics("other", "box1")
	own := schema.NewTopics("test", "box1")
	for _, tc := range []struct {
		acl          string
		otherAllowed bool
	}{{aclFile, true}, {pinned, false}} {
		b := mqtttest.Start(t, mqtttest.Options{Users: aclUsers(), ACLFile: tc.acl})
		ops := connectAs(t, b, operator, "streamqc/v1/#")
		ops.publish(elsewhere.FleetDesired, []byte(`{"version":1}`), true)
		box1 := connectAs(t, b, "box1", elsewhere.FleetDesired)
		box1.publish(elsewhere.Events, []byte(`{"elsewhere":1}`), false)
		box1.publish(own.Events, []byte(`{"marker":1}`), false)
		if !ops.waitSeen(own.Events, []byte(`{"marker":1}`), 5*time.Second) {
			t.Fatalf("%s: box1's own event did not arrive", tc.acl)
		}
		time.Sleep(200 * time.Millisecond)
		if got := len(ops.seen(elsewhere.Events)) > 0; got != tc.otherAllowed {
			t.Errorf("%s: box1's event under fleet \"other\" arrived: %v, want %v", tc.acl, got, tc.otherAllowed)
		}
		if got := len(box1.seen(elsewhere.FleetDesired)) > 0; got != tc.otherAllowed {
			t.Errorf("%s: box1 read fleet \"other\"'s desired config: %v, want %v", tc.acl, got, tc.otherAllowed)
		}
	}
}
