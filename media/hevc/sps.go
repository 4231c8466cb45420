package hevc

// Limits from ITU-T H.265 (v4, 12/2016, and later).
const (
	maxSPS       = 16                  // sps_seq_parameter_set_id 0..15 (7.4.3.2.1)
	maxPPS       = 64                  // pps_pic_parameter_set_id 0..63 (7.4.3.3.1)
	maxSTRPS     = 64                  // num_short_term_ref_pic_sets 0..64
	maxLTSPS     = 32                  // num_long_term_ref_pics_sps 0..32
	maxDpbMinus1 = 15                  // sps_max_dec_pic_buffering_minus1 < MaxDpbSize <= 16 (A.4.2)
	maxRPSPics   = 16                  // entries of one list of a short-term RPS
	maxSubLayers = 7                   // sps_max_sub_layers_minus1 0..6
	maxCpbCnt    = 32                  // cpb_cnt_minus1 0..31 (E.3.2)
	maxDeltaPoc  = 32767               // delta_poc_s0_minus1, abs_delta_rps_minus1 0..2^15-1
	maxPicDim    = 16888               // pic_width/height_in_luma_samples, FFmpeg's HEVC_MAX_WIDTH (level 6.2: 8 * MaxLumaPs = 16888^2)
	maxTileDim   = (maxPicDim + 7) / 8 // PicWidthInCtbsY with CtbLog2SizeY >= 3
	maxNumRefIdx = 14                  // num_ref_idx_l*_active_minus1 0..14
	profileBits  = 88                  // a profile in profile_tier_level: space..inbld/reserved (7.3.3)
	levelBits    = 8
	ptlReserved  = 2 // reserved_zero_2bits per absent sub-layer
)

// stRPS is one short-term reference picture set, as derived in 7.4.8:
// NumNegativePics, NumPositivePics, DeltaPocS0/S1 and UsedByCurrPicS0/S1
// (a bit mask each).
type stRPS struct {
	numNeg, numPos uint8
	usedS0, usedS1 uint16
	deltaS0        [maxRPSPics]int32
	deltaS1        [maxRPSPics]int32
}

// used returns how many pictures of the set the current picture uses (the
// short-term part of NumPicTotalCurr, 7-55).
func (s *stRPS) used() int {
	n := 0
	for m := s.usedS0; m != 0; m &= m - 1 {
		n++
	}
	for m := s.usedS1; m != 0; m &= m - 1 {
		n++
	}
	return n
}

// sps holds what a slice segment header needs from a sequence parameter
// set (7.3.2.2).
type sps struct {
	valid bool  // read to its extension flags; otherwise err says why not
	err   Error // why it cannot be used

	chromaFormatIdc      uint8
	separateColourPlane  bool
	chromaArrayType      uint8
	bitDepthY, bitDepthC uint8
	log2MaxPocLsb        uint8
	log2MinCb, log2Ctb   uint8
	picWidthInCtbs       uint32
	picHeightInCtbs      uint32
	maxDecPicBufMinus1   uint8 // sps_max_dec_pic_buffering_minus1[sps_max_sub_layers_minus1]
	numSTRPS             uint8
	longTermRefsPresent  bool
	numLTRefsSPS         uint8
	usedByCurrPicLtSPS   uint32 // bit i: used_by_curr_pic_lt_sps_flag[i]
	temporalMVP          bool
	sao                  bool
	highPrecisionOffsets bool // sps_range_extension
	st                   [maxSTRPS]stRPS
}

// parseSPS reads a seq_parameter_set_rbsp (the NAL unit header skipped)
// into s, stopping after the extension flags (and the range extension).
// It returns the sps_seq_parameter_set_id (-1 when not reached).
func parseSPS(r *bitReader, s *sps) (int, error) {
	*s = sps{}
	r.skip(4) // sps_video_parameter_set_id
	maxSubLayersMinus1 := int(r.u(3))
	r.skip(1) // sps_temporal_id_nesting_flag
	if err := r.err(); err != nil {
		return -1, err
	}
	if maxSubLayersMinus1 >= maxSubLayers {
		return -1, ErrInvalid
	}
	if err := profileTierLevel(r, maxSubLayersMinus1); err != nil {
		return -1, err
	}
	id := r.ue()
	if err := r.err(); err != nil {
		return -1, err
	}
	if id >= maxSPS {
		return -1, ErrInvalid
	}
	return int(id), parseSPSBody(r, s, maxSubLayersMinus1)
}

func parseSPSBody(r *bitReader, s *sps, maxSubLayersMinus1 int) error {
	cf := r.ue()
	if cf > 3 {
		return ErrInvalid
	}
	s.chromaFormatIdc = uint8(cf)
	if cf == 3 {
		s.separateColourPlane = r.flag()
	}
	s.chromaArrayType = s.chromaFormatIdc
	if s.separateColourPlane {
		s.chromaArrayType = 0
	}
	w, h := r.ue(), r.ue()
	if r.flag() { // conformance_window_flag
		r.ue()
		r.ue()
		r.ue()
		r.ue()
	}
	bdY, bdC := r.ue(), r.ue()
	pocLsb := r.ue()
	if err := r.err(); err != nil {
		return err
	}
	if w == 0 || h == 0 || w > maxPicDim || h > maxPicDim || bdY > 8 || bdC > 8 || pocLsb > 12 {
		return ErrInvalid
	}
	s.bitDepthY, s.bitDepthC = uint8(bdY+8), uint8(bdC+8)
	s.log2MaxPocLsb = uint8(pocLsb + 4)

	orderingInfo := r.flag() // sps_sub_layer_ordering_info_present_flag
	first := maxSubLayersMinus1
	if orderingInfo {
		first = 0
	}
	prev := uint32(0)
	for i := first; i <= maxSubLayersMinus1; i++ {
		dec := r.ue()     // sps_max_dec_pic_buffering_minus1[i]
		reorder := r.ue() // sps_max_num_reorder_pics[i]
		r.ue()            // sps_max_latency_increase_plus1[i]
		if err := r.err(); err != nil {
			return err
		}
		if dec > maxDpbMinus1 || reorder > dec || dec < prev {
			return ErrInvalid
		}
		prev = dec
	}
	s.maxDecPicBufMinus1 = uint8(prev)

	minCbMinus3 := r.ue()
	diffCb := r.ue()
	minTbMinus2 := r.ue()
	diffTb := r.ue()
	depthInter := r.ue()
	depthIntra := r.ue()
	if err := r.err(); err != nil {
		return err
	}
	// 7.4.3.2.1: MinCbLog2SizeY >= 3, CtbLog2SizeY <= 6 here (4..6 in
	// every profile, A.3), MinTbLog2SizeY < MinCbLog2SizeY,
	// MaxTbLog2SizeY <= Min(CtbLog2SizeY, 5), depths up to
	// CtbLog2SizeY - MinTbLog2SizeY.
	if minCbMinus3 > 3 || diffCb > 3-minCbMinus3 {
		return ErrInvalid
	}
	s.log2MinCb = uint8(minCbMinus3 + 3)
	s.log2Ctb = s.log2MinCb + uint8(diffCb)
	minTb := minTbMinus2 + 2
	if minTb >= uint32(s.log2MinCb) || diffTb > min(uint32(s.log2Ctb), 5)-minTb ||
		depthInter > uint32(s.log2Ctb)-minTb || depthIntra > uint32(s.log2Ctb)-minTb {
		return ErrInvalid
	}
	if w%(1<<s.log2MinCb) != 0 || h%(1<<s.log2MinCb) != 0 {
		return ErrInvalid
	}
	ctb := uint32(1) << s.log2Ctb
	s.picWidthInCtbs = (w + ctb - 1) / ctb
	s.picHeightInCtbs = (h + ctb - 1) / ctb

	if r.flag() { // scaling_list_enabled_flag
		if r.flag() { // sps_scaling_list_data_present_flag
			if err := scalingListData(r); err != nil {
				return err
			}
		}
	}
	r.skip(1) // amp_enabled_flag
	s.sao = r.flag()
	if r.flag() { // pcm_enabled_flag
		pcmY, pcmC := r.u(4)+1, r.u(4)+1
		minPcmMinus3 := r.ue()
		diffPcm := r.ue()
		r.skip(1) // pcm_loop_filter_disabled_flag
		if err := r.err(); err != nil {
			return err
		}
		// 7.4.3.2.1: PCM bit depths up to the sample bit depths,
		// Log2MinIpcmCbSizeY in Min(MinCbLog2SizeY, 5)..Min(CtbLog2SizeY, 5),
		// Log2MaxIpcmCbSizeY up to Min(CtbLog2SizeY, 5).
		minPcm := minPcmMinus3 + 3
		if pcmY > uint32(s.bitDepthY) || pcmC > uint32(s.bitDepthC) ||
			minPcm < min(uint32(s.log2MinCb), 5) || minPcm > min(uint32(s.log2Ctb), 5) ||
			diffPcm > min(uint32(s.log2Ctb), 5)-minPcm {
			return ErrInvalid
		}
	}

	n := r.ue() // num_short_term_ref_pic_sets
	if err := r.err(); err != nil {
		return err
	}
	if n > maxSTRPS {
		return ErrInvalid
	}
	s.numSTRPS = uint8(n)
	for i := 0; i < int(n); i++ {
		if err := stRefPicSet(r, &s.st[i], i, s); err != nil {
			return err
		}
	}

	s.longTermRefsPresent = r.flag()
	if s.longTermRefsPresent {
		n := r.ue() // num_long_term_ref_pics_sps
		if err := r.err(); err != nil {
			return err
		}
		if n > maxLTSPS {
			return ErrInvalid
		}
		s.numLTRefsSPS = uint8(n)
		for i := 0; i < int(n); i++ {
			r.skip(int(s.log2MaxPocLsb)) // lt_ref_pic_poc_lsb_sps[i]
			if r.flag() {
				s.usedByCurrPicLtSPS |= 1 << uint(i)
			}
		}
	}
	s.temporalMVP = r.flag()
	r.skip(1)     // strong_intra_smoothing_enabled_flag
	if r.flag() { // vui_parameters_present_flag
		if err := vuiParameters(r, maxSubLayersMinus1); err != nil {
			return err
		}
	}
	if r.flag() { // sps_extension_present_flag
		rangeExt := r.flag()
		multilayerExt := r.flag()
		ext3D := r.flag()
		scc := r.flag()
		r.skip(4) // sps_extension_4bits: sps_extension_data_flag, ignored
		if rangeExt {
			// transform_skip_rotation_enabled_flag ..
			// persistent_rice_adaptation_enabled_flag, cabac_bypass_alignment_enabled_flag
			r.skip(6)
			s.highPrecisionOffsets = r.flag()
			r.skip(2)
		}
		if multilayerExt {
			r.skip(1) // inter_view_mv_vert_constraint_flag
		}
		if err := r.err(); err != nil {
			return err
		}
		// The 3D extension is not read; screen content coding changes the
		// slice header before slice_qp_delta (use_integer_mv_flag,
		// NumPicTotalCurr with the current picture as a reference).
		if ext3D || scc {
			return ErrUnsupported
		}
	}
	if err := r.err(); err != nil {
		return err
	}
	s.valid = true
	return nil
}

// profileTierLevel skips profile_tier_level(1, maxNumSubLayersMinus1)
// (7.3.3): the general profile (88 bits) and level, then each sub-layer's
// profile and level when present.
func profileTierLevel(r *bitReader, maxNumSubLayersMinus1 int) error {
	r.skip(profileBits + levelBits)
	var profilePresent, levelPresent [maxSubLayers]bool
	for i := 0; i < maxNumSubLayersMinus1; i++ {
		profilePresent[i] = r.flag()
		levelPresent[i] = r.flag()
	}
	if maxNumSubLayersMinus1 > 0 {
		r.skip(ptlReserved * (8 - maxNumSubLayersMinus1))
	}
	for i := 0; i < maxNumSubLayersMinus1; i++ {
		if profilePresent[i] {
			r.skip(profileBits)
		}
		if levelPresent[i] {
			r.skip(levelBits)
		}
	}
	if err := r.err(); err != nil {
		return err
	}
	return nil
}

// scalingListData skips scaling_list_data() (7.3.4), checking its ranges
// (7.4.5).
func scalingListData(r *bitReader) error {
	for sizeID := 0; sizeID < 4; sizeID++ {
		step := 1
		if sizeID == 3 {
			step = 3
		}
		for matrixID := 0; matrixID < 6; matrixID += step {
			if !r.flag() { // scaling_list_pred_mode_flag
				d := r.ue() // scaling_list_pred_matrix_id_delta
				if d > uint32(matrixID/step) {
					return errOr(r, ErrInvalid)
				}
				continue
			}
			coefNum := min(64, 1<<(4+(sizeID<<1)))
			if sizeID > 1 {
				dc := r.se() // scaling_list_dc_coef_minus8
				if dc < -7 || dc > 247 {
					return errOr(r, ErrInvalid)
				}
			}
			for i := 0; i < coefNum; i++ {
				d := r.se() // scaling_list_delta_coef
				if d < -128 || d > 127 {
					return errOr(r, ErrInvalid)
				}
			}
		}
	}
	if err := r.err(); err != nil {
		return err
	}
	return nil
}

// errOr returns ErrTruncated when the reader ran out of data (a value read
// past the end is 0, not what the stream said), else err.
func errOr(r *bitReader, err error) error {
	if err := r.err(); err != nil {
		return err
	}
	return err
}

// stRefPicSet reads st_ref_pic_set(stRpsIdx) (7.3.7) into dst and derives
// its variables (7.4.8). s holds the sets 0..num_short_term_ref_pic_sets-1
// already read; stRpsIdx == s.numSTRPS is the set of a slice header.
func stRefPicSet(r *bitReader, dst *stRPS, stRpsIdx int, s *sps) error {
	*dst = stRPS{}
	inter := false
	if stRpsIdx != 0 {
		inter = r.flag() // inter_ref_pic_set_prediction_flag
	}
	if !inter {
		numNeg := r.ue()
		numPos := r.ue()
		if err := r.err(); err != nil {
			return err
		}
		maxDec := uint32(s.maxDecPicBufMinus1)
		if numNeg > maxDec || numPos > maxDec-numNeg {
			return ErrInvalid
		}
		dst.numNeg, dst.numPos = uint8(numNeg), uint8(numPos)
		poc := int32(0)
		for i := 0; i < int(numNeg); i++ {
			d := r.ue() // delta_poc_s0_minus1[i]
			if d > maxDeltaPoc {
				return errOr(r, ErrInvalid)
			}
			poc -= int32(d) + 1
			dst.deltaS0[i] = poc
			if r.flag() {
				dst.usedS0 |= 1 << uint(i)
			}
		}
		poc = 0
		for i := 0; i < int(numPos); i++ {
			d := r.ue() // delta_poc_s1_minus1[i]
			if d > maxDeltaPoc {
				return errOr(r, ErrInvalid)
			}
			poc += int32(d) + 1
			dst.deltaS1[i] = poc
			if r.flag() {
				dst.usedS1 |= 1 << uint(i)
			}
		}
		if err := r.err(); err != nil {
			return err
		}
		return nil
	}

	deltaIdxMinus1 := uint32(0)
	if stRpsIdx == int(s.numSTRPS) {
		deltaIdxMinus1 = r.ue()
	}
	sign := r.flag()
	absMinus1 := r.ue()
	if err := r.err(); err != nil {
		return err
	}
	if deltaIdxMinus1 > uint32(stRpsIdx-1) || absMinus1 > maxDeltaPoc {
		return ErrInvalid
	}
	ref := &s.st[stRpsIdx-int(deltaIdxMinus1+1)]
	deltaRps := int32(absMinus1) + 1
	if sign {
		deltaRps = -deltaRps
	}
	numDelta := int(ref.numNeg) + int(ref.numPos) // NumDeltaPocs[RefRpsIdx] <= maxRPSPics
	var usedFlag, useDelta uint32                 // bit j for j = 0..NumDeltaPocs[RefRpsIdx]
	for j := 0; j <= numDelta; j++ {
		if r.flag() { // used_by_curr_pic_flag[j]
			usedFlag |= 1 << uint(j)
			useDelta |= 1 << uint(j) // use_delta_flag inferred 1
		} else if r.flag() { // use_delta_flag[j]
			useDelta |= 1 << uint(j)
		}
	}
	if err := r.err(); err != nil {
		return err
	}
	bit := func(m uint32, j int) bool { return m>>uint(j)&1 == 1 }
	nn, np := int(ref.numNeg), int(ref.numPos)

	// (7-61): the negative pictures.
	i := 0
	add0 := func(d int32, j int) bool {
		if i >= maxRPSPics {
			return false
		}
		dst.deltaS0[i] = d
		if bit(usedFlag, j) {
			dst.usedS0 |= 1 << uint(i)
		}
		i++
		return true
	}
	for j := np - 1; j >= 0; j-- {
		if d := ref.deltaS1[j] + deltaRps; d < 0 && bit(useDelta, nn+j) && !add0(d, nn+j) {
			return ErrInvalid
		}
	}
	if deltaRps < 0 && bit(useDelta, numDelta) && !add0(deltaRps, numDelta) {
		return ErrInvalid
	}
	for j := 0; j < nn; j++ {
		if d := ref.deltaS0[j] + deltaRps; d < 0 && bit(useDelta, j) && !add0(d, j) {
			return ErrInvalid
		}
	}
	dst.numNeg = uint8(i)

	// (7-62): the positive pictures.
	i = 0
	add1 := func(d int32, j int) bool {
		if i >= maxRPSPics {
			return false
		}
		dst.deltaS1[i] = d
		if bit(usedFlag, j) {
			dst.usedS1 |= 1 << uint(i)
		}
		i++
		return true
	}
	for j := nn - 1; j >= 0; j-- {
		if d := ref.deltaS0[j] + deltaRps; d > 0 && bit(useDelta, j) && !add1(d, j) {
			return ErrInvalid
		}
	}
	if deltaRps > 0 && bit(useDelta, numDelta) && !add1(deltaRps, numDelta) {
		return ErrInvalid
	}
	for j := 0; j < np; j++ {
		if d := ref.deltaS1[j] + deltaRps; d > 0 && bit(useDelta, nn+j) && !add1(d, nn+j) {
			return ErrInvalid
		}
	}
	dst.numPos = uint8(i)
	if int(dst.numNeg)+int(dst.numPos) > maxRPSPics {
		return ErrInvalid
	}
	return nil
}

// vuiParameters skips vui_parameters() (E.2.1), to reach the SPS extension
// flags.
func vuiParameters(r *bitReader, maxSubLayersMinus1 int) error {
	if r.flag() { // aspect_ratio_info_present_flag
		if r.u(8) == 255 { // aspect_ratio_idc == EXTENDED_SAR
			r.skip(32) // sar_width, sar_height
		}
	}
	if r.flag() { // overscan_info_present_flag
		r.skip(1) // overscan_appropriate_flag
	}
	if r.flag() { // video_signal_type_present_flag
		r.skip(4)     // video_format, video_full_range_flag
		if r.flag() { // colour_description_present_flag
			r.skip(24)
		}
	}
	if r.flag() { // chroma_loc_info_present_flag
		r.ue()
		r.ue()
	}
	// neutral_chroma_indication_flag, field_seq_flag,
	// frame_field_info_present_flag
	r.skip(3)
	if r.flag() { // default_display_window_flag
		r.ue()
		r.ue()
		r.ue()
		r.ue()
	}
	if r.flag() { // vui_timing_info_present_flag
		r.skip(64)    // vui_num_units_in_tick, vui_time_scale
		if r.flag() { // vui_poc_proportional_to_timing_flag
			r.ue()
		}
		if r.flag() { // vui_hrd_parameters_present_flag
			if err := hrdParameters(r, maxSubLayersMinus1); err != nil {
				return err
			}
		}
	}
	if r.flag() { // bitstream_restriction_flag
		r.skip(3) // tiles_fixed_structure_flag .. restricted_ref_pic_lists_flag
		for i := 0; i < 5; i++ {
			r.ue() // min_spatial_segmentation_idc .. log2_max_mv_length_vertical
		}
	}
	if err := r.err(); err != nil {
		return err
	}
	return nil
}

// hrdParameters skips hrd_parameters(1, maxNumSubLayersMinus1) (E.2.2).
func hrdParameters(r *bitReader, maxNumSubLayersMinus1 int) error {
	nal := r.flag()
	vcl := r.flag()
	subPic := false
	if nal || vcl {
		subPic = r.flag() // sub_pic_hrd_params_present_flag
		if subPic {
			r.skip(8 + 5 + 1 + 5) // tick_divisor_minus2 .. dpb_output_delay_du_length_minus1
		}
		r.skip(8) // bit_rate_scale, cpb_size_scale
		if subPic {
			r.skip(4) // cpb_size_du_scale
		}
		r.skip(15) // initial_cpb_removal_delay_length_minus1 .. dpb_output_delay_length_minus1
	}
	for i := 0; i <= maxNumSubLayersMinus1; i++ {
		withinCVS := true
		if !r.flag() { // fixed_pic_rate_general_flag
			withinCVS = r.flag() // fixed_pic_rate_within_cvs_flag
		}
		lowDelay := false
		if withinCVS {
			if r.ue() > 2047 { // elemental_duration_in_tc_minus1
				return errOr(r, ErrInvalid)
			}
		} else {
			lowDelay = r.flag()
		}
		cpbCnt := uint32(1)
		if !lowDelay {
			cpbCnt = r.ue() + 1 // cpb_cnt_minus1
		}
		if err := r.err(); err != nil {
			return err
		}
		if cpbCnt > maxCpbCnt {
			return ErrInvalid
		}
		for k := 0; k < btoi(nal)+btoi(vcl); k++ {
			// sub_layer_hrd_parameters(i)
			for j := uint32(0); j < cpbCnt; j++ {
				r.ue() // bit_rate_value_minus1
				r.ue() // cpb_size_value_minus1
				if subPic {
					r.ue() // cpb_size_du_value_minus1
					r.ue() // bit_rate_du_value_minus1
				}
				r.skip(1) // cbr_flag
			}
		}
		if err := r.err(); err != nil {
			return err
		}
	}
	return nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
