package transport

// crcTable is the CRC-32/MPEG-2 table (polynomial 0x04C11DB7, not reflected),
// computed once; it is never written after.
var crcTable = func() (t [256]uint32) {
	for i := range t {
		c := uint32(i) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()

// crc32MPEG returns the CRC-32/MPEG-2 of b; over a section including its
// CRC_32 field it is 0 when the section is intact.
func crc32MPEG(b []byte) uint32 {
	c := uint32(0xFFFFFFFF)
	for _, x := range b {
		c = c<<8 ^ crcTable[byte(c>>24)^x]
	}
	return c
}
