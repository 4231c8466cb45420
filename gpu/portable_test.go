//go:build cuda && portable

package gpu

// The gpu-check bundle's test binary links the portable FFmpeg, whose
// newer-glibc symbols internal/glibccompat provides.
import _ "github.com/streamqc/streamqc/internal/glibccompat"
