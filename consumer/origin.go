package consumer

import (
	"fmt"
	"strings"

	"github.com/streamqc/streamqc/schema"
)

// CheckOrigin refuses a payload whose fleet or agent is not the one of the
// topic it came on (streamqc/v1/{fleet}/{agent}/...): the broker's ACL
// vouches for the topic only, so a payload naming another agent is forged
// or misrouted and is not believed.
func CheckOrigin(topic, fleet, agent string) error {
	parts := strings.Split(topic, "/")
	if len(parts) < 5 || parts[0]+"/"+parts[1] != schema.Root {
		return fmt.Errorf("topic %.200q is not an agent's", topic)
	}
	if fleet != parts[2] || agent != parts[3] {
		return fmt.Errorf("%s: its payload claims to be from %.64q/%.64q", topic, fleet, agent)
	}
	return nil
}
