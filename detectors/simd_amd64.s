//go:build amd64 && !purego

#include "textflag.h"

// SSE2 (every amd64 CPU has it) versions of the 8-bit luma loops of the
// black and freeze features. PSADBW sums sixteen bytes in two 64-bit lanes;
// a compare mask of 0xFF bytes summed that way counts 255 per match.
//
// Go assembler operand order: OP src, dst (dst = dst OP src).

// HSUM stores the sum of the two 64-bit lanes of X in the result at FP slot.
#define HSUM(X, slot) MOVQ X, AX; PSRLO $8, X; MOVQ X, BX; ADDQ BX, AX; MOVQ AX, slot(FP)

// func blackRowSSE2(p *byte, n int, th uint64) (mask255, sum uint64)
// n: bytes, a multiple of 16, > 0. th: the threshold byte in every lane.
TEXT ·blackRowSSE2(SB), NOSPLIT, $0-40
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ th+16(FP), X7
	PUNPCKLQDQ X7, X7
	PXOR X6, X6       // zero
	PXOR X4, X4       // black, 255 per match
	PXOR X5, X5       // sum
	SHRQ $4, CX
black:
	MOVOU (SI), X0
	MOVO X0, X1
	PMAXUB X7, X1     // max(x, th)
	PCMPEQB X7, X1    // 0xFF where x <= th
	PSADBW X6, X1
	PADDQ X1, X4
	PSADBW X6, X0
	PADDQ X0, X5
	ADDQ $16, SI
	DECQ CX
	JNZ black
	HSUM(X4, mask255+24)
	HSUM(X5, sum+32)
	RET

// func blackRowCentreSSE2(p *byte, n int, th uint64) (mask255, sum, bright255 uint64)
// As blackRowSSE2, also counting bytes >= 128 (255 each).
TEXT ·blackRowCentreSSE2(SB), NOSPLIT, $0-48
	MOVQ p+0(FP), SI
	MOVQ n+8(FP), CX
	MOVQ th+16(FP), X7
	PUNPCKLQDQ X7, X7
	PXOR X6, X6
	PXOR X4, X4
	PXOR X5, X5
	PXOR X3, X3       // bright, 255 per match
	SHRQ $4, CX
centre:
	MOVOU (SI), X0
	MOVO X0, X1
	PMAXUB X7, X1
	PCMPEQB X7, X1
	PSADBW X6, X1
	PADDQ X1, X4
	PXOR X2, X2
	PCMPGTB X0, X2    // 0xFF where 0 > x as signed: x >= 128
	PSADBW X6, X2
	PADDQ X2, X3
	PSADBW X6, X0
	PADDQ X0, X5
	ADDQ $16, SI
	DECQ CX
	JNZ centre
	HSUM(X4, mask255+24)
	HSUM(X5, sum+32)
	HSUM(X3, bright255+40)
	RET

// func cell32SSE2(a, b *byte, aStride, bStride, rows int) (sumA, sumB, sad uint64)
// One freeze cell: rows rows of 32 bytes, aStride/bStride bytes apart; rows > 0.
TEXT ·cell32SSE2(SB), NOSPLIT, $0-64
	MOVQ a+0(FP), SI
	MOVQ b+8(FP), DI
	MOVQ aStride+16(FP), R8
	MOVQ bStride+24(FP), R9
	MOVQ rows+32(FP), CX
	PXOR X7, X7       // zero
	PXOR X4, X4       // sum a
	PXOR X5, X5       // sum b
	PXOR X6, X6       // sad
cell:
	MOVOU (SI), X0
	MOVOU 16(SI), X1
	MOVOU (DI), X2
	MOVOU 16(DI), X3
	MOVO X0, X8
	PSADBW X2, X8
	PADDQ X8, X6
	MOVO X1, X9
	PSADBW X3, X9
	PADDQ X9, X6
	PSADBW X7, X0
	PADDQ X0, X4
	PSADBW X7, X1
	PADDQ X1, X4
	PSADBW X7, X2
	PADDQ X2, X5
	PSADBW X7, X3
	PADDQ X3, X5
	ADDQ R8, SI
	ADDQ R9, DI
	DECQ CX
	JNZ cell
	HSUM(X4, sumA+40)
	HSUM(X5, sumB+48)
	HSUM(X6, sad+56)
	RET
