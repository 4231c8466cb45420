// Package schema holds the JSON Schema of every MQTT payload streamqc writes
// or reads (the *.schema.json files beside this one, embedded) and validates
// documents against them: the agent checks incoming desired configs, the tests
// check every payload the agent publishes.
package schema

import (
	"bytes"
	"embed"
	"fmt"
	"io/fs"
	"strings"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"golang.org/x/text/language"
	"golang.org/x/text/message"
)

//go:embed *.schema.json
var files embed.FS

// Base is the URL the schemas' $id live under.
const Base = "https://streamqc.dev/schema/v1/"

// Names of the payload schemas.
const (
	Event        = "event"
	Status       = "status"
	Metrics      = "metrics"
	Desired      = "desired"
	FleetDesired = "fleet-desired"
	Reported     = "reported"
	Job          = "job"
	JobStatus    = "job-status"
	Thumbnail    = "thumbnail"
	Stored       = "stored"
	Missing      = "missing"
)

// Set is the compiled schemas.
type Set struct {
	byName map[string]*jsonschema.Schema
}

// Load compiles every embedded schema.
func Load() (*Set, error) {
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	names, err := fs.Glob(files, "*.schema.json")
	if err != nil {
		return nil, fmt.Errorf("schema: %w", err)
	}
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", n, err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", n, err)
		}
		if err := c.AddResource(Base+n, doc); err != nil {
			return nil, fmt.Errorf("schema %s: %w", n, err)
		}
	}
	s := &Set{byName: map[string]*jsonschema.Schema{}}
	for _, n := range names {
		sch, err := c.Compile(Base + n)
		if err != nil {
			return nil, fmt.Errorf("schema %s: %w", n, err)
		}
		s.byName[strings.TrimSuffix(n, ".schema.json")] = sch
	}
	return s, nil
}

// Validate checks one JSON document against the named schema. The error lists
// every violation with its JSON path.
func (s *Set) Validate(name string, doc []byte) error {
	sch := s.byName[name]
	if sch == nil {
		return fmt.Errorf("schema %q: unknown", name)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(doc))
	if err != nil {
		return fmt.Errorf("not JSON: %w", err)
	}
	if err := sch.Validate(v); err != nil {
		return fmt.Errorf("%s", flatten(err))
	}
	return nil
}

// flatten turns the library's indented multi-line error into one line per
// violation joined with "; ", which fits a log line and a reported reason.
func flatten(err error) string {
	ve, ok := err.(*jsonschema.ValidationError)
	if !ok {
		return err.Error()
	}
	printer := message.NewPrinter(language.English)
	var out []string
	var walk func(e *jsonschema.ValidationError)
	walk = func(e *jsonschema.ValidationError) {
		if len(e.Causes) == 0 {
			loc := "/" + strings.Join(e.InstanceLocation, "/")
			out = append(out, fmt.Sprintf("%s: %s", loc, e.ErrorKind.LocalizedString(printer)))
			return
		}
		for _, c := range e.Causes {
			walk(c)
		}
	}
	walk(ve)
	return strings.Join(out, "; ")
}
