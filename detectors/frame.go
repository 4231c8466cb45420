// Package detectors turns decoded pictures and audio into defect events.
//
// Every detector is a pair: a feature (a small struct measured per frame or per
// audio block, pure Go here and the reference for the CUDA kernels in gpu/)
// and a decision (thresholds, minimum duration, hysteresis) that never sees
// pixels or samples, so every backend shares the same policy.
package detectors

// VideoFrame is a view on a decoded picture's luma plane. It does not own the
// memory: the plane is valid only for the duration of the call it is passed to.
type VideoFrame struct {
	// PTS is the presentation time in seconds from the start of the input.
	PTS float64
	// Duration is the frame's display duration in seconds.
	Duration float64
	Width    int
	Height   int
	// Y is the luma plane; with BitDepth > 8 each sample is a little-endian uint16.
	Y []byte
	// Stride is the distance in bytes between two rows of Y.
	Stride int
	// BitDepth is 8 for 8-bit formats and 9..16 for high bit depth formats.
	BitDepth int
	// FullRange is true for full ("JPEG", 0..255) range and false for limited
	// ("TV", 16..235) range.
	FullRange bool
	// KeyFrame is true for intra-coded pictures (an encoder re-coding a frozen
	// picture changes it slightly there).
	KeyFrame bool
	// Corrupt is true when the decoder flagged this frame as damaged or concealed.
	Corrupt bool
	// Device, when not 0, is the luma plane's address in GPU memory (a
	// CUdeviceptr: an NVDEC frame read in place, Stride its pitch) and Y is
	// nil: only the GPU backend measures such a frame.
	Device uintptr
	// Chroma views the colour planes, for thumbnails (empty when unknown).
	Chroma Chroma
	// Quant is the picture's mean quantizer as its bitstream coded it, on
	// H.264's QP scale (the step doubles every 6; MPEG-2's quantiser_scale
	// q maps to 7 + 6 log2 q), when HasQuant: software H.264 and MPEG-1/2
	// decoders export it (every block's), hardware decoders do not. For HEVC
	// media/ reads it from the slice headers, whichever decoder runs: then
	// QuantSlice is set, as it is the slices' base level (HEVC's QP scale is
	// H.264's) and per-block deltas are not seen.
	Quant      float64
	HasQuant   bool
	QuantSlice bool
}

// LumaRange returns the nominal black and white levels of the frame's luma in
// its own sample scale, so that thresholds can be expressed as shares of the range.
func (f *VideoFrame) LumaRange() (black, white int) {
	shift := uint(0)
	if f.BitDepth > 8 {
		shift = uint(f.BitDepth - 8)
	}
	if f.FullRange {
		return 0, (256 << shift) - 1
	}
	return 16 << shift, 235 << shift
}

// AudioBlock is a view on decoded audio as planar float32 samples in [-1, 1].
// Like VideoFrame it is valid only during the call it is passed to.
type AudioBlock struct {
	// PTS is the time of the first sample in seconds from the start of the input.
	PTS        float64
	SampleRate int
	// Samples holds one slice per channel, each of the same length.
	Samples [][]float32
	// Layout names each channel's role for loudness weighting; it may be nil
	// (then channels are weighted as in a stereo or 5.1 order).
	Layout []Channel
}

// Len returns the number of samples per channel.
func (b *AudioBlock) Len() int {
	if len(b.Samples) == 0 {
		return 0
	}
	return len(b.Samples[0])
}

// End returns the time just after the block's last sample.
func (b *AudioBlock) End() float64 {
	return b.PTS + float64(b.Len())/float64(b.SampleRate)
}

// Channel is a channel's role, as far as loudness weighting (ITU-R BS.1770) cares.
type Channel uint8

const (
	ChannelFront    Channel = iota // left, right, centre: weight 1.0
	ChannelSurround                // left/right surround: weight 1.41
	ChannelLFE                     // low-frequency effects: excluded
)
