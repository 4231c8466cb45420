package schema

// DefectEvent is one event line of `streamqc analyze --format json`.
type DefectEvent struct {
	Type     string             `json:"type"`
	Stream   string             `json:"stream"`
	Defect   string             `json:"defect"`
	State    string             `json:"state"`
	Start    float64            `json:"start"`
	End      *float64           `json:"end,omitempty"`
	Duration *float64           `json:"duration,omitempty"`
	Reason   string             `json:"reason,omitempty"`
	Values   map[string]float64 `json:"values,omitempty"`
}

// AgentEvent is the payload on an agent's events topic (event.schema.json): the
// analyze event plus who sent it, a unique id, the spool sequence and the
// wall time.
type AgentEvent struct {
	DefectEvent
	ID    string `json:"id"`
	Seq   uint64 `json:"seq"`
	Fleet string `json:"fleet"`
	Agent string `json:"agent"`
	Time  string `json:"time"`
}
