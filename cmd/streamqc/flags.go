package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// cmdFlags gives every command the same help and the same usage errors:
// `-h`/`--help` prints "usage: streamqc NAME ARGS", what it does and its flags
// on stdout, exit 0; a bad flag or operand prints the reason and the usage
// line on stderr, exit 2.
type cmdFlags struct {
	*flag.FlagSet
	name, usage, about string
	stdout, stderr     io.Writer
	operands           []string
}

func newFlags(name, usage, about string, stdout, stderr io.Writer) *cmdFlags {
	c := &cmdFlags{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), name: name, usage: usage, about: about,
		stdout: stdout, stderr: stderr}
	c.SetOutput(stderr) // the flag package's own messages ("flag provided but not defined")
	c.Usage = func() {}
	return c
}

// parse reads flags and operands in any order; done means return code.
func (c *cmdFlags) parse(args []string) (code int, done bool) {
	c.operands = nil
	for {
		if err := c.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				c.help(c.stdout)
				return 0, true
			}
			return c.usageLine(), true
		}
		rest := c.Args()
		if len(rest) == 0 {
			return 0, false
		}
		c.operands = append(c.operands, rest[0])
		args = rest[1:]
	}
}

// help prints the command's whole help to w.
func (c *cmdFlags) help(w io.Writer) {
	fmt.Fprintf(w, "usage: streamqc %s %s\n", c.name, c.usage)
	if c.about != "" {
		fmt.Fprintf(w, "\n%s\n", strings.TrimSpace(c.about))
	}
	has := false
	c.VisitAll(func(*flag.Flag) { has = true })
	if has {
		fmt.Fprintln(w, "\nflags:")
		c.SetOutput(w)
		c.PrintDefaults()
		c.SetOutput(c.stderr)
	}
}

// usageLine prints the usage line after an error on stderr: exit 2.
func (c *cmdFlags) usageLine() int {
	fmt.Fprintf(c.stderr, "usage: streamqc %s %s\n(streamqc %s --help: every flag)\n", c.name, c.usage, c.name)
	return 2
}

// fail reports a usage error: the reason, then the usage line; exit 2.
func (c *cmdFlags) fail(format string, a ...any) int {
	fmt.Fprintf(c.stderr, "streamqc %s: %s\n", c.name, fmt.Sprintf(format, a...))
	return c.usageLine()
}

// isHelp reports whether a command group's first argument asks for help.
func isHelp(args []string) bool {
	return len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help" || args[0] == "help")
}

// groupUsage prints a command group's usage: on stdout for help (exit 0),
// on stderr for a missing or unknown subcommand (exit 2).
func groupUsage(args []string, usage string, stdout, stderr io.Writer) int {
	if isHelp(args) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) > 0 {
		fmt.Fprintf(stderr, "streamqc: unknown subcommand %q\n", args[0])
	}
	fmt.Fprint(stderr, usage)
	return 2
}
