// Command gen generates the labelled test clips and prints their truth as JSON.
//
//	go run ./testdata/gen -out DIR [-only black,freeze]
//
// Without -out it fills the cache that tests use (clips.CacheDir).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"

	"github.com/streamqc/streamqc/testdata/clips"
)

func main() {
	out := flag.String("out", "", "directory to write the clips into (default: the test cache, "+
		"$STREAMQC_CLIPS or the user cache dir)")
	only := flag.String("only", "", "comma-separated clip names to generate (default: all: "+
		strings.Join(clips.Names(), ", ")+")")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "gen: unexpected arguments %q\n", flag.Args())
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var names []string
	for _, n := range strings.Split(*only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			names = append(names, n)
		}
	}
	dir := *out
	if dir == "" {
		var err error
		if dir, err = clips.CacheDir(); err != nil {
			fmt.Fprintln(os.Stderr, "gen:", err)
			os.Exit(1)
		}
	}
	truths, err := clips.Generate(ctx, dir, names...)
	if err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(truths); err != nil {
		fmt.Fprintln(os.Stderr, "gen:", err)
		os.Exit(1)
	}
}
