package hevc

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// rbspBufSize bounds the RBSP of a slice segment header that Packet
// unescapes (see Parser.slice): 1 KiB holds any conforming header up to
// slice_qp_delta with room to spare.
const rbspBufSize = 1024

// maxParamSetSize bounds a parameter set NAL unit (the largest conforming
// SPS, with every scaling list and HRD parameters for 7 sub-layers and 32
// CPBs coded at their longest, is under 20 KiB).
const maxParamSetSize = 64 << 10

// Parser keeps the parameter sets it has seen (16 SPS, 64 PPS; VPS are not
// needed) and reads slice segment headers. Its zero value is ready to use.
// A Parser is not safe for concurrent use.
type Parser struct {
	sps     [maxSPS]*sps
	pps     [maxPPS]pps
	scratch *sps   // the next SPS is read here, then swapped in
	ps      []byte // RBSP of the last parameter set (grows to the longest)
	rps     stRPS  // the short-term RPS a slice header codes itself
	last    Picture
	buf     [rbspBufSize]byte // RBSP of the slice segment header being read
}

// Picture describes what the last call to Packet read.
type Picture struct {
	// QP is what Packet returned: the mean SliceQpY of the picture's
	// independent slice segments, rounded to nearest (half away from 0).
	QP int
	// Type is slice_type of the first independent slice segment.
	Type SliceType
	// Slices is how many independent slice segments the mean covers.
	Slices int
	// BitDepth is BitDepthY of the picture's SPS: SliceQpY ranges over
	// -QpBdOffsetY..51 with QpBdOffsetY = 6 * (BitDepth - 8).
	BitDepth int
	// Err says why Packet returned ok=false (one of the Err constants);
	// nil when it returned ok.
	Err error
}

// Last returns what the last call to Packet read.
func (p *Parser) Last() Picture { return p.last }

// Extradata reads codec extradata: an HEVCDecoderConfigurationRecord (hvcC,
// ISO/IEC 14496-15 8.3.3.1, configurationVersion 1) or parameter sets in
// Annex B byte stream format. It stores the SPS and PPS it holds and returns
// the size of the NAL unit length prefix of the packets that go with it
// (lengthSizeMinusOne + 1: 1, 2 or 4), or 0 for Annex B. When the record is
// read but one of its parameter sets is not, it returns the length size
// together with the error; the other parameter sets are stored.
func (p *Parser) Extradata(b []byte) (lengthSize int, err error) {
	if isAnnexB(b) {
		it := nalIter{b: b}
		for nal, ok := it.next(); ok; nal, ok = it.next() {
			if len(nal) == 0 {
				continue
			}
			if e := p.parameterSet(nal); e != nil && err == nil {
				err = fmt.Errorf("hevc: extradata: NAL unit type %d: %w", nalType(nal), e)
			}
		}
		if it.err != nil && err == nil {
			err = fmt.Errorf("hevc: extradata: %w", it.err)
		}
		return 0, err
	}
	// configurationVersion, 20 bytes of profile, level, chroma format,
	// bit depths, frame rate, then constantFrameRate(2)
	// numTemporalLayers(3) temporalIdNested(1) lengthSizeMinusOne(2) and
	// numOfArrays.
	const header = 23
	if len(b) < header {
		return 0, fmt.Errorf("hevc: hvcC record of %d bytes: %w", len(b), ErrTruncated)
	}
	if b[0] != 1 {
		return 0, fmt.Errorf("hevc: hvcC configurationVersion %d: %w", b[0], ErrUnsupported)
	}
	lengthSize = int(b[21]&3) + 1
	if lengthSize == 3 {
		return 0, fmt.Errorf("hevc: hvcC lengthSizeMinusOne 2: %w", ErrUnsupported)
	}
	numArrays := int(b[22])
	b = b[header:]
	for a := 0; a < numArrays; a++ {
		if len(b) < 3 {
			return lengthSize, firstErr(err, fmt.Errorf("hevc: hvcC array %d: %w", a, ErrTruncated))
		}
		// array_completeness(1) reserved(1) NAL_unit_type(6), numNalus(16)
		numNalus := int(binary.BigEndian.Uint16(b[1:]))
		b = b[3:]
		for i := 0; i < numNalus; i++ {
			if len(b) < 2 {
				return lengthSize, firstErr(err, fmt.Errorf("hevc: hvcC array %d NAL unit %d: %w", a, i, ErrTruncated))
			}
			n := int(binary.BigEndian.Uint16(b))
			b = b[2:]
			if n > len(b) {
				return lengthSize, firstErr(err, fmt.Errorf("hevc: hvcC array %d NAL unit %d of %d bytes: %w", a, i, n, ErrTruncated))
			}
			if e := p.parameterSet(b[:n]); e != nil && err == nil {
				err = fmt.Errorf("hevc: hvcC array %d NAL unit %d (type %d): %w", a, i, nalType(b[:n]), e)
			}
			b = b[n:]
		}
	}
	return lengthSize, err
}

func firstErr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// isAnnexB reports whether b starts with a start code (0x000001, or
// 0x00000001 after a zero_byte).
func isAnnexB(b []byte) bool {
	return len(b) >= 3 && b[0] == 0 && b[1] == 0 && (b[2] == 1 || len(b) >= 4 && b[2] == 0 && b[3] == 1)
}

func nalType(nal []byte) int {
	if len(nal) == 0 {
		return -1
	}
	return int(nal[0]>>1) & 0x3f
}

// nalHeader checks nal_unit_header() (7.3.1.2) and returns
// nal_unit_type and nuh_layer_id.
func nalHeader(nal []byte) (typ, layer int, err error) {
	if len(nal) < 2 {
		return 0, 0, ErrTruncated
	}
	if nal[0]&0x80 != 0 || nal[1]&7 == 0 { // forbidden_zero_bit, nuh_temporal_id_plus1
		return 0, 0, ErrInvalid
	}
	return int(nal[0]>>1) & 0x3f, int(nal[0]&1)<<5 | int(nal[1]>>3), nil
}

// parameterSet stores an SPS or PPS of the base layer (nuh_layer_id 0);
// it ignores other NAL units.
func (p *Parser) parameterSet(nal []byte) error {
	typ, layer, err := nalHeader(nal)
	if err != nil || layer != 0 {
		return err
	}
	switch typ {
	case nalSPS:
		return p.storeSPS(nal)
	case nalPPS:
		return p.storePPS(nal)
	}
	return nil
}

// rbsp unescapes a whole parameter set NAL unit into p.ps and returns a
// reader past its NAL unit header.
func (p *Parser) rbsp(nal []byte) (bitReader, error) {
	if len(nal) > maxParamSetSize {
		return bitReader{}, ErrTooLong
	}
	if cap(p.ps) < len(nal) {
		p.ps = make([]byte, len(nal))
	}
	n, _ := unescape(p.ps[:len(nal)], nal)
	r := bitReader{b: p.ps[:n]}
	r.skip(16)
	return r, nil
}

// storeSPS reads an SPS into p.scratch and swaps it into its slot; one
// that cannot be read replaces its id's previous version too (marked not
// valid), so that no slice is read against a stale SPS.
func (p *Parser) storeSPS(nal []byte) error {
	r, err := p.rbsp(nal)
	if err != nil {
		return err
	}
	if p.scratch == nil {
		p.scratch = new(sps)
	}
	id, err := parseSPS(&r, p.scratch)
	if id < 0 {
		return err
	}
	if err != nil {
		p.scratch.valid = false
		p.scratch.err = asError(err)
	}
	p.sps[id], p.scratch = p.scratch, p.sps[id]
	return err
}

// storePPS reads a PPS into its slot; one that cannot be read marks its id
// not valid.
func (p *Parser) storePPS(nal []byte) error {
	r, err := p.rbsp(nal)
	if err != nil {
		return err
	}
	var v pps
	id, err := parsePPS(&r, &v)
	if id < 0 {
		return err
	}
	if err != nil {
		v.valid = false
		v.err = asError(err)
	}
	p.pps[id] = v
	return err
}

func asError(err error) Error {
	if e, ok := err.(Error); ok {
		return e
	}
	return ErrInvalid
}

// Packet reads one compressed packet: one access unit, its NAL units
// either prefixed by their length in lengthSize bytes (1, 2 or 4, as
// Extradata returned) or in Annex B byte stream format (lengthSize 0). It
// stores the SPS and PPS the packet carries and returns the picture's
// quantizer: the mean SliceQpY (26 + init_qp_minus26 + slice_qp_delta,
// 7-54) over its independent slice segments, rounded to nearest. SliceQpY
// is on the QP scale of H.264 and HEVC, offset by the bit depth: it ranges
// over -QpBdOffsetY..51, QpBdOffsetY = 6 * (BitDepthY - 8) (Last tells
// BitDepthY); the caller rescales high bit depths. It is the slice's base
// QP, before any coding unit's cu_qp_delta.
//
// ok is false, and the QP 0, when the packet has no independent slice
// segment, or when any slice segment header cannot be read to its
// slice_qp_delta (an unknown or unreadable PPS or SPS, a truncated header,
// a value out of range, unsupported syntax): Last().Err says which. Dependent
// slice segments carry no QP of their own; they are checked to their
// slice_segment_address only. Only NAL units of the base layer (nuh_layer_id
// 0) are read. Packet allocates nothing once the parameter sets it uses are
// stored.
func (p *Parser) Packet(b []byte, lengthSize int) (qp int, ok bool) {
	p.last = Picture{}
	if lengthSize != 0 && lengthSize != 1 && lengthSize != 2 && lengthSize != 4 {
		p.last.Err = ErrUnsupported
		return 0, false
	}
	var (
		sum   int64
		n     int
		first error
	)
	it := nalIter{b: b, size: lengthSize}
	for nal, more := it.next(); more; nal, more = it.next() {
		if len(nal) == 0 {
			continue // between two start codes, or a length of 0
		}
		typ, layer, err := nalHeader(nal)
		if err != nil {
			first = firstErr(first, err)
			continue
		}
		if layer != 0 {
			continue
		}
		switch {
		case typ == nalSPS:
			_ = p.storeSPS(nal) // a slice that uses it reports its error
		case typ == nalPPS:
			_ = p.storePPS(nal)
		case isSlice(typ):
			res, err := p.slice(nal, typ)
			if err != nil {
				first = firstErr(first, err)
				continue
			}
			if res.dependent {
				continue
			}
			if n == 0 {
				p.last.Type = res.typ
				p.last.BitDepth = int(res.bitDepth)
			}
			sum += int64(res.qp)
			n++
		}
	}
	first = firstErr(first, it.err)
	if first == nil && n == 0 {
		first = ErrNoPicture
	}
	if first != nil {
		p.last = Picture{Err: first}
		return 0, false
	}
	p.last.QP = roundDiv(sum, n)
	p.last.Slices = n
	return p.last.QP, true
}

// roundDiv returns sum / n rounded to nearest, half away from zero.
func roundDiv(sum int64, n int) int {
	d := 2 * int64(n)
	if sum >= 0 {
		return int((2*sum + int64(n)) / d)
	}
	return -int((-2*sum + int64(n)) / d)
}

// nalIter walks the NAL units of a packet: length-prefixed (size 1, 2 or
// 4) or Annex B (size 0).
type nalIter struct {
	b    []byte
	size int
	err  error // a length prefix past the end of the data
}

// next returns the next NAL unit, false at the end.
func (it *nalIter) next() ([]byte, bool) {
	if it.size == 0 {
		i := bytes.Index(it.b, []byte{0, 0, 1})
		if i < 0 {
			it.b = nil
			return nil, false
		}
		nal := it.b[i+3:]
		if j := bytes.Index(nal, []byte{0, 0, 1}); j >= 0 {
			it.b = nal[j:]
			nal = nal[:j]
		} else {
			it.b = nil
		}
		// trailing_zero_8bits, and the zero_byte of the next start code.
		for len(nal) > 0 && nal[len(nal)-1] == 0 {
			nal = nal[:len(nal)-1]
		}
		return nal, true
	}
	if len(it.b) == 0 {
		return nil, false
	}
	if len(it.b) < it.size {
		it.err, it.b = ErrTruncated, nil
		return nil, false
	}
	var n int
	switch it.size {
	case 1:
		n = int(it.b[0])
	case 2:
		n = int(binary.BigEndian.Uint16(it.b))
	default:
		n = int(binary.BigEndian.Uint32(it.b))
	}
	it.b = it.b[it.size:]
	if n > len(it.b) {
		it.err, it.b = ErrTruncated, nil
		return nil, false
	}
	nal := it.b[:n]
	it.b = it.b[n:]
	return nal, true
}
