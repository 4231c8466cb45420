//go:build amd64 && !purego

package detectors

// The SSE2 kernels of simd_amd64.s. The wrappers below check bounds in Go
// before the assembly reads memory, and leave what is not a whole vector to
// the SWAR code that every architecture runs (simd_other.go). Build with
// -tags purego to run the SWAR code alone.

//go:noescape
func blackRowSSE2(p *byte, n int, th uint64) (mask255, sum uint64)

//go:noescape
func blackRowCentreSSE2(p *byte, n int, th uint64) (mask255, sum, bright255 uint64)

//go:noescape
func cell32SSE2(a, b *byte, aStride, bStride, rows int) (sumA, sumB, sad uint64)

// blackSpan counts the samples of row below n and sums them (whole 8-byte
// words only, as blackWords).
func blackSpan(row []byte, n uint64) (black int, sum uint64) {
	v := len(row) &^ 15
	if v > 0 && n > 0 && n <= 256 {
		m, s := blackRowSSE2(&row[0], v, (n-1)*lanes01)
		b, s2 := blackWords(row[v:], n)
		return int(m/255) + b, s + s2
	}
	return blackWords(row, n)
}

// blackSpanCentre is blackSpan that also counts samples >= 128.
func blackSpanCentre(row []byte, n uint64) (black int, sum uint64, bright int) {
	v := len(row) &^ 15
	if v > 0 && n > 0 && n <= 256 {
		m, s, h := blackRowCentreSSE2(&row[0], v, (n-1)*lanes01)
		b, s2, c := blackWordsCentre(row[v:], n)
		return int(m/255) + b, s + s2, int(h/255) + c
	}
	return blackWordsCentre(row, n)
}

// cell8 returns the signed and absolute difference sums of one 8-bit
// freeze cell (see cell8SWAR).
func cell8(cur, prev *VideoFrame, cx, y0, y1, rowStep int) (int64, uint64) {
	rows := (y1 - y0 + rowStep - 1) / rowStep
	if rows <= 0 {
		return 0, 0
	}
	a0, b0 := y0*cur.Stride+cx, y0*prev.Stride+cx
	as, bs := rowStep*cur.Stride, rowStep*prev.Stride
	last := rows - 1
	if cx < 0 || a0 < 0 || b0 < 0 || as < 0 || bs < 0 ||
		a0+last*as+freezeCellW > len(cur.Y) || b0+last*bs+freezeCellW > len(prev.Y) {
		return cell8SWAR(cur, prev, cx, y0, y1, rowStep) // let Go's bounds checks speak
	}
	sa, sb, sad := cell32SSE2(&cur.Y[a0], &prev.Y[b0], as, bs, rows)
	return int64(sa) - int64(sb), sad
}
