package fleet

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/streamqc/streamqc/internal/atomicfile"
)

// Store keeps the last accepted documents on disk so that a restart without
// a broker runs the last good config.
type Store struct {
	Dir string
}

const (
	agentFile = "desired.json"
	fleetFile = "fleet.json"
)

// Load returns the stored agent and fleet documents (nil when absent).
func (s Store) Load() (agent, fleet []byte, err error) {
	agent, err = s.read(agentFile)
	if err != nil {
		return nil, nil, err
	}
	fleet, err = s.read(fleetFile)
	return agent, fleet, err
}

func (s Store) read(name string) ([]byte, error) {
	b, err := os.ReadFile(filepath.Join(s.Dir, name))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("config store: %w", err)
	}
	return b, nil
}

// SaveAgent stores the accepted agent document.
func (s Store) SaveAgent(b []byte) error { return s.write(agentFile, b) }

// SaveFleet stores the accepted fleet document.
func (s Store) SaveFleet(b []byte) error { return s.write(fleetFile, b) }

// write replaces a file atomically: a crash leaves the old or the new
// document, never a mix.
func (s Store) write(name string, b []byte) error {
	if err := os.MkdirAll(s.Dir, 0o750); err != nil {
		return fmt.Errorf("config store: %w", err)
	}
	if err := atomicfile.WriteBytes(filepath.Join(s.Dir, name), 0o600, b); err != nil {
		return fmt.Errorf("config store: %w", err)
	}
	return nil
}
