//go:build !unix

package agent

import "runtime"

type cpuMeter struct{}

func newCPUMeter() *cpuMeter         { return &cpuMeter{} }
func (c *cpuMeter) percent() float64 { return 0 }

func rss() int64 {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.Sys)
}
