package hevc

import (
	"errors"
	"testing"
)

// Hand-built streams for the header paths no encoder at hand writes
// (x265 3.5 writes no inter-predicted RPS in a slice header, no lists
// modification, no long-term pictures, no extra slice header bits, no
// output flag, no colour planes, no tiles, no dependent slice segments,
// no sub-layer profiles, no HRD with sub-picture parameters), with their
// SliceQpY worked out by hand from the syntax tables of H.265 (7.3).

// The parameter sets of the hand-built cases.
var (
	// SPS 0: the defaults (64x64 4:2:0 8-bit, CTB 16, SAO, TMVP). PPS 0:
	// init_qp_minus26 -3.
	handSPS0 = spsNAL(baseSPS(0))
	handPPS0 = ppsNAL(func() ppsOpts { o := basePPS(0, 0); o.initQP = -3; return o }())

	// SPS 1: 4:4:4 with separate colour planes (ChromaArrayType 0), no
	// RPS in the SPS. PPS 1: output_flag_present_flag,
	// num_extra_slice_header_bits 3.
	handSPS1 = spsNAL(func() spsOpts { o := baseSPS(1); o.chroma, o.separate = 3, true; return o }())
	handPPS1 = ppsNAL(func() ppsOpts {
		o := basePPS(1, 1)
		o.outputFlag, o.extraBits = true, 3
		return o
	}())

	// SPS 2: two short-term RPS. Set 0: DeltaPocS0 {-1, -3} (used 1, 1),
	// DeltaPocS1 {+2} (used 0). Set 1: DeltaPocS0 {-2} (used 1).
	// PPS 2: lists_modification_present_flag, two default L0 references,
	// cabac_init_present_flag, init_qp_minus26 -3.
	handSPS2 = spsNAL(func() spsOpts {
		o := baseSPS(2)
		o.st = [][]elem{
			{ue(2), ue(1), ue(0), f(true), ue(1), f(true), ue(1), f(false)},
			{f(false), ue(1), ue(0), ue(1), f(true)},
		}
		return o
	}())
	handPPS2 = ppsNAL(func() ppsOpts {
		o := basePPS(2, 2)
		o.listsMod, o.l0, o.cabacInit, o.initQP = true, 1, true, -3
		return o
	}())

	// SPS 3: long-term pictures (3 in the SPS: used 1, 0, 1), one
	// short-term RPS {-1, +1} (both used), 7 pictures of DPB, no SAO, no
	// TMVP. PPS 3: weighted_bipred_flag, lists modification.
	handSPS3 = spsNAL(func() spsOpts {
		o := baseSPS(3)
		o.maxDecMinus1, o.ltPresent, o.tmvp, o.sao = 6, true, false, false
		o.lt = [][2]int64{{10, 1}, {20, 0}, {30, 1}}
		o.st = [][]elem{{ue(1), ue(1), ue(0), f(true), ue(0), f(true)}}
		return o
	}())
	handPPS3 = ppsNAL(func() ppsOpts {
		o := basePPS(3, 3)
		o.bipred, o.listsMod = true, true
		return o
	}())

	// SPS 4: monochrome 10-bit (QpBdOffsetY 12) with the range extension's
	// high_precision_offsets_enabled_flag; one RPS {-1}. PPS 4:
	// weighted_pred_flag, init_qp_minus26 -30.
	handSPS4opts = func() spsOpts {
		o := baseSPS(4)
		o.chroma, o.bitDepthMinus8 = 0, 2
		o.st = [][]elem{{ue(1), ue(0), ue(0), f(true)}}
		o.ext = []elem{
			f(true), f(false), f(false), f(false), u(4, 0), // range, multilayer, 3d, scc, 4bits
			u(6, 0), f(true), u(2, 0), // sps_range_extension: high_precision_offsets_enabled_flag
		}
		return o
	}()
	handSPS4 = spsNAL(handSPS4opts)
	handPPS4 = ppsNAL(func() ppsOpts {
		o := basePPS(4, 4)
		o.weighted, o.initQP = true, -30
		return o
	}())

	// SPS 5: scaling lists. PPS 5: dependent slice segments, 2x2 tiles of
	// explicit sizes, WPP, deblocking control with offsets, PPS scaling
	// lists, init_qp_minus26 4.
	handSPS5 = spsNAL(func() spsOpts { o := baseSPS(5); o.scaling = true; return o }())
	handPPS5 = ppsNAL(func() ppsOpts {
		o := basePPS(5, 5)
		o.dependent, o.wpp, o.scaling, o.initQP = true, true, true, 4
		o.tiles = []elem{ue(1), ue(1), f(false), ue(0), ue(1), f(true)}
		o.deblock = []elem{f(true), f(false), se(2), se(-3)}
		return o
	}())

	// SPS 6: 3 sub-layers (profile and level for the first, level for the
	// second; ordering info of the highest only), a conformance window,
	// scaling lists, PCM, a full VUI with HRD parameters (NAL and VCL,
	// sub-picture parameters, 2 CPBs), the multilayer extension, and 3
	// short-term RPS, the last predicted from the second (deltaRps +1):
	// DeltaPocS1 {+1} used.
	handSPS6 = spsNAL(func() spsOpts {
		o := baseSPS(6)
		o.maxSubLayersMinus1, o.subProfile, o.subLevel = 2, []bool{true, false}, []bool{true, true}
		o.orderingInfo, o.confWin, o.scaling, o.pcm, o.sao = false, true, true, true, false
		o.st = [][]elem{
			{ue(1), ue(0), ue(0), f(true)},
			{f(false), ue(2), ue(0), ue(0), f(true), ue(1), f(false)},
			{f(true), f(false), ue(0), f(true), f(false), f(false), f(true)},
		}
		o.vui = handVUI(2)
		o.ext = []elem{f(false), f(true), f(false), f(false), u(4, 0), f(false)}
		return o
	}())
	handPPS6 = ppsNAL(basePPS(6, 6))

	// SPS 7: the 3D extension. PPS 7 uses it; PPS 8: screen content
	// coding; PPS 9: an SPS never sent.
	handSPS7 = spsNAL(func() spsOpts {
		o := baseSPS(7)
		o.ext = []elem{f(false), f(false), f(true), f(false), u(4, 0)}
		return o
	}())
	handPPS7 = ppsNAL(basePPS(7, 7))
	handPPS8 = ppsNAL(func() ppsOpts {
		o := basePPS(8, 0)
		o.ext = []elem{f(false), f(false), f(false), f(true), u(4, 0)}
		return o
	}())
	handPPS9 = ppsNAL(basePPS(9, 12))

	// SPS 10: long-term pictures, none in the SPS; 16 pictures of DPB.
	// PPS 10: weighted_pred_flag.
	handSPS10 = spsNAL(func() spsOpts {
		o := baseSPS(10)
		o.maxDecMinus1, o.ltPresent = 15, true
		return o
	}())
	handPPS10 = ppsNAL(func() ppsOpts { o := basePPS(10, 10); o.weighted = true; return o }())

	handParamSets = [][]byte{
		handSPS0, handPPS0, handSPS1, handPPS1, handSPS2, handPPS2, handSPS3, handPPS3,
		handSPS4, handPPS4, handSPS5, handPPS5, handSPS6, handPPS6, handSPS7, handPPS7, handPPS8, handPPS9,
		handSPS10, handPPS10,
	}
)

// handVUI writes vui_parameters() (E.2.1) with every part present and
// hrd_parameters(1, maxSubLayersMinus1) (E.2.2) for 3 sub-layers: a
// variable rate with 2 CPBs, a fixed rate, a low-delay one.
func handVUI(maxSubLayersMinus1 int) []elem {
	subLayer := func(cpbs int) []elem { // sub_layer_hrd_parameters() with sub-picture parameters
		var els []elem
		for i := 0; i < cpbs; i++ {
			els = append(els, ue(1000), ue(2000), ue(900), ue(1900), f(i == 0))
		}
		return els
	}
	hrd := cat(
		[]elem{f(true), f(true), f(true), u(8, 23), u(5, 4), f(true), u(5, 6)}, // nal, vcl, sub_pic_hrd_params_present_flag
		[]elem{u(4, 2), u(4, 3), u(4, 1), u(5, 23), u(5, 23), u(5, 23)},
		[]elem{f(false), f(true), ue(0), ue(1)}, subLayer(2), subLayer(2), // variable: cpb_cnt_minus1 1
		[]elem{f(true), ue(3), ue(0)}, subLayer(1), subLayer(1), // fixed_pic_rate_general_flag
		[]elem{f(false), f(false), f(true)}, subLayer(1), subLayer(1), // low_delay_hrd_flag
	)
	if maxSubLayersMinus1 != 2 {
		panic("handVUI: 3 sub-layers")
	}
	return cat(
		[]elem{f(true), u(8, 255), u(16, 4), u(16, 3)},                         // aspect ratio: EXTENDED_SAR
		[]elem{f(true), f(true)},                                               // overscan
		[]elem{f(true), u(3, 5), f(false), f(true), u(8, 1), u(8, 1), u(8, 1)}, // video signal, colour description
		[]elem{f(true), ue(1), ue(1)},                                          // chroma location
		[]elem{f(false), f(false), f(true)},                                    // neutral chroma, field_seq, frame_field_info
		[]elem{f(true), ue(2), ue(2), ue(4), ue(4)},                            // default display window
		[]elem{f(true), u(32, 1001), u(32, 60000), f(true), ue(1), f(true)},    // timing, POC proportional, HRD
		hrd,
		[]elem{f(true), f(false), f(true), f(true), ue(0), ue(2), ue(1), ue(15), ue(15)}, // bitstream restriction
	)
}

// handCase is one hand-built access unit.
type handCase struct {
	name   string
	ps     [][]byte // extradata: the parameter sets
	pkt    [][]byte // the packet's NAL units
	want   int
	typ    SliceType
	slices int
	depth  int
	err    error // want ok=false with this error
	// mutant: the packet with one syntax element written as a parser
	// with a bug would read it (a wrong length, a flag too many): it must
	// not give want.
	mutant [][]byte
}

func handCases() []handCase {
	return []handCase{
		{
			name: "IDR I slice", want: 30, typ: SliceI, slices: 1, depth: 8,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{
				f(true), f(false), ue(0), // first_slice_segment_in_pic_flag, no_output_of_prior_pics_flag, slice_pic_parameter_set_id
				ue(2),            // slice_type I
				f(true), f(true), // slice_sao_luma_flag, slice_sao_chroma_flag
				se(7),        // slice_qp_delta: 26 - 3 + 7 = 30
				se(0), se(0), // slice_cb_qp_offset, slice_cr_qp_offset (not read)
			})},
			mutant: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), se(7)})}, // no slice_sao_chroma_flag
		},
		{
			name: "CRA, extra bits, output flag, colour plane", want: 22, typ: SliceI, slices: 1, depth: 8,
			pkt: [][]byte{nalUnit(nalCRA, []elem{
				f(true), f(true), ue(1), // first, no_output_of_prior_pics_flag, PPS 1
				u(3, 0b101),  // slice_reserved_flag[0..2]
				ue(2),        // slice_type I
				f(false),     // pic_output_flag
				u(2, 2),      // colour_plane_id
				u(8, 0),      // slice_pic_order_cnt_lsb
				f(false),     // short_term_ref_pic_set_sps_flag: st_ref_pic_set(0) follows
				ue(0), ue(0), // num_negative_pics, num_positive_pics
				f(false), // slice_temporal_mvp_enabled_flag
				f(true),  // slice_sao_luma_flag (ChromaArrayType 0: no chroma flag)
				se(-4),   // 26 + 0 - 4 = 22
			})},
			mutant: [][]byte{nalUnit(nalCRA, []elem{
				f(true), f(true), ue(1), u(3, 0b101), ue(2), f(false), u(2, 2), u(8, 0), f(false), ue(0), ue(0), f(false),
				f(true), f(true), // a slice_sao_chroma_flag that ChromaArrayType 0 has not
				se(-4),
			})},
		},
		{
			name: "P slice, inter-predicted RPS in the header, lists modification", want: 18, typ: SliceP, slices: 1, depth: 8,
			// st_ref_pic_set(2) predicted from set 0 (delta_idx_minus1 1)
			// with deltaRps -1: j=0 (-1 -> -2) used, j=1 (-3 -> -4)
			// kept unused, j=2 (+2 -> +1) dropped, j=3 (deltaRps -1)
			// used: DeltaPocS0 {-1, -2, -4}, used {1, 1, 0}, no S1, so
			// NumPicTotalCurr 2 and list_entry_l0 of 1 bit.
			pkt: [][]byte{nalUnit(1, []elem{
				f(true), ue(2), // first, PPS 2
				ue(1),                          // slice_type P
				u(8, 37),                       // slice_pic_order_cnt_lsb
				f(false),                       // short_term_ref_pic_set_sps_flag
				f(true), ue(1), f(true), ue(0), // inter_ref_pic_set_prediction_flag, delta_idx_minus1, delta_rps_sign, abs_delta_rps_minus1
				f(true),           // j=0 used_by_curr_pic_flag
				f(false), f(true), // j=1 not used, use_delta_flag
				f(false), f(false), // j=2 neither
				f(true),           // j=3 used
				f(true),           // slice_temporal_mvp_enabled_flag
				f(true), f(false), // SAO
				f(true), ue(2), // num_ref_idx_active_override_flag, num_ref_idx_l0_active_minus1
				f(true), u(1, 1), u(1, 0), u(1, 1), // ref_pic_list_modification_flag_l0, list_entry_l0[0..2]
				f(true), // cabac_init_flag
				ue(1),   // collocated_ref_idx (collocated_from_l0_flag inferred 1)
				ue(2),   // five_minus_max_num_merge_cand
				se(-5),  // 26 - 3 - 5 = 18
			})},
			mutant: [][]byte{nalUnit(1, []elem{
				f(true), ue(2), ue(1), u(8, 37), f(false), f(true), ue(1), f(true), ue(0),
				f(true), f(false), f(true), f(false), f(false), f(true), f(true), f(true), f(false), f(true), ue(2),
				f(true), u(2, 1), u(2, 0), u(2, 1), // entries of 2 bits, as if NumPicTotalCurr were 3 or 4
				f(true), ue(1), ue(2), se(-5),
			})},
		},
		{
			name: "B slice, long-term pictures, lists modification, weights with chroma", want: 46, typ: SliceB, slices: 1, depth: 8,
			// NumPicTotalCurr: 2 short-term + lt_idx_sps 2 and 0 (used) +
			// one coded long-term picture (used) = 5: entries of 3 bits.
			pkt: [][]byte{nalUnit(1, []elem{
				f(true), ue(3), // first, PPS 3
				ue(0),        // slice_type B
				u(8, 50),     // slice_pic_order_cnt_lsb
				f(true),      // short_term_ref_pic_set_sps_flag (one set: no index)
				ue(3), ue(1), // num_long_term_sps, num_long_term_pics
				u(2, 2), f(false), // lt_idx_sps[0] (Ceil(Log2(3)) bits), delta_poc_msb_present_flag
				u(2, 1), f(true), ue(3), // lt_idx_sps[1], delta_poc_msb_cycle_lt
				u(2, 0), f(false), // lt_idx_sps[2]
				u(8, 77), f(true), f(false), // poc_lsb_lt[3], used_by_curr_pic_lt_flag, delta_poc_msb_present_flag
				f(true), ue(1), ue(0), // override: num_ref_idx_l0_active_minus1 1, l1 0
				f(true), u(3, 4), u(3, 1), // ref_pic_list_modification_flag_l0, list_entry_l0[0..1]
				f(true), u(3, 2), // ref_pic_list_modification_flag_l1, list_entry_l1[0]
				f(false),      // mvd_l1_zero_flag
				ue(6), se(-1), // luma_log2_weight_denom, delta_chroma_log2_weight_denom
				f(true), f(false), f(false), f(true), // luma_weight_l0_flag[0..1], chroma_weight_l0_flag[0..1]
				se(3), se(-20), // delta_luma_weight_l0[0], luma_offset_l0[0]
				se(-2), se(100), se(1), se(-511), // delta_chroma_weight_l0[1][j], delta_chroma_offset_l0[1][j]
				f(true), f(true), // luma_weight_l1_flag[0], chroma_weight_l1_flag[0]
				se(-128), se(127), // luma
				se(127), se(-512), se(0), se(0), // chroma
				ue(0),  // five_minus_max_num_merge_cand
				se(20), // 26 + 0 + 20 = 46
			})},
			mutant: [][]byte{nalUnit(1, []elem{
				f(true), ue(3), ue(0), u(8, 50), f(true), ue(3), ue(1),
				u(1, 1), f(false), u(1, 1), f(true), ue(3), u(1, 0), f(false), // lt_idx_sps of 1 bit
				u(8, 77), f(true), f(false), f(true), ue(1), ue(0), f(true), u(3, 4), u(3, 1), f(true), u(3, 2), f(false),
				ue(6), se(-1), f(true), f(false), f(false), f(true), se(3), se(-20), se(-2), se(100), se(1), se(-511),
				f(true), f(true), se(-128), se(127), se(127), se(-512), se(0), se(0), ue(0), se(20),
			})},
		},
		{
			name: "monochrome 10-bit P slice, high-precision weights, negative QP", want: -9, typ: SliceP, slices: 1, depth: 10,
			pkt: [][]byte{nalUnit(1, []elem{
				f(true), ue(4), ue(1), u(8, 3), // first, PPS 4, P, POC LSB
				f(true),         // short_term_ref_pic_set_sps_flag
				f(false),        // slice_temporal_mvp_enabled_flag
				f(true),         // slice_sao_luma_flag only
				f(false),        // no override: one L0 reference
				ue(3),           // luma_log2_weight_denom (no chroma)
				f(true),         // luma_weight_l0_flag[0] (no chroma flags)
				se(-7), se(400), // delta_luma_weight_l0, luma_offset_l0: beyond 127, within 2^9
				ue(1),  // five_minus_max_num_merge_cand
				se(-5), // 26 - 30 - 5 = -9 >= -QpBdOffsetY = -12
			})},
		},
		{
			name: "slice segments: dependent one skipped, mean rounded half up", want: 32, typ: SliceI, slices: 2, depth: 8,
			pkt: [][]byte{
				nalUnit(nalIDRNLP, []elem{f(true), f(false), ue(5), ue(2), f(true), f(true), se(0)}), // 30
				nalUnit(nalIDRNLP, []elem{ // dependent: first 0, dependent_slice_segment_flag, address 5 of 4 bits
					f(false), f(false), ue(5), f(true), u(4, 5),
				}),
				nalUnit(nalIDRNLP, []elem{
					f(false), f(false), ue(5), f(false), u(4, 8), // independent at address 8
					ue(2), f(true), f(true), se(3), // 33
				}),
			},
			mutant: [][]byte{
				nalUnit(nalIDRNLP, []elem{f(true), f(false), ue(5), ue(2), f(true), f(true), se(0)}),
				nalUnit(nalIDRNLP, []elem{f(false), f(false), ue(5), f(false), u(3, 4), ue(2), f(true), f(true), se(3)}), // address of 3 bits
			},
		},
		{
			name: "mean rounded half away from zero", want: -2, typ: SliceI, slices: 2, depth: 10,
			pkt: [][]byte{
				nalUnit(nalIDRNLP, []elem{f(true), f(false), ue(4), ue(2), f(true), se(3)}),           // -1
				nalUnit(nalIDRNLP, []elem{f(false), f(false), ue(4), u(4, 4), ue(2), f(true), se(2)}), // -2
			},
		},
		{
			name: "P slice with the RPS index of 3 SPS sets, SPS with VUI, HRD, sub-layers", want: 25, typ: SliceP, slices: 1, depth: 8,
			pkt: [][]byte{nalUnit(1, []elem{
				f(true), ue(6), ue(1), u(8, 9), // first, PPS 6, P, POC LSB
				f(true), u(2, 2), // short_term_ref_pic_set_sps_flag, short_term_ref_pic_set_idx (2 bits)
				f(true),  // slice_temporal_mvp_enabled_flag (no SAO)
				f(false), // no override: one L0 reference, so no collocated_ref_idx
				ue(0),    // five_minus_max_num_merge_cand
				se(-1),   // 25
			})},
			mutant: [][]byte{nalUnit(1, []elem{f(true), ue(6), ue(1), u(8, 9), f(true), u(1, 1), f(true), f(false), ue(0), se(-1)})},
		},
		{
			name: "P slice, 15 long-term pictures, 15 weighted references: a header past the first 128 bytes read",
			want: 51, typ: SliceP, slices: 1, depth: 8,
			pkt:    [][]byte{nalUnit(1, longHeader(15))},
			mutant: [][]byte{nalUnit(1, longHeader(14))},
		},
		{
			name: "parameter sets in the packet",
			want: 35, typ: SliceI, slices: 1, depth: 8, ps: [][]byte{},
			pkt: [][]byte{
				nalUnit(nalVPS, []elem{u(16, 0xffff)}), // not read
				spsNAL(baseSPS(0)), handPPS0,
				nalUnit(39, []elem{u(8, 5), u(8, 1), u(8, 0)}), // SEI
				nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(12)}),
			},
		},
		{
			name: "SCC PPS", err: ErrUnsupported,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(8), ue(2), f(true), f(true), se(0)})},
		},
		{
			name: "3D extension SPS", err: ErrUnsupported,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(7), ue(2), f(true), f(true), se(0)})},
		},
		{
			name: "unknown PPS", err: ErrUnknownParameterSet,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(11), ue(2), f(true), f(true), se(0)})},
		},
		{
			name: "PPS of an unknown SPS", err: ErrUnknownParameterSet,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(9), ue(2), f(true), f(true), se(0)})},
		},
		{
			name: "SliceQpY above 51", err: ErrInvalid,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(29)})},
		},
		{
			name: "SliceQpY below -QpBdOffsetY", err: ErrInvalid,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(-24)})},
		},
		{
			name: "P slice in an IDR picture", err: ErrInvalid,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(1), f(true), f(true), f(false), ue(0), se(0)})},
		},
		{
			name: "slice_type 3", err: ErrInvalid,
			pkt: [][]byte{nalUnit(1, []elem{f(true), ue(0), ue(3), u(8, 0), f(false), ue(0), ue(0), se(0)})},
		},
		{
			name: "P slice without a reference picture", err: ErrInvalid,
			pkt: [][]byte{nalUnit(1, []elem{f(true), ue(0), ue(1), u(8, 1), f(false), ue(0), ue(0), f(false), f(true), f(true), f(false), ue(0), se(0)})},
		},
		{
			name: "no slice", err: ErrNoPicture,
			pkt: [][]byte{nalUnit(35, []elem{u(3, 0)}), nalUnit(39, []elem{u(8, 5), u(8, 1), u(8, 0)})},
		},
		{
			name: "forbidden_zero_bit", err: ErrInvalid,
			pkt: [][]byte{func() []byte {
				n := nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(7)})
				n[0] |= 0x80
				return n
			}()},
		},
		{
			name: "enhancement layer skipped", err: ErrNoPicture,
			pkt: [][]byte{func() []byte {
				n := nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(7)})
				n[1] |= 1 << 3 // nuh_layer_id 1
				return n
			}()},
		},
		{
			name: "truncated slice", err: ErrTruncated,
			pkt: [][]byte{nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2)})[:3]},
		},
	}
}

// longHeader writes a P slice header of PPS 10 of about 230 bytes: n
// long-term pictures announced (num_long_term_pics), 15 written, each with
// the longest delta_poc_msb_cycle_lt allowed (2^24 for 8-bit POC LSBs), 15
// references with the most weight flags allowed (24: 8 luma, 8 chroma) at
// their longest values. SliceQpY 51.
func longHeader(n int64) []elem {
	els := []elem{
		f(true), ue(10), ue(1), u(8, 5), // first, PPS 10, P, POC LSB
		f(false), ue(0), ue(0), // st_ref_pic_set(0): empty
		ue(n), // num_long_term_pics (no num_long_term_sps: none in the SPS)
	}
	for i := 0; i < 15; i++ {
		els = append(els, u(8, int64(100+i)), f(true), f(true), ue(1<<24)) // poc_lsb_lt, used_by_curr_pic_lt_flag, delta_poc_msb_present_flag, delta_poc_msb_cycle_lt
	}
	els = append(els, f(false), f(true), f(true)) // slice_temporal_mvp_enabled_flag, SAO
	els = append(els, f(true), ue(14))            // num_ref_idx_l0_active_minus1 14
	els = append(els, ue(7), se(0))               // luma_log2_weight_denom, delta_chroma_log2_weight_denom
	for i := 0; i < 15; i++ {
		els = append(els, f(i < 8)) // luma_weight_l0_flag[i]
	}
	for i := 0; i < 15; i++ {
		els = append(els, f(i < 8)) // chroma_weight_l0_flag[i]
	}
	for i := 0; i < 8; i++ {
		els = append(els, se(-128), se(-128), se(-128), se(-512), se(-128), se(-512))
	}
	return append(els, ue(4), se(25)) // five_minus_max_num_merge_cand, slice_qp_delta: 26 + 0 + 25
}

// readHand reads a case through a fresh Parser: the parameter sets as
// Annex B extradata then the packet in Annex B (lengthSize 0), or as an
// hvcC record then the packet with length prefixes of lengthSize bytes.
func readHand(t *testing.T, ps, pkt [][]byte, lengthSize int) (int, bool, Picture) {
	t.Helper()
	var p Parser
	var ext, data []byte
	if lengthSize == 0 {
		ext, data = annexB(ps...), annexB(pkt...)
	} else {
		ext, data = hvcC(lengthSize, ps...), lengthPrefixed(lengthSize, pkt...)
	}
	if len(ps) > 0 {
		ls, err := p.Extradata(ext)
		if err != nil && !errors.Is(err, ErrUnsupported) { // SPS 7 and PPS 8 are unsupported on purpose
			t.Fatalf("Extradata: %v", err)
		}
		if ls != lengthSize {
			t.Fatalf("Extradata: length size %d, want %d", ls, lengthSize)
		}
	}
	qp, ok := p.Packet(data, lengthSize)
	return qp, ok, p.Last()
}

func TestHandBuilt(t *testing.T) {
	for _, c := range handCases() {
		ps := c.ps
		if ps == nil {
			ps = handParamSets
		}
		for _, ls := range []int{0, 2, 4} {
			qp, ok, pic := readHand(t, ps, c.pkt, ls)
			if c.err != nil {
				if ok || !errors.Is(pic.Err, c.err) {
					t.Errorf("%s (length size %d): got %d, %v (%v), want ok=false with %v", c.name, ls, qp, ok, pic.Err, c.err)
				}
				continue
			}
			if !ok || qp != c.want || pic.QP != c.want || pic.Type != c.typ || pic.Slices != c.slices || pic.BitDepth != c.depth || pic.Err != nil {
				t.Errorf("%s (length size %d): got %d, %v, %+v; want %d, %s slices, %d of them, depth %d",
					c.name, ls, qp, ok, pic, c.want, c.typ, c.slices, c.depth)
			}
		}
		if c.mutant != nil {
			if qp, ok, _ := readHand(t, ps, c.mutant, 0); ok && qp == c.want {
				t.Errorf("%s: the mutant reads as the case does (%d): the case does not test its element", c.name, qp)
			}
		}
	}
}

// TestHandRangeExtension: without the SPS range extension, the luma offset
// 400 of the 10-bit case is out of range.
func TestHandRangeExtension(t *testing.T) {
	o := handSPS4opts
	o.ext = nil
	var c handCase
	for _, h := range handCases() {
		if h.want == -9 {
			c = h
		}
	}
	if c.pkt == nil {
		t.Fatal("no 10-bit case")
	}
	ps := [][]byte{spsNAL(o), handPPS4}
	if qp, ok, pic := readHand(t, ps, c.pkt, 0); ok || !errors.Is(pic.Err, ErrInvalid) {
		t.Errorf("got %d, %v, %v; want ErrInvalid", qp, ok, pic.Err)
	}
	ps[0] = handSPS4
	if qp, ok, _ := readHand(t, ps, c.pkt, 0); !ok || qp != -9 {
		t.Errorf("with the extension: got %d, %v; want -9", qp, ok)
	}
}

// TestHandTruncated: every prefix of every NAL unit of a readable case
// reads as the whole (what it read was all there) or gives ok=false,
// never another value; and a flipped bit anywhere never panics nor gives a
// value out of range.
func TestHandTruncated(t *testing.T) {
	for _, c := range handCases() {
		if c.err != nil {
			continue
		}
		ps := c.ps
		if ps == nil {
			ps = handParamSets
		}
		for i := range c.pkt {
			for n := 1; n < len(c.pkt[i]); n++ { // (cut to 0 bytes, it is no NAL unit)
				pkt := append([][]byte(nil), c.pkt...)
				pkt[i] = c.pkt[i][:n]
				for _, ls := range []int{0, 4} {
					if qp, ok, _ := readHand(t, ps, pkt, ls); ok && qp != c.want {
						t.Errorf("%s: NAL unit %d cut to %d bytes (length size %d): %d, want %d or ok=false", c.name, i, n, ls, qp, c.want)
					}
				}
			}
			for bit := 0; bit < 8*len(c.pkt[i]); bit++ {
				pkt := append([][]byte(nil), c.pkt...)
				pkt[i] = append([]byte(nil), c.pkt[i]...)
				pkt[i][bit/8] ^= 0x80 >> uint(bit%8)
				if qp, ok, pic := readHand(t, ps, pkt, 4); ok && (qp > 51 || qp < -6*(pic.BitDepth-8)) {
					t.Errorf("%s: NAL unit %d bit %d flipped: %d out of range", c.name, i, bit, qp)
				}
			}
		}
	}
}

// TestParameterSetReplaced: an SPS or PPS that cannot be read replaces the
// previous version of its id, so that no slice is read against it.
func TestParameterSetReplaced(t *testing.T) {
	idr := nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(7)})
	var p Parser
	if _, err := p.Extradata(annexB(handSPS0, handPPS0)); err != nil {
		t.Fatal(err)
	}
	if qp, ok := p.Packet(annexB(idr), 0); !ok || qp != 30 {
		t.Fatalf("got %d, %v, want 30", qp, ok)
	}
	badSPS := handSPS0[:len(handSPS0)-2] // cut after its id
	if qp, ok := p.Packet(annexB(badSPS, idr), 0); ok || !errors.Is(p.Last().Err, ErrTruncated) {
		t.Errorf("after a cut SPS: got %d, %v, %v; want ErrTruncated", qp, ok, p.Last().Err)
	}
	if qp, ok := p.Packet(annexB(handSPS0, idr), 0); !ok || qp != 30 {
		t.Errorf("SPS sent again: got %d, %v, want 30", qp, ok)
	}
	badPPS := ppsNAL(func() ppsOpts { o := basePPS(0, 0); o.initQP = 26; return o }()) // init_qp_minus26 above 25
	if qp, ok := p.Packet(annexB(badPPS, idr), 0); ok || !errors.Is(p.Last().Err, ErrInvalid) {
		t.Errorf("after an invalid PPS: got %d, %v, %v; want ErrInvalid", qp, ok, p.Last().Err)
	}
}

func TestExtradataErrors(t *testing.T) {
	good := hvcC(4, handSPS0, handPPS0)
	tests := []struct {
		name string
		b    []byte
		ls   int
		err  error
	}{
		{"empty", nil, 0, ErrTruncated},
		{"short record", good[:22], 0, ErrTruncated},
		{"version 0", append([]byte{0}, good[1:]...), 0, ErrUnsupported},
		{"length size 3", func() []byte { b := append([]byte(nil), good...); b[21] = b[21]&^3 | 2; return b }(), 0, ErrUnsupported},
		{"array cut", good[:24], 4, ErrTruncated},
		{"NAL unit cut", good[:len(good)-3], 4, ErrTruncated},
		{"PPS cut", append(hvcC(2, handSPS0, handPPS0[:2]), 0), 2, ErrTruncated},
		{"SCC PPS", hvcC(1, handSPS0, handPPS8), 1, ErrUnsupported},
		{"Annex B SPS cut", annexB(handSPS0[:10]), 0, ErrTruncated},
		{"good", good, 4, nil},
		{"Annex B, 3-byte start code", append([]byte{0, 0, 1}, handSPS0...), 0, nil},
	}
	for _, tt := range tests {
		var p Parser
		ls, err := p.Extradata(tt.b)
		if ls != tt.ls || !errors.Is(err, tt.err) || (err == nil) != (tt.err == nil) {
			t.Errorf("%s: got %d, %v; want %d, %v", tt.name, ls, err, tt.ls, tt.err)
		}
	}
}

func TestPacketLengthSize(t *testing.T) {
	idr := nalUnit(nalIDRWRADL, []elem{f(true), f(false), ue(0), ue(2), f(true), f(true), se(7)})
	var p Parser
	if _, err := p.Extradata(annexB(handSPS0, handPPS0)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		b    []byte
		ls   int
		want int
		err  error
	}{
		{"1-byte lengths", lengthPrefixed(1, idr), 1, 30, nil},
		{"3-byte lengths", []byte{0, 0, byte(len(idr))}, 3, 0, ErrUnsupported},
		{"length past the end", lengthPrefixed(4, idr)[:len(idr)], 4, 0, ErrTruncated},
		{"length cut", []byte{0, 0}, 4, 0, ErrTruncated},
		{"zero-length NAL units", append(lengthPrefixed(2, nil, idr), 0, 0), 2, 30, nil},
		{"Annex B with zero bytes", append(append([]byte{0, 0, 0, 0, 1}, idr...), 0, 0, 0, 0, 0, 1, 0, 0), 0, 30, nil},
		{"empty", nil, 0, 0, ErrNoPicture},
	}
	for _, tt := range tests {
		qp, ok := p.Packet(tt.b, tt.ls)
		if tt.err != nil {
			if ok || !errors.Is(p.Last().Err, tt.err) {
				t.Errorf("%s: got %d, %v, %v; want %v", tt.name, qp, ok, p.Last().Err, tt.err)
			}
		} else if !ok || qp != tt.want {
			t.Errorf("%s: got %d, %v, %v; want %d", tt.name, qp, ok, p.Last().Err, tt.want)
		}
	}
}
