package hevc

// pps holds what a slice segment header needs from a picture parameter set
// (7.3.2.3.1). Its syntax does not depend on the SPS; the ranges that do
// are checked when a slice activates it (checkActivation).
type pps struct {
	valid bool  // read to its extension flags; otherwise err says why not
	err   Error // why it cannot be used

	spsID                    uint8
	dependentSliceSegments   bool
	outputFlagPresent        bool
	numExtraSliceHeaderBits  uint8
	cabacInitPresent         bool
	numRefIdxL0DefaultMinus1 uint8
	numRefIdxL1DefaultMinus1 uint8
	initQPMinus26            int32
	cuQPDeltaEnabled         bool
	diffCuQPDeltaDepth       uint32
	weightedPred             bool
	weightedBipred           bool
	tiles                    bool
	numTileColumnsMinus1     uint32
	numTileRowsMinus1        uint32
	listsModification        bool
	log2ParallelMergeMinus2  uint32
}

// parsePPS reads a pic_parameter_set_rbsp (the NAL unit header skipped)
// into p up to its extension flags. It returns the pps_pic_parameter_set_id
// (-1 when not reached).
func parsePPS(r *bitReader, p *pps) (int, error) {
	*p = pps{}
	id := r.ue()
	spsID := r.ue()
	if err := r.err(); err != nil {
		return -1, err
	}
	if id >= maxPPS {
		return -1, ErrInvalid
	}
	if spsID >= maxSPS {
		return int(id), ErrInvalid
	}
	p.spsID = uint8(spsID)
	return int(id), parsePPSBody(r, p)
}

func parsePPSBody(r *bitReader, p *pps) error {
	p.dependentSliceSegments = r.flag()
	p.outputFlagPresent = r.flag()
	p.numExtraSliceHeaderBits = uint8(r.u(3))
	r.skip(1) // sign_data_hiding_enabled_flag
	p.cabacInitPresent = r.flag()
	l0, l1 := r.ue(), r.ue()
	initQP := r.se() // init_qp_minus26: -(26 + QpBdOffsetY)..25, checked on activation
	r.skip(2)        // constrained_intra_pred_flag, transform_skip_enabled_flag
	p.cuQPDeltaEnabled = r.flag()
	if p.cuQPDeltaEnabled {
		p.diffCuQPDeltaDepth = r.ue()
	}
	cb, cr := r.se(), r.se() // pps_cb_qp_offset, pps_cr_qp_offset
	r.skip(1)                // pps_slice_chroma_qp_offsets_present_flag
	p.weightedPred = r.flag()
	p.weightedBipred = r.flag()
	r.skip(1) // transquant_bypass_enabled_flag
	p.tiles = r.flag()
	r.skip(1) // entropy_coding_sync_enabled_flag
	if err := r.err(); err != nil {
		return err
	}
	if l0 > maxNumRefIdx || l1 > maxNumRefIdx || initQP < -(26+6*8) || initQP > 25 ||
		cb < -12 || cb > 12 || cr < -12 || cr > 12 || p.diffCuQPDeltaDepth > 3 {
		return ErrInvalid
	}
	p.numRefIdxL0DefaultMinus1, p.numRefIdxL1DefaultMinus1 = uint8(l0), uint8(l1)
	p.initQPMinus26 = int32(initQP)
	if p.tiles {
		p.numTileColumnsMinus1 = r.ue()
		p.numTileRowsMinus1 = r.ue()
		if err := r.err(); err != nil {
			return err
		}
		// Up to PicWidthInCtbsY - 1 and PicHeightInCtbsY - 1, checked
		// on activation; bounded here before looping on them.
		if p.numTileColumnsMinus1 >= maxTileDim || p.numTileRowsMinus1 >= maxTileDim ||
			p.numTileColumnsMinus1 == 0 && p.numTileRowsMinus1 == 0 {
			return ErrInvalid
		}
		if !r.flag() { // uniform_spacing_flag
			for i := uint32(0); i < p.numTileColumnsMinus1; i++ {
				r.ue() // column_width_minus1[i]
			}
			for i := uint32(0); i < p.numTileRowsMinus1; i++ {
				r.ue() // row_height_minus1[i]
			}
		}
		r.skip(1) // loop_filter_across_tiles_enabled_flag
	}
	r.skip(1)     // pps_loop_filter_across_slices_enabled_flag
	if r.flag() { // deblocking_filter_control_present_flag
		r.skip(1)      // deblocking_filter_override_enabled_flag
		if !r.flag() { // pps_deblocking_filter_disabled_flag
			beta, tc := r.se(), r.se()
			if beta < -6 || beta > 6 || tc < -6 || tc > 6 {
				return errOr(r, ErrInvalid)
			}
		}
	}
	if r.flag() { // pps_scaling_list_data_present_flag
		if err := scalingListData(r); err != nil {
			return err
		}
	}
	p.listsModification = r.flag()
	p.log2ParallelMergeMinus2 = r.ue()
	r.skip(1)     // slice_segment_header_extension_present_flag
	if r.flag() { // pps_extension_present_flag
		r.skip(1) // pps_range_extension_flag: its syntax changes nothing before slice_qp_delta
		r.skip(1) // pps_multilayer_extension_flag: only for nuh_layer_id > 0
		ext3D := r.flag()
		scc := r.flag()
		if err := r.err(); err != nil {
			return err
		}
		// Screen content coding (pps_curr_pic_ref_enabled_flag counts the
		// current picture in NumPicTotalCurr and in the weight tables) and
		// the 3D extension are not read.
		if ext3D || scc {
			return ErrUnsupported
		}
	}
	if err := r.err(); err != nil {
		return err
	}
	p.valid = true
	return nil
}

// checkActivation checks the ranges of p that depend on its SPS s
// (7.4.3.3.1).
func (p *pps) checkActivation(s *sps) error {
	qpBdOffsetY := 6 * (int32(s.bitDepthY) - 8)
	if p.initQPMinus26 < -(26+qpBdOffsetY) ||
		p.diffCuQPDeltaDepth > uint32(s.log2Ctb-s.log2MinCb) ||
		p.log2ParallelMergeMinus2 > uint32(s.log2Ctb)-2 ||
		p.tiles && (p.numTileColumnsMinus1 >= s.picWidthInCtbs || p.numTileRowsMinus1 >= s.picHeightInCtbs) {
		return ErrInvalid
	}
	return nil
}
