package agent

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/streamqc/streamqc/agent/config"
	"github.com/streamqc/streamqc/agent/fleet"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/firmware"
)

// Preflight returns every problem `streamqc run` would refuse the agent's
// file for, each with its field path: the file's own rules, the identity
// the broker sees, the broker's URL and TLS files, the trusted keys (run
// refuses to start on these: startProblems), and what it refuses later: the
// media directory, the firmware keys, and the local streams resolved
// exactly as a desired config is (schemes, hosts, media_dir, detector
// values; run then starts without streams and waits for the fleet's).
// `streamqc config check` prints them all.
func Preflight(cfg config.Agent) []error { return preflight(cfg, true) }

// startProblems are the problems run refuses to start for.
func startProblems(cfg config.Agent) []error { return preflight(cfg, false) }

func preflight(cfg config.Agent, all bool) []error {
	var problems []error
	field := func(path string, err error) {
		if err != nil {
			problems = append(problems, &config.FieldError{Path: path, Err: err})
		}
	}
	problems = append(problems, config.Problems(cfg.Validate())...)
	problems = append(problems, config.Problems(config.CheckIdentity(cfg))...)
	if cfg.Broker.URL != "" {
		urlErr, tlsErr := mqtt.CheckBroker(ClientOptions(cfg.Broker, "preflight", nil))
		field("broker.url", urlErr)
		field("broker", tlsErr)
	}
	for i, k := range cfg.Config.TrustedKeys {
		if k != "" {
			_, err := firmware.LoadPublicKey(k)
			field(fmt.Sprintf("config.trusted_keys[%d]", i), err)
		}
	}
	if !all {
		return problems
	}
	for i, k := range cfg.Firmware.TrustedKeys {
		if k != "" {
			_, err := firmware.LoadPublicKey(k)
			field(fmt.Sprintf("firmware.trusted_keys[%d]", i), err)
		}
	}
	problems = append(problems, promProblems(cfg)...)
	if cfg.MediaDir != "" {
		if st, err := os.Stat(cfg.MediaDir); err != nil {
			field("media_dir", err)
		} else if !st.IsDir() {
			field("media_dir", fmt.Errorf("%s is not a directory", cfg.MediaDir))
		}
	}
	det, err := cfg.DetectorDefaults()
	if err != nil {
		problems = append(problems, config.Problems(err)...)
		return problems
	}
	p := fleet.Policy{MediaDir: cfg.MediaDir, Schemes: cfg.Schemes, Detectors: det,
		AllowLocalHosts: cfg.AllowLocalHosts, MetricsInterval: time.Duration(cfg.MetricsInterval)}
	// Each stream alone first (Resolve stops at the first problem), then all
	// together (ids unique).
	bad := false
	for i := range cfg.Streams {
		if _, err := fleet.Resolve(p, nil, &fleet.Desired{Streams: cfg.Streams[i : i+1]}); err != nil {
			msg := strings.Replace(err.Error(), "streams[0]", fmt.Sprintf("streams[%d]", i), 1)
			fe := &config.FieldError{Err: errors.New(msg)}
			if path, rest, ok := strings.Cut(msg, ": "); ok && strings.HasPrefix(path, "streams[") && !strings.Contains(path, " ") {
				fe.Path, fe.Err = path, errors.New(rest)
			}
			problems, bad = append(problems, fe), true
		}
	}
	if !bad && len(cfg.Streams) > 0 {
		if _, err := fleet.Resolve(p, nil, &fleet.Desired{Streams: cfg.Streams}); err != nil {
			problems = append(problems, &config.FieldError{Err: err})
		}
	}
	return problems
}

// preflightError joins Preflight's problems for run's refusal.
func preflightError(problems []error) error {
	if len(problems) == 0 {
		return nil
	}
	return fmt.Errorf("config: %w", errors.Join(problems...))
}
