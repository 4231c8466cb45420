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
	Cause    string             `json:"cause,omitempty"`
	Values   map[string]float64 `json:"values,omitempty"`
	// Thumbnail is the id of the thumbnail of the picture that raised an
	// alarm (agents only, when one is made; an alarm raised between
	// pictures gets the next one): it arrives retained on
	// Topics.Thumbnail(stream, ThumbAlarm), possibly after the event.
	Thumbnail string `json:"thumbnail,omitempty"`
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

// ThumbnailDoc is the payload of a thumbnail topic (thumbnail.schema.json):
// a small JPEG of a decoded picture, retained per stream and kind.
type ThumbnailDoc struct {
	Type   string `json:"type"` // "thumbnail"
	ID     string `json:"id"`   // what DefectEvent.Thumbnail names
	Fleet  string `json:"fleet"`
	Agent  string `json:"agent"`
	Stream string `json:"stream"`
	Kind   string `json:"kind"` // ThumbAlarm or ThumbLive
	// Event and Defect: for an alarm thumbnail, the event id and the
	// defect it illustrates.
	Event  string `json:"event,omitempty"`
	Defect string `json:"defect,omitempty"`
	// PTS is the picture's media time (seconds from the start of the
	// stream's session), Time the wall clock when it was taken.
	PTS         float64 `json:"pts"`
	Time        string  `json:"time"`
	Width       int     `json:"width"`
	Height      int     `json:"height"`
	ContentType string  `json:"content_type"` // "image/jpeg"
	Data        []byte  `json:"data"`         // the image, base64 in JSON
}

// StoredDoc is the payload of Topics.Stored (stored.schema.json), written by
// the consumer of record after it stores events.
type StoredDoc struct {
	Type     string `json:"type"`     // "stored"
	Consumer string `json:"consumer"` // the consumer of record's name
	// Seq is the highest seq S such that every event seq 1..S of the agent
	// is stored or declared missing by the agent. Events with a higher seq
	// may be stored too (out of order).
	Seq uint64 `json:"seq"`
	// Gap: the consumer holds events above Seq, so Seq+1 is missing; the
	// agent sends again from Seq+1 (or declares it Missing).
	Gap bool `json:"gap,omitempty"`
	// Lost counts the seqs the agent declared missing so far.
	Lost uint64 `json:"lost,omitempty"`
	Time string `json:"time"`
}

// MissingDoc is the payload of Topics.Missing (missing.schema.json): the
// agent will never send events From..To (inclusive): they were dropped
// from its full spool, could not be read back, or never written.
type MissingDoc struct {
	Type   string `json:"type"` // "missing"
	From   uint64 `json:"from"`
	To     uint64 `json:"to"`
	Reason string `json:"reason"` // "dropped", "unreadable", "unwritten"
	Time   string `json:"time"`
}
