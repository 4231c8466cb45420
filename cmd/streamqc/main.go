// Command streamqc watches audio/video streams for perceptible defects.
// It holds subcommands only; the work lives in agent/, detectors/ and gpu/.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/streamqc/streamqc/internal/cudaprobe"
)

// version is stamped at build time (-ldflags "-X main.version=...").
var version = "dev"

const usage = `usage: streamqc <command> [flags]

commands:
  analyze [flags] INPUT   analyze one input to its end and print defect events
  run [--config FILE]     run the agent: many streams, events and metrics to MQTT
  events [flags]          print the alerts of a fleet as they arrive
  dashboard [flags]       serve a live web page of a fleet (agents, streams, events)
  fleet agents|config     list agents; read or push desired configs
  service ACTION          install|uninstall|start|stop|restart|status|unit the system service
  config check FILE       check an agent file, printing every problem
  firmware keygen|sign|verify|push   signed over-the-air updates
  version [-v]            print the version; -v: the FFmpeg inside and what it lacks
  gpu info                the NVIDIA GPUs (driver, memory, NVDEC load); exit 1 without a driver
`

func main() {
	if exe, err := os.Executable(); err == nil {
		target, why := handover(os.Args[1:], os.Getenv, exe, isExecutable, cudaprobe.Probe)
		if target != "" {
			// The same process (systemd's main PID, its notify socket) goes on as streamqc-cuda.
			env := append(os.Environ(), envHandover+"=1")
			if os.Getenv("CUDA_DEVICE_ORDER") == "" {
				// CUDA ordinals as NVML numbers GPUs (placement reads NVML);
				// the cuda build initializes the driver before main runs.
				env = append(env, "CUDA_DEVICE_ORDER=PCI_BUS_ID")
			}
			err := syscall.Exec(target, append([]string{target}, os.Args[1:]...), env)
			fmt.Fprintf(os.Stderr, "streamqc: starting %s: %v; detectors run on the CPU\n", target, err)
		} else if why != "" {
			fmt.Fprintf(os.Stderr, "streamqc: %s\n", why)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	switch args[0] {
	case "analyze":
		return analyzeCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "run":
		return runCmd(ctx, args[1:], os.Stderr)
	case "events":
		return eventsCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "dashboard":
		return dashboardCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "fleet":
		return fleetCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "service":
		return serviceCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "config":
		return configCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "firmware":
		return firmwareCmd(ctx, args[1:], os.Stdout, os.Stderr)
	case "gpu":
		return gpuCmd(args[1:], os.Stdout, os.Stderr)
	case "version", "--version", "-version":
		return versionCmd(args[1:], os.Stdout, os.Stderr)
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "streamqc: unknown command %q\n%s", args[0], usage)
	return 2
}
