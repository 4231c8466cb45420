package detectors

// Chroma is a view on a decoded picture's colour planes, for what needs the
// whole picture (thumbnails), never the detectors. Like VideoFrame it does
// not own the memory. Samples are BitDepth wide as the luma's (two bytes,
// little-endian, above 8 bits; P010's samples held in the high bits count as
// 16-bit, as its luma does).
type Chroma struct {
	// Cb and Cr start at each component's first sample; a semi-planar format
	// (NV12, P010) has both in one plane, Cr one sample after Cb. Nil when
	// the picture has no chroma the view understands (grey).
	Cb, Cr []byte
	// Stride is the distance in bytes between two rows, Step between two
	// samples of one component (1 or 2 planar; 2 or 4 semi-planar).
	Stride, Step int
	// ShiftX and ShiftY are the log2 subsampling (4:2:0: 1, 1; 4:2:2: 1, 0).
	ShiftX, ShiftY int
	// CbDevice and CrDevice, when not 0, are the components' addresses in
	// GPU memory (an NVDEC frame's interleaved chroma plane, Stride its
	// pitch); Cb and Cr are then nil.
	CbDevice, CrDevice uintptr
}

// Width and Height of the chroma planes of a picture of w x h.
func (c *Chroma) Width(w int) int  { return (w + 1<<c.ShiftX - 1) >> c.ShiftX }
func (c *Chroma) Height(h int) int { return (h + 1<<c.ShiftY - 1) >> c.ShiftY }
