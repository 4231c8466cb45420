// Package fleet is the agent's config plane: the MQTT topic tree, the desired
// config documents operators write (one per agent, plus fleet-wide defaults),
// their validation (schema, then every field against the agent's policy), the
// merge into per-stream settings, and the last good documents on disk.
package fleet

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
	}
}

// Filter is a subscription filter over the agents of a fleet ("+" for all)
// for one of the agent topics (status, events, metrics, config/reported...).
func Filter(fleet, agent, leaf string) string {
	if fleet == "" {
		fleet = "+"
	}
	if agent == "" {
		agent = "+"
	}
	return Root + "/" + fleet + "/" + agent + "/" + leaf
}
