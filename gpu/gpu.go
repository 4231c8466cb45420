//go:build cuda

// Package gpu computes the video features of frames that NVDEC left in GPU
// memory, in place, with the kernels of gpu/kernels: the same structs as the
// CPU reference in detectors/ (integer counts identical, inspected at full
// resolution where the CPU samples), folded by the same detectors code, so
// the decisions cannot tell the backends apart. Only a few hundred bytes of
// counters come back to the host per frame.
//
// The build tag cuda links libcuda (gorgonia.org/cu): a binary built with it
// starts only where the NVIDIA driver is; the agent's launcher runs the CPU
// build elsewhere (firmware/flavor.go).
package gpu

/*
#cgo LDFLAGS: -lcuda
#include <cuda.h>

static CUresult sq_alloc_host(void **p, size_t n) { return cuMemAllocHost(p, n); }
static CUresult sq_free_host(void *p) { return cuMemFreeHost(p); }
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"sync"
	"unsafe"

	"gorgonia.org/cu"

	"github.com/streamqc/streamqc/detectors"
	"github.com/streamqc/streamqc/gpu/kernels"
)

// Device is one GPU: its primary context (the one FFmpeg's CUDA device uses
// with primary_ctx=1, so decoded surfaces are addressable here) and the
// kernels loaded into it. Backends of many pipelines share it.
type Device struct {
	Ordinal int
	Name    string
	dev     cu.Device
	ctx     cu.CUContext
	mod     cu.Module
	fn      [5]cu.Function // black, freeze, vertical, horizontal, freeze cells
	mu      sync.Mutex
	closed  bool
}

// Open retains device ordinal's primary context and loads the kernels (the
// driver compiles the PTX for the GPU at hand).
func Open(ordinal int) (*Device, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	dev, err := cu.GetDevice(ordinal)
	if err != nil {
		return nil, fmt.Errorf("gpu %d: %w", ordinal, err)
	}
	d := &Device{Ordinal: ordinal, dev: dev}
	d.Name, _ = dev.Name()
	if d.ctx, err = dev.RetainPrimaryCtx(); err != nil {
		return nil, fmt.Errorf("gpu %d: primary context: %w", ordinal, err)
	}
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("gpu %d: %w", ordinal, err)
	}
	if d.mod, err = cu.LoadData(kernels.PTX); err != nil {
		dev.ReleasePrimaryCtx()
		return nil, fmt.Errorf("gpu %d: loading the kernels: %w", ordinal, err)
	}
	for i, name := range []string{kernels.Black, kernels.Freeze, kernels.BlockVertical, kernels.BlockHorizontal, kernels.FreezeCells} {
		if d.fn[i], err = d.mod.Function(name); err != nil {
			d.mod.Unload()
			dev.ReleasePrimaryCtx()
			return nil, fmt.Errorf("gpu %d: kernel %s: %w", ordinal, name, err)
		}
	}
	return d, nil
}

// Close unloads the kernels and releases the primary context.
func (d *Device) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil
	}
	d.closed = true
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err := cu.SetCurrentContext(d.ctx)
	if err == nil {
		err = d.mod.Unload()
	}
	return errors.Join(err, d.dev.ReleasePrimaryCtx())
}

// counter layout of a backend's device buffer (int64s).
const (
	offBlack  = 0
	offFreeze = offBlack + kernels.BlackCounters
	offBands  = offFreeze + kernels.FreezeCounters
)

// Backend measures one pipeline's frames on a Device: its own CUDA stream,
// counters on the device and their pinned copy on the host. It implements
// detectors.VideoBackend; frames in host memory (software decoding) go to
// the CPU reference. Like the Analyzer that calls it, it serves one
// goroutine.
type Backend struct {
	d      *Device
	cfg    detectors.Config
	cpu    detectors.CPUBackend
	stream cu.Stream
	dev    cu.DevicePtr // counters
	host   unsafe.Pointer
	words  int // counters allocated
	bands  []detectors.BandCounts
	// Kernel parameters live here, not on the stack: Launch reads each as
	// 8 bytes through a pointer, and these escape once, not per frame.
	p      [11]int64
	params [11]unsafe.Pointer
	err    error       // the first device error; later frames go to the CPU... if they can
	thumb  thumbScaler // thumbnails (thumb.go)
}

// NewBackend makes a pipeline's backend on d.
func (d *Device) NewBackend(cfg detectors.Config) (*Backend, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(d.ctx); err != nil {
		return nil, fmt.Errorf("gpu %d: %w", d.Ordinal, err)
	}
	s, err := cu.MakeStream(cu.NonBlocking)
	if err != nil {
		return nil, fmt.Errorf("gpu %d: stream: %w", d.Ordinal, err)
	}
	b := &Backend{d: d, cfg: cfg, cpu: detectors.CPUBackend{Config: cfg}, stream: s}
	for i := range b.p {
		b.params[i] = unsafe.Pointer(&b.p[i])
	}
	return b, nil
}

// Err is the device error that stopped the backend, if any.
func (b *Backend) Err() error { return b.err }

// grow makes room for the counters of a picture height.
func (b *Backend) grow(height int) error {
	n := offBands + kernels.BandCounters*detectors.BlockBands(height)
	if n <= b.words {
		return nil
	}
	b.free()
	dev, err := cu.MemAlloc(int64(8 * n))
	if err != nil {
		return fmt.Errorf("gpu %d: counters: %w", b.d.Ordinal, err)
	}
	var host unsafe.Pointer
	if r := C.sq_alloc_host(&host, C.size_t(8*n)); r != C.CUDA_SUCCESS {
		cu.MemFree(dev)
		return fmt.Errorf("gpu %d: pinned counters: CUDA error %d", b.d.Ordinal, int(r))
	}
	b.dev, b.host, b.words = dev, host, n
	b.bands = make([]detectors.BandCounts, detectors.BlockBands(height))
	return nil
}

func (b *Backend) free() {
	if b.words == 0 {
		return
	}
	cu.MemFree(b.dev)
	C.sq_free_host(b.host)
	b.words = 0
}

// Close frees the backend's memory and stream.
func (b *Backend) Close() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if cu.SetCurrentContext(b.d.ctx) != nil {
		return
	}
	b.free()
	b.thumb.free()
	b.stream.Destroy()
}

// launch runs kernel fn over grid blocks with the first n parameters.
func (b *Backend) launch(fn cu.Function, grid, n int) error {
	return fn.Launch(grid, 1, 1, kernels.ThreadsPerBlock, 1, 1, 0, b.stream, b.params[:n])
}

// Measure implements detectors.VideoBackend.
func (b *Backend) Measure(cur, ref *detectors.VideoFrame, out *detectors.VideoFeatures) {
	if cur.Device == 0 || b.err != nil {
		b.cpu.Measure(cur, ref, out)
		return
	}
	if err := b.measure(cur, ref, out); err != nil {
		// A device error (GPU lost, Xid) is the stream's to report: the
		// features are empty from here, and the agent moves the stream.
		b.err = err
		*out = detectors.VideoFeatures{Block: detectors.BlockFeature{Band: -1}}
	}
}

func (b *Backend) measure(cur, ref *detectors.VideoFrame, out *detectors.VideoFeatures) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := cu.SetCurrentContext(b.d.ctx); err != nil {
		return err
	}
	if err := b.grow(cur.Height); err != nil {
		return err
	}
	sixteen, shift := int64(0), int64(0)
	if cur.BitDepth > 8 {
		sixteen, shift = 1, int64(cur.BitDepth-8)
	}
	bands := detectors.BlockBands(cur.Height)
	words := offBands + kernels.BandCounters*bands
	if err := cu.MemsetD32Async(b.dev, 0, int64(2*words), b.stream); err != nil {
		return err
	}
	plane, pitch, w := int64(cur.Device), int64(cur.Stride), int64(cur.Width)
	cfg := b.cfg
	black := cfg.Black.Enabled || cfg.AVSync.Enabled
	var g detectors.BlackGeometry
	if black {
		g = detectors.NewBlackGeometry(cur, cfg.Black.PixelThreshold)
		b.p = [11]int64{plane, pitch, w, sixteen, int64(g.Th), int64(g.CY0), int64(g.CY1), int64(g.CX0), int64(g.CX1),
			int64(g.Mid), int64(b.dev) + 8*offBlack}
		if err := b.launch(b.d.fn[0], cur.Height, 11); err != nil {
			return fmt.Errorf("black kernel: %w", err)
		}
	}
	freeze := cfg.Freeze.Enabled && ref != nil && ref.Device != 0 && ref.Width == cur.Width &&
		ref.Height == cur.Height && ref.BitDepth == cur.BitDepth
	if freeze {
		b.p = [11]int64{plane, pitch, int64(ref.Device), int64(ref.Stride), w, sixteen, shift, int64(b.dev) + 8*offFreeze}
		if err := b.launch(b.d.fn[1], cur.Height, 8); err != nil {
			return fmt.Errorf("freeze kernel: %w", err)
		}
		floor16 := detectors.FreezeCellFloor16(cur, cfg.Freeze.CellFloor)
		b.p = [11]int64{plane, pitch, int64(ref.Device), int64(ref.Stride), w, int64(cur.Height), sixteen, floor16,
			int64(b.dev) + 8*(offFreeze+1)}
		if err := b.launch(b.d.fn[4], (cur.Height+kernels.CellRows-1)/kernels.CellRows, 9); err != nil {
			return fmt.Errorf("freeze cells kernel: %w", err)
		}
	}
	block := cfg.Blockiness.Enabled && cur.Width >= 16 && cur.Height >= 16
	if block {
		bc := cfg.Blockiness
		b.p = [11]int64{plane, pitch, w, sixteen, shift, int64(bc.MinStep), int64(bc.PictureMinStep), int64(b.dev) + 8*offBands}
		if err := b.launch(b.d.fn[2], cur.Height, 8); err != nil {
			return fmt.Errorf("blockiness kernel: %w", err)
		}
		if edges := detectors.BlockHorizontalEdges(cur.Height); edges > 0 {
			if err := b.launch(b.d.fn[3], edges, 8); err != nil {
				return fmt.Errorf("blockiness kernel: %w", err)
			}
		}
	}
	if err := cu.MemcpyDtoHAsync(b.host, b.dev, int64(8*words), b.stream); err != nil {
		return err
	}
	if err := b.stream.Synchronize(); err != nil {
		return err
	}
	c := unsafe.Slice((*int64)(b.host), words)
	*out = detectors.VideoFeatures{Block: detectors.BlockFeature{Band: -1}}
	if black {
		detectors.BlackFromCounts(cur, g, int(c[offBlack]), int(c[offBlack+2]), uint64(c[offBlack+1]), &out.Black)
	}
	if freeze {
		detectors.FreezeFromCounts(cur, ref, uint64(c[offFreeze]), int(c[offFreeze+1]), int(c[offFreeze+2]), &out.Freeze)
	}
	if block {
		bs := b.bands[:bands]
		for i := range bs {
			k := c[offBands+kernels.BandCounters*i:]
			bs[i] = detectors.BandCounts{VPositions: k[0], VSteps: k[1], VControl: k[2], HPositions: k[3], HSteps: k[4],
				HControl: k[5], VStepsM: k[6], VControlM: k[7], HStepsM: k[8], HControlM: k[9], GridSum: k[10], ControlSum: k[11], Flat: k[12]}
		}
		detectors.BlockFromBands(cur, bs, &out.Block)
	}
	return nil
}
