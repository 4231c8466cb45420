//go:build unix

package agent

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter measures the process's CPU time between two calls.
type cpuMeter struct {
	last    time.Duration
	lastAt  time.Time
	started bool
}

func newCPUMeter() *cpuMeter {
	c := &cpuMeter{}
	c.percent()
	return c
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// percent is CPU time over wall time since the last call, in % of one core.
func (c *cpuMeter) percent() float64 {
	now, t := time.Now(), cpuTime()
	defer func() { c.last, c.lastAt, c.started = t, now, true }()
	if !c.started || !now.After(c.lastAt) {
		return 0
	}
	p := 100 * float64(t-c.last) / float64(now.Sub(c.lastAt))
	return float64(int64(p*10)) / 10
}

// rss is the resident set size from /proc (0 where there is none).
func rss() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
