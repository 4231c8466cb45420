package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/streamqc/streamqc/agent"
	"github.com/streamqc/streamqc/agent/config"
)

// configCheckDefault is where `streamqc run` and `config check` look by default.
const configCheckDefault = "/etc/streamqc/agent.yaml"

const configUsage = `usage: streamqc config check [FILE]

  check [FILE]   check the agent's file (default ` + configCheckDefault + `) with the
                 STREAMQC_* environment overrides applied, as ` + "`streamqc run`" + ` would
                 read it; print every problem with its field path

exit status: 0 valid, 1 problems found, 2 usage error or unreadable file
`

// configCmd runs `streamqc config ...`.
func configCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return configCmdEnv(ctx, args, stdout, stderr, os.LookupEnv)
}

// configCmdEnv is configCmd with the environment given by lookup.
func configCmdEnv(_ context.Context, args []string, stdout, stderr io.Writer, lookup func(string) (string, bool)) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, configUsage)
		return 2
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, configUsage)
		return 0
	case "check":
	default:
		fmt.Fprintf(stderr, "streamqc config: unknown command %q\n%s", args[0], configUsage)
		return 2
	}
	args = args[1:]
	file := configCheckDefault
	switch {
	case len(args) == 1 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help"):
		fmt.Fprint(stdout, configUsage)
		return 0
	case len(args) == 1 && strings.HasPrefix(args[0], "-"):
		fmt.Fprintf(stderr, "streamqc config check: unknown flag %q\n%s", args[0], configUsage)
		return 2
	case len(args) == 1:
		file = args[0]
	case len(args) > 1:
		fmt.Fprintf(stderr, "streamqc config check: one FILE at most\n%s", configUsage)
		return 2
	}
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc config check: %v\n", err)
		return 2
	}
	a := config.DefaultAgent()
	err = config.ParseAgentEnv(b, &a, lookup)
	// What `streamqc run` checks on the box's files before it starts too.
	problems := config.Problems(err)
	var fe *config.FieldError
	if notYAML := errors.As(err, &fe) && len(problems) == 1 && fe.Path == "" && fe.Line == 0; !notYAML {
		// What run refuses, from run's own code. It checks the file's rules
		// again, and resolving the local streams repeats some of them
		// (stream ids): each problem is said once.
		seen := map[string]bool{}
		for _, p := range problems {
			seen[p.Error()] = true
		}
		for _, p := range agent.Preflight(a) {
			if !seen[p.Error()] {
				seen[p.Error()] = true
				problems = append(problems, p)
			}
		}
	}
	problems = config.WithLines(b, problems)
	if len(problems) > 0 {
		for _, p := range problems {
			for _, line := range strings.Split(p.Error(), "\n") {
				fmt.Fprintf(stderr, "%s: %s\n", file, line)
			}
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok\n", file)
	fmt.Fprintf(stdout, "fleet %s, agent %s, broker %s, %d streams\n", a.Fleet, a.ID, a.Broker.URL, len(a.Streams))
	return 0
}
