package hevc

import (
	"bytes"
	"encoding/binary"
	"math/bits"
)

// bitReader reads an RBSP most significant bit first (H.265 7.2). Past the
// end of its data, or on an Exp-Golomb code longer than 32 bits, it sets
// fail, returns zeros from then on and never panics: a parse reads a whole
// section and checks fail (and every count it is about to loop on) before
// trusting what it read.
type bitReader struct {
	b       []byte
	pos     int  // in bits
	fail    bool // a read failed: overrun, or an Exp-Golomb code too long
	overrun bool // a read went past the end of b
}

// err returns ErrTruncated after an overrun, ErrInvalid after an
// Exp-Golomb code of more than 32 bits, nil when every read succeeded.
func (r *bitReader) err() error {
	switch {
	case r.overrun:
		return ErrTruncated
	case r.fail:
		return ErrInvalid
	}
	return nil
}

// peek64 returns the 64 bits from pos (zeros past the end of the data).
func (r *bitReader) peek64() uint64 {
	i := r.pos >> 3
	var w uint64
	if i+8 <= len(r.b) {
		w = binary.BigEndian.Uint64(r.b[i:])
	} else {
		for k := 0; k < 8; k++ {
			w <<= 8
			if i+k < len(r.b) {
				w |= uint64(r.b[i+k])
			}
		}
	}
	return w << uint(r.pos&7)
}

// left returns the number of bits not read yet.
func (r *bitReader) left() int { return len(r.b)*8 - r.pos }

// u reads n bits (0 <= n <= 32) as an unsigned integer: u(n).
func (r *bitReader) u(n int) uint32 {
	if n == 0 || r.fail {
		return 0
	}
	if n > 32 || n > r.left() {
		r.fail, r.overrun = true, true
		return 0
	}
	v := uint32(r.peek64() >> uint(64-n))
	r.pos += n
	return v
}

// flag reads u(1) as a bool.
func (r *bitReader) flag() bool { return r.u(1) == 1 }

// skip skips n bits.
func (r *bitReader) skip(n int) {
	if r.fail {
		return
	}
	if n < 0 || n > r.left() {
		r.fail, r.overrun = true, true
		return
	}
	r.pos += n
}

// ue reads an unsigned Exp-Golomb code, ue(v) (9.2): at most 31 leading
// zero bits, so a value of at most 2^32 - 2.
func (r *bitReader) ue() uint32 {
	if r.fail {
		return 0
	}
	lz := bits.LeadingZeros64(r.peek64())
	if 2*lz+1 > r.left() {
		r.fail, r.overrun = true, true
		return 0
	}
	if lz > 31 {
		r.fail = true
		return 0
	}
	r.pos += lz + 1
	return uint32(1)<<uint(lz) - 1 + r.u(lz)
}

// se reads a signed Exp-Golomb code, se(v) (9.2.2): k = ue(v) maps to
// (-1)^(k+1) * Ceil(k / 2).
func (r *bitReader) se() int64 {
	k := int64(r.ue())
	if k&1 == 1 {
		return (k + 1) / 2
	}
	return -k / 2
}

// ceilLog2 returns Ceil(Log2(n)) for n >= 1 (0 for n <= 1).
func ceilLog2(n uint32) int {
	if n <= 1 {
		return 0
	}
	return bits.Len32(n - 1)
}

// unescape copies the NAL unit nal into dst without its
// emulation_prevention_three_bytes (7.3.1.1: the 0x03 of every 0x000003
// sequence), stopping when dst is full. It returns how many bytes it wrote
// and whether that is all of nal's payload.
func unescape(dst, nal []byte) (int, bool) {
	n := 0
	for len(nal) > 0 {
		room := len(dst) - n
		if room == 0 {
			return n, false
		}
		// A sequence starting past room+0 cannot change the room bytes
		// still to write: search no further (a slice is far longer than
		// its header).
		win := nal
		if len(win) > room+3 {
			win = win[:room+3]
		}
		i := bytes.Index(win, []byte{0, 0, 3})
		if i < 0 {
			c := copy(dst[n:], nal)
			return n + c, c == len(nal)
		}
		c := copy(dst[n:], nal[:i+2])
		n += c
		if c < i+2 {
			return n, false
		}
		nal = nal[i+3:]
	}
	return n, true
}
