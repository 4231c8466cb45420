package hevc

// NAL unit types (7.4.2.2, Table 7-1).
const (
	nalRASLR     = 9  // last of the non-IRAP VCL types 0..9
	nalBLAWLP    = 16 // first IRAP type
	nalIDRWRADL  = 19
	nalIDRNLP    = 20
	nalCRA       = 21 // last IRAP type that is a slice (22, 23: reserved)
	nalRsvIRAP23 = 23
	nalVPS       = 32
	nalSPS       = 33
	nalPPS       = 34
)

// isSlice reports whether a NAL unit type is a coded slice segment this
// parser reads: 0..9 and 16..21 (the reserved VCL types are skipped).
func isSlice(t int) bool { return t <= nalRASLR || t >= nalBLAWLP && t <= nalCRA }

// SliceType is slice_type (7.4.7.1, Table 7-7).
type SliceType uint8

// The slice types.
const (
	SliceB SliceType = 0
	SliceP SliceType = 1
	SliceI SliceType = 2
)

func (t SliceType) String() string {
	switch t {
	case SliceB:
		return "B"
	case SliceP:
		return "P"
	case SliceI:
		return "I"
	}
	return "?"
}

// sliceResult is what one slice segment header gave.
type sliceResult struct {
	qp        int32 // SliceQpY
	typ       SliceType
	dependent bool // a dependent slice segment: no QP of its own
	bitDepth  uint8
}

// slice reads the slice segment header of a VCL NAL unit of type nalType
// (the whole NAL unit, header included, emulation prevention in place) up to
// slice_qp_delta. The rest of the slice is not read, nor unescaped: first
// the first sliceFirstRead bytes of RBSP, which hold most headers, then, if
// the header runs past them, len(p.buf). A conforming header up to
// slice_qp_delta ends within 400 bytes (at most 15 reference pictures, each
// long-term with its longest delta_poc_msb_cycle_lt: 120 bytes; a
// pred_weight_table of at most 24 weight flags at 16 bits, 12 chroma entries
// of 108 bits: 162 bytes; lists modification: 15 bytes; the rest about 30).
func (p *Parser) slice(nal []byte, nalType int) (sliceResult, error) {
	for _, size := range [...]int{sliceFirstRead, len(p.buf)} {
		n, complete := unescape(p.buf[:size], nal)
		r := bitReader{b: p.buf[:n]}
		res, err := p.sliceHeader(&r, nalType)
		switch {
		case r.overrun && !complete && size < len(p.buf):
			continue // read again with the whole buffer
		case r.overrun && !complete:
			return res, ErrTooLong
		case r.fail:
			// What was read past the end was zeros, not the stream:
			// whatever the parse concluded from them, the header is
			// incomplete.
			return res, r.err()
		}
		return res, err
	}
	panic("unreachable")
}

// sliceFirstRead is how much RBSP slice unescapes first: a P or B slice
// header of x265 with its weight table takes 10 to 40 bytes.
const sliceFirstRead = 128

// sliceHeader reads slice_segment_header() (7.3.6.1) up to slice_qp_delta
// and returns SliceQpY = 26 + init_qp_minus26 + slice_qp_delta (7-54).
func (p *Parser) sliceHeader(r *bitReader, nalType int) (sliceResult, error) {
	var res sliceResult
	r.skip(16) // nal_unit_header
	first := r.flag()
	if nalType >= nalBLAWLP && nalType <= nalRsvIRAP23 {
		r.skip(1) // no_output_of_prior_pics_flag
	}
	ppsID := r.ue()
	if err := r.err(); err != nil {
		return res, err
	}
	if ppsID >= maxPPS {
		return res, ErrInvalid
	}
	pp := &p.pps[ppsID]
	if !pp.valid {
		if pp.err != "" {
			return res, pp.err
		}
		return res, ErrUnknownParameterSet
	}
	s := p.sps[pp.spsID]
	if s == nil {
		return res, ErrUnknownParameterSet
	}
	if !s.valid {
		return res, s.err
	}
	if err := pp.checkActivation(s); err != nil {
		return res, err
	}
	res.bitDepth = s.bitDepthY

	if !first {
		if pp.dependentSliceSegments {
			res.dependent = r.flag()
		}
		size := s.picWidthInCtbs * s.picHeightInCtbs // PicSizeInCtbsY
		addr := r.u(ceilLog2(size))                  // slice_segment_address
		if addr >= size || addr == 0 {
			// Address 0 is the first slice segment, which says so.
			return res, errOr(r, ErrInvalid)
		}
		if res.dependent {
			return res, errOr(r, nil)
		}
	}

	r.skip(int(pp.numExtraSliceHeaderBits)) // slice_reserved_flag[i] (discardable_flag, cross_layer_bla_flag)
	st := r.ue()
	if st > uint32(SliceI) {
		return res, errOr(r, ErrInvalid)
	}
	res.typ = SliceType(st)
	// 7.4.7.1: an IRAP picture of the base layer has I slices only (the
	// exception, pps_curr_pic_ref_enabled_flag, is not supported).
	if nalType >= nalBLAWLP && nalType <= nalRsvIRAP23 && res.typ != SliceI {
		return res, errOr(r, ErrInvalid)
	}
	if pp.outputFlagPresent {
		r.skip(1) // pic_output_flag
	}
	if s.separateColourPlane {
		if r.u(2) > 2 { // colour_plane_id
			return res, errOr(r, ErrInvalid)
		}
	}

	numPicTotalCurr := 0
	temporalMVP := false
	if nalType != nalIDRWRADL && nalType != nalIDRNLP {
		r.skip(int(s.log2MaxPocLsb)) // slice_pic_order_cnt_lsb
		var rps *stRPS
		if !r.flag() { // short_term_ref_pic_set_sps_flag
			if err := stRefPicSet(r, &p.rps, int(s.numSTRPS), s); err != nil {
				return res, err
			}
			rps = &p.rps
		} else {
			if s.numSTRPS == 0 {
				return res, errOr(r, ErrInvalid)
			}
			idx := r.u(ceilLog2(uint32(s.numSTRPS))) // short_term_ref_pic_set_idx
			if idx >= uint32(s.numSTRPS) {
				return res, errOr(r, ErrInvalid)
			}
			rps = &s.st[idx]
		}
		numPicTotalCurr = rps.used()
		if s.longTermRefsPresent {
			n, err := longTermRefs(r, s, rps)
			if err != nil {
				return res, err
			}
			numPicTotalCurr += n
		}
		if s.temporalMVP {
			temporalMVP = r.flag() // slice_temporal_mvp_enabled_flag
		}
	}
	if s.sao {
		r.skip(1) // slice_sao_luma_flag
		if s.chromaArrayType != 0 {
			r.skip(1) // slice_sao_chroma_flag
		}
	}

	if res.typ != SliceI {
		if err := p.interHeader(r, s, pp, res.typ, numPicTotalCurr, temporalMVP); err != nil {
			return res, err
		}
	}

	d := r.se() // slice_qp_delta
	if err := r.err(); err != nil {
		return res, err
	}
	qp := 26 + int64(pp.initQPMinus26) + d
	if qp < -6*(int64(s.bitDepthY)-8) || qp > 51 {
		return res, ErrInvalid
	}
	res.qp = int32(qp)
	return res, nil
}

// longTermRefs reads the long-term pictures of a slice header and returns
// how many of them the current picture uses (the long-term part of
// NumPicTotalCurr, 7-55).
func longTermRefs(r *bitReader, s *sps, rps *stRPS) (int, error) {
	numLtSPS := uint32(0)
	if s.numLTRefsSPS > 0 {
		numLtSPS = r.ue() // num_long_term_sps
	}
	numLtPics := r.ue() // num_long_term_pics
	if err := r.err(); err != nil {
		return 0, err
	}
	// 7.4.7.1: num_long_term_sps up to num_long_term_ref_pics_sps;
	// num_long_term_pics up to sps_max_dec_pic_buffering_minus1[HighestTid]
	// - NumNegativePics - NumPositivePics - num_long_term_sps (HighestTid:
	// the highest sub-layer, the loosest bound).
	limit := int64(s.maxDecPicBufMinus1) - int64(rps.numNeg) - int64(rps.numPos) - int64(numLtSPS)
	if numLtSPS > uint32(s.numLTRefsSPS) || limit < 0 || int64(numLtPics) > limit {
		return 0, ErrInvalid
	}
	idxBits := ceilLog2(uint32(s.numLTRefsSPS))
	maxMsbCycle := uint32(1) << (32 - uint(s.log2MaxPocLsb))
	used := 0
	for i := 0; i < int(numLtSPS+numLtPics); i++ {
		if i < int(numLtSPS) {
			idx := uint32(0)
			if s.numLTRefsSPS > 1 {
				idx = r.u(idxBits) // lt_idx_sps[i]
			}
			if idx >= uint32(s.numLTRefsSPS) {
				return 0, errOr(r, ErrInvalid)
			}
			if s.usedByCurrPicLtSPS>>idx&1 == 1 {
				used++
			}
		} else {
			r.skip(int(s.log2MaxPocLsb)) // poc_lsb_lt[i]
			if r.flag() {                // used_by_curr_pic_lt_flag[i]
				used++
			}
		}
		if r.flag() { // delta_poc_msb_present_flag[i]
			if r.ue() > maxMsbCycle { // delta_poc_msb_cycle_lt[i]: 0..2^(32 - log2_max_pic_order_cnt_lsb_minus4 - 4)
				return 0, errOr(r, ErrInvalid)
			}
		}
	}
	if err := r.err(); err != nil {
		return 0, err
	}
	return used, nil
}

// interHeader reads the part of a P or B slice header from
// num_ref_idx_active_override_flag to five_minus_max_num_merge_cand.
func (p *Parser) interHeader(r *bitReader, s *sps, pp *pps, st SliceType, numPicTotalCurr int, temporalMVP bool) error {
	// 8.3.2: a P or B slice has a reference picture to predict from.
	if numPicTotalCurr == 0 {
		return ErrInvalid
	}
	l0, l1 := uint32(pp.numRefIdxL0DefaultMinus1), uint32(pp.numRefIdxL1DefaultMinus1)
	if r.flag() { // num_ref_idx_active_override_flag
		l0 = r.ue()
		if st == SliceB {
			l1 = r.ue()
		}
		if l0 > maxNumRefIdx || l1 > maxNumRefIdx {
			return errOr(r, ErrInvalid)
		}
	}
	if pp.listsModification && numPicTotalCurr > 1 {
		// ref_pic_lists_modification() (7.3.6.2): list_entry_lX of
		// Ceil(Log2(NumPicTotalCurr)) bits, up to NumPicTotalCurr - 1.
		n := ceilLog2(uint32(numPicTotalCurr))
		lists := 1
		if st == SliceB {
			lists = 2
		}
		for l := 0; l < lists; l++ {
			count := l0
			if l == 1 {
				count = l1
			}
			if r.flag() { // ref_pic_list_modification_flag_lX
				for i := uint32(0); i <= count; i++ {
					if r.u(n) >= uint32(numPicTotalCurr) {
						return errOr(r, ErrInvalid)
					}
				}
			}
		}
	}
	if st == SliceB {
		r.skip(1) // mvd_l1_zero_flag
	}
	if pp.cabacInitPresent {
		r.skip(1) // cabac_init_flag
	}
	if temporalMVP {
		fromL0 := true
		if st == SliceB {
			fromL0 = r.flag() // collocated_from_l0_flag
		}
		if fromL0 && l0 > 0 {
			if r.ue() > l0 { // collocated_ref_idx
				return errOr(r, ErrInvalid)
			}
		} else if !fromL0 && l1 > 0 {
			if r.ue() > l1 {
				return errOr(r, ErrInvalid)
			}
		}
	}
	if pp.weightedPred && st == SliceP || pp.weightedBipred && st == SliceB {
		if err := predWeightTable(r, s, st, l0, l1); err != nil {
			return err
		}
	}
	if r.ue() > 4 { // five_minus_max_num_merge_cand
		return errOr(r, ErrInvalid)
	}
	// use_integer_mv_flag: only with motion_vector_resolution_control_idc
	// (screen content coding, not supported).
	return errOr(r, nil)
}

// predWeightTable reads pred_weight_table() (7.3.6.3) and checks its
// ranges (7.4.7.3). Every luma_weight_lX_flag and chroma_weight_lX_flag is
// present: a reference picture of the same layer as the current picture has
// another PicOrderCntVal unless pps_curr_pic_ref_enabled_flag (not
// supported).
func predWeightTable(r *bitReader, s *sps, st SliceType, l0, l1 uint32) error {
	denom := r.ue() // luma_log2_weight_denom
	if denom > 7 {
		return errOr(r, ErrInvalid)
	}
	chroma := s.chromaArrayType != 0
	if chroma {
		c := int64(denom) + r.se() // ChromaLog2WeightDenom
		if c < 0 || c > 7 {
			return errOr(r, ErrInvalid)
		}
	}
	halfY, halfC := int64(1)<<7, int64(1)<<7 // WpOffsetHalfRangeY, WpOffsetHalfRangeC
	if s.highPrecisionOffsets {
		halfY, halfC = int64(1)<<(s.bitDepthY-1), int64(1)<<(s.bitDepthC-1)
	}
	lists := 1
	if st == SliceB {
		lists = 2
	}
	sumFlags := 0
	for l := 0; l < lists; l++ {
		n := int(l0) + 1
		if l == 1 {
			n = int(l1) + 1
		}
		var lumaFlags, chromaFlags uint16
		for i := 0; i < n; i++ {
			if r.flag() { // luma_weight_lX_flag[i]
				lumaFlags |= 1 << uint(i)
				sumFlags++
			}
		}
		if chroma {
			for i := 0; i < n; i++ {
				if r.flag() { // chroma_weight_lX_flag[i]
					chromaFlags |= 1 << uint(i)
					sumFlags += 2
				}
			}
		}
		for i := 0; i < n; i++ {
			if lumaFlags>>uint(i)&1 == 1 {
				w, o := r.se(), r.se() // delta_luma_weight_lX[i], luma_offset_lX[i]
				if w < -128 || w > 127 || o < -halfY || o >= halfY {
					return errOr(r, ErrInvalid)
				}
			}
			if chromaFlags>>uint(i)&1 == 1 {
				for j := 0; j < 2; j++ {
					w, o := r.se(), r.se() // delta_chroma_weight_lX[i][j], delta_chroma_offset_lX[i][j]
					if w < -128 || w > 127 || o < -4*halfC || o >= 4*halfC {
						return errOr(r, ErrInvalid)
					}
				}
			}
		}
	}
	// 7.4.7.3: sumWeightL0Flags (+ sumWeightL1Flags for B) <= 24.
	if sumFlags > 24 {
		return errOr(r, ErrInvalid)
	}
	return errOr(r, nil)
}
