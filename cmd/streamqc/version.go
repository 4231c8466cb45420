package main

import (
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/streamqc/streamqc/media"
)

// versionCmd prints the version; with -v also the FFmpeg this binary runs on
// (linked in, or the system's) and every component an input needs that it
// lacks (exit 1 then).
func versionCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("version", "[-v]", "Prints the version; -v also the FFmpeg this binary runs on and the components\nthe inputs need that it lacks (exit 1 then).", stdout, stderr)
	verbose := fs.Bool("v", false, "also print the FFmpeg inside and check its components")
	if code, done := fs.parse(args); done {
		return code
	}
	if len(fs.operands) > 0 {
		return fs.fail("unexpected argument %q", fs.operands[0])
	}
	fmt.Fprintln(stdout, "streamqc", version)
	if !*verbose {
		return 0
	}
	v, conf := media.FFmpegVersion()
	fmt.Fprintf(stdout, "go: %s %s/%s\nffmpeg: %s\nffmpeg configuration: %s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH, v, conf)
	missing := media.Missing()
	if len(missing) == 0 {
		fmt.Fprintf(stdout, "components: all %d inputs need are present\n", len(media.Required()))
		return 0
	}
	names := make([]string, len(missing))
	for i, c := range missing {
		names[i] = c.String()
	}
	fmt.Fprintf(stdout, "components: missing %s\n", strings.Join(names, ", "))
	return 1
}
