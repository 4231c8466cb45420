// Package kernels holds the CUDA C of the video feature kernels
// (kernels.cu, sq_features.h), their PTX (kernels.ptx, made by `make ptx`
// with Debian's clang, checked in, verified by `make ptx-check`), and a run of
// their per-thread work on the host that tests check against detectors/.
// The header lives in this package's folder so that cmd/go sees its changes.
package kernels

import _ "embed"

// PTX is the kernels' PTX (ISA 6.3, sm_75: the driver compiles it for any
// GPU since Turing, T4 to H100).
//
//go:embed kernels.ptx
var PTX string

// Kernel names in the module (extern "C" in kernels.cu).
const (
	Black           = "sq_black"
	Freeze          = "sq_freeze"
	FreezeCells     = "sq_freeze_cells_kernel"
	BlockVertical   = "sq_block_vertical"
	BlockHorizontal = "sq_block_horizontal_edges"
	ThreadsPerBlock = 256 // SQ_THREADS
	CellRows        = 4   // SQ_CELL_ROWS: rows of a freeze cell, one block per group of them
	BandCounters    = 13  // SQ_BAND_COUNTERS
	BlackCounters   = 3
	FreezeCounters  = 3 // SAD, cells, cells moved
)
