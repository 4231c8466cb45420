package detectors

import "math/bits"

// SWAR (SIMD within a register) helpers: the per-pixel loops of the CPU
// reference read eight 8-bit luma samples per 64-bit word.

const (
	lanes01 = 0x0101010101010101
	lanes7f = 0x7f7f7f7f7f7f7f7f
	lanes80 = 0x8080808080808080
)

// countHigh returns how many bytes of w are >= 128.
func countHigh(w uint64) int {
	return bits.OnesCount64(w & lanes80)
}

// fold16 adds the four 16-bit lanes of acc.
func fold16(acc uint64) uint64 {
	acc = (acc & 0x0000ffff0000ffff) + ((acc >> 16) & 0x0000ffff0000ffff)
	return (acc & 0xffffffff) + (acc >> 32)
}

// sample16 reads one high-bit-depth sample (little-endian uint16).
func sample16(row []byte, x int) int {
	return int(row[2*x]) | int(row[2*x+1])<<8
}

// absDiff returns |a-b| without a branch.
func absDiff(a, b int) int {
	d := a - b
	m := d >> 63
	return (d ^ m) - m
}
