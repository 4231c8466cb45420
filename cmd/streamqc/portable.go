//go:build portable

package main

// The portable flavour (packaging/portable/build.sh) runs on glibc 2.34.
import _ "github.com/streamqc/streamqc/internal/glibccompat"
