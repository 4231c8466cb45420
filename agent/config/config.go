// Package config loads and validates settings: detector settings for
// `analyze` now, the agent's file and fleet documents later.
package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/streamqc/streamqc/detectors"
)

// maxConfigSize bounds a config file read into memory.
const maxConfigSize = 1 << 20

// Detectors returns the default detector settings, overlaid with a JSON file
// (if path is not empty) and then with key=value settings such as
// "black.min_duration=3". Unknown fields are errors that name the field.
func Detectors(path string, sets []string) (detectors.Config, error) {
	cfg := detectors.DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if len(b) > maxConfigSize {
			return cfg, fmt.Errorf("config %s: larger than %d bytes", path, maxConfigSize)
		}
		if err := MergeJSON(&cfg, b); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	for _, s := range sets {
		if err := Set(&cfg, s); err != nil {
			return cfg, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// MergeJSON overlays a JSON document on cfg; fields it does not name keep
// their values, and fields cfg does not have are refused.
func MergeJSON(cfg *detectors.Config, b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(cfg); err != nil {
		return err
	}
	if dec.More() {
		return fmt.Errorf("trailing data after the JSON document")
	}
	return nil
}

// Set applies one "detector.field=value" setting.
func Set(cfg *detectors.Config, kv string) error {
	key, val, ok := strings.Cut(kv, "=")
	if !ok {
		return fmt.Errorf("setting %q: want detector.field=value", kv)
	}
	parts := strings.Split(strings.TrimSpace(key), ".")
	if len(parts) != 2 || parts[0] == "" || parts[1] == "" {
		return fmt.Errorf("setting %q: want detector.field=value", kv)
	}
	val = strings.TrimSpace(val)
	// Numbers and booleans go in bare; anything else is refused by the decoder.
	if _, err := strconv.ParseFloat(val, 64); err != nil && val != "true" && val != "false" {
		return fmt.Errorf("setting %s: %q is not a number or a boolean", key, val)
	}
	doc := fmt.Sprintf(`{%q:{%q:%s}}`, parts[0], parts[1], val)
	if err := MergeJSON(cfg, []byte(doc)); err != nil {
		return fmt.Errorf("setting %s: %w", key, err)
	}
	return nil
}
