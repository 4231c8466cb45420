package schema

import (
	"encoding/base64"
	"encoding/json"
	"strings"
)

// Root is the versioned root of every streamqc topic.
const Root = "streamqc/v1"

// Topics of one agent.
type Topics struct {
	Status       string // retained: online/offline (the offline form is the last will)
	Events       string // QoS 1: defect events
	Metrics      string // QoS 0, retained: the latest metrics
	Desired      string // retained, written by operators
	Reported     string // retained, written by the agent
	FleetDesired string // retained: defaults of the whole fleet
	// Jobs is the filter of the agent's update jobs (retained, written by
	// operators): .../jobs/{job_id}; see Job for the topics of one job.
	Jobs string
	// Stored is written by the fleet's consumer of record (retained, QoS 1):
	// the highest event seq it has stored without a gap (Stored). Agents
	// keep events in their spool until it covers them.
	Stored string
	// Missing is written by the agent (QoS 1, not retained): event seqs it
	// will never send (Missing), so that the consumer of record moves past.
	Missing string
	// Thumbnails is the filter of the agent's thumbnails (retained):
	// .../thumbnails/{stream}/{kind}; see Thumbnail.
	Thumbnails string
	root       string
}

// Kinds of thumbnails: the picture that raised an alarm, and the periodic
// low-rate picture of every stream (off by default) that feeds a mosaic.
const (
	ThumbAlarm = "alarm"
	ThumbLive  = "live"
)

// Thumbnail names the retained topic of a stream's latest thumbnail of a
// kind (ThumbAlarm, ThumbLive).
func (t Topics) Thumbnail(stream, kind string) string {
	return t.root + "/thumbnails/" + stream + "/" + kind
}

// JobTopics are the topics of one update job.
type JobTopics struct {
	Job        string // retained, operators: the job document
	Status     string // retained, the agent: its progress
	StreamGet  string // the agent: block requests of a streamed bundle
	StreamData string // the streamer (firmware push): the blocks
}

// Job names the topics of one job of the agent.
func (t Topics) Job(id string) JobTopics {
	j := t.root + "/jobs/" + id
	return JobTopics{Job: j, Status: j + "/status", StreamGet: j + "/stream/get", StreamData: j + "/stream/data"}
}

// JobID returns the job id of a topic under Jobs ("" if it is not one).
func (t Topics) JobID(topic string) string {
	id, ok := strings.CutPrefix(topic, t.root+"/jobs/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return ""
	}
	return id
}

// NewTopics names the topics of agent in fleet.
func NewTopics(fleet, agent string) Topics {
	a := Root + "/" + fleet + "/" + agent
	return Topics{
		Status:       a + "/status",
		Events:       a + "/events",
		Metrics:      a + "/metrics",
		Desired:      a + "/config/desired",
		Reported:     a + "/config/reported",
		FleetDesired: Root + "/" + fleet + "/config/desired",
		Jobs:         a + "/jobs/+",
		Stored:       a + "/events/stored",
		Missing:      a + "/events/missing",
		Thumbnails:   a + "/thumbnails/+/+",
		root:         a,
	}
}

// Filter is a subscription filter over the agents of a fleet ("+" for all)
// for one of the agent topics (status, events, events/stored, metrics,
// thumbnails/+/+, config/reported...).
func Filter(fleet, agent, leaf string) string {
	if fleet == "" {
		fleet = "+"
	}
	if agent == "" {
		agent = "+"
	}
	return Root + "/" + fleet + "/" + agent + "/" + leaf
}

// PeekVersion reads a desired document's version, 0 when it has none; for
// a signed envelope, the version of the document inside (not verified).
func PeekVersion(b []byte) int64 {
	if IsEnvelope(b) {
		var e Envelope
		if json.Unmarshal(b, &e) != nil {
			return 0
		}
		doc, err := base64.StdEncoding.DecodeString(e.Payload)
		if err != nil || IsEnvelope(doc) {
			return 0
		}
		b = doc
	}
	var v struct {
		Version int64 `json:"version"`
	}
	if json.Unmarshal(b, &v) != nil {
		return 0
	}
	return v.Version
}
