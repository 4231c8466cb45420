//go:build !amd64 || purego

package detectors

// Without SSE2 kernels (simd_amd64.s), the SWAR loops run alone.

func blackSpan(row []byte, n uint64) (int, uint64) { return blackWords(row, n) }

func blackSpanCentre(row []byte, n uint64) (int, uint64, int) { return blackWordsCentre(row, n) }

func cell8(cur, prev *VideoFrame, cx, y0, y1, rowStep int) (int64, uint64) {
	return cell8SWAR(cur, prev, cx, y0, y1, rowStep)
}
