//go:build cuda

package gpu

import (
	"fmt"
	"sync"

	"github.com/streamqc/streamqc/detectors"
)

// Accelerator opens each GPU once, when a first pipeline asks for it, and
// gives every pipeline a Backend of its own on it (detectors.Accelerator).
type Accelerator struct {
	mu      sync.Mutex
	devices map[int]*Device
}

// NewAccelerator returns an Accelerator with no GPU opened yet.
func NewAccelerator() *Accelerator { return &Accelerator{devices: map[int]*Device{}} }

// Backend implements detectors.Accelerator.
func (a *Accelerator) Backend(ordinal int, cfg detectors.Config) (detectors.VideoBackend, func(), error) {
	a.mu.Lock()
	d, ok := a.devices[ordinal]
	if !ok {
		var err error
		if d, err = Open(ordinal); err != nil {
			a.mu.Unlock()
			return nil, nil, fmt.Errorf("cuda backend: %w", err)
		}
		a.devices[ordinal] = d
	}
	a.mu.Unlock()
	b, err := d.NewBackend(cfg)
	if err != nil {
		return nil, nil, fmt.Errorf("cuda backend: %w", err)
	}
	return b, b.Close, nil
}

// Close releases every GPU opened.
func (a *Accelerator) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	var first error
	for n, d := range a.devices {
		if err := d.Close(); err != nil && first == nil {
			first = err
		}
		delete(a.devices, n)
	}
	return first
}
