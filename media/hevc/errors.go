package hevc

// Error is the type of the package's sentinel errors: constants, compared
// with errors.Is (Extradata wraps them with %w; Last reports them as is).
type Error string

func (e Error) Error() string { return string(e) }

const (
	// ErrTruncated: the data ends inside a header (a NAL unit, an hvcC
	// record, a length prefix past the end of a packet).
	ErrTruncated Error = "hevc: data ends inside a header"
	// ErrTooLong: a header runs past the parser's bounds: a slice segment
	// header past 1 KiB of RBSP before its slice_qp_delta (a conforming
	// one ends within 400 bytes), a parameter set NAL unit over 64 KiB.
	ErrTooLong Error = "hevc: header longer than the parser's bounds"
	// ErrInvalid: a value outside the range ITU-T H.265 allows, or a
	// forbidden combination (a P slice in an IRAP picture, a forbidden bit).
	ErrInvalid Error = "hevc: value out of range"
	// ErrUnsupported: syntax this parser does not read (screen content
	// coding and 3D extensions, an unknown hvcC version, lengthSize 3).
	ErrUnsupported Error = "hevc: unsupported syntax"
	// ErrUnknownParameterSet: a slice refers to a PPS (or a PPS to an SPS)
	// that was not received. (One whose last version could not be read
	// makes its slices report that version's error.)
	ErrUnknownParameterSet Error = "hevc: unknown parameter set"
	// ErrNoPicture: the packet holds no independent slice segment.
	ErrNoPicture Error = "hevc: no independent slice segment in the packet"
)
