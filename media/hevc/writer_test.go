package hevc

import (
	"encoding/binary"
	"fmt"
)

// The tests write bitstreams element by element, in the order of the
// syntax tables of ITU-T H.265, so that each hand-built header reads like
// the spec (and not like the parser).

// elem is one syntax element: u(n), ue(v) or se(v).
type elem struct {
	kind byte // 'u', 'e' (ue), 's' (se)
	n    int
	v    int64
}

func u(n int, v int64) elem { return elem{'u', n, v} }
func ue(v int64) elem       { return elem{'e', 0, v} }
func se(v int64) elem       { return elem{'s', 0, v} }
func f(b bool) elem {
	if b {
		return u(1, 1)
	}
	return u(1, 0)
}

// cat joins element lists.
func cat(parts ...[]elem) []elem {
	var out []elem
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// when returns els if c, else nothing.
func when(c bool, els ...elem) []elem {
	if c {
		return els
	}
	return nil
}

type bitWriter struct {
	b []byte
	n int // bits written
}

func (w *bitWriter) bit(v uint64) {
	if w.n%8 == 0 {
		w.b = append(w.b, 0)
	}
	if v != 0 {
		w.b[len(w.b)-1] |= 0x80 >> uint(w.n%8)
	}
	w.n++
}

func (w *bitWriter) u(n int, v uint64) {
	for i := n - 1; i >= 0; i-- {
		w.bit(v >> uint(i) & 1)
	}
}

func (w *bitWriter) ue(v uint64) {
	v++
	n := 0
	for x := v; x > 1; x >>= 1 {
		n++
	}
	w.u(n, 0)
	w.u(n+1, v)
}

func (w *bitWriter) write(els []elem) {
	for _, e := range els {
		switch e.kind {
		case 'u':
			if e.n < 64 && (e.v < 0 || e.v >= 1<<uint(e.n)) {
				panic(fmt.Sprintf("u(%d) cannot hold %d", e.n, e.v))
			}
			w.u(e.n, uint64(e.v))
		case 'e':
			if e.v < 0 {
				panic(fmt.Sprintf("ue(v) of %d", e.v))
			}
			w.ue(uint64(e.v))
		case 's':
			if e.v > 0 {
				w.ue(uint64(2*e.v - 1))
			} else {
				w.ue(uint64(-2 * e.v))
			}
		}
	}
}

// escape inserts emulation_prevention_three_bytes (7.4.2).
func escape(rbsp []byte) []byte {
	out := make([]byte, 0, len(rbsp)+len(rbsp)/64+4)
	zeros := 0
	for _, c := range rbsp {
		if zeros >= 2 && c <= 3 {
			out = append(out, 3)
			zeros = 0
		}
		out = append(out, c)
		if c == 0 {
			zeros++
		} else {
			zeros = 0
		}
	}
	return out
}

// nalUnit writes a NAL unit of the base layer, TemporalId 0: its header,
// the elements and rbsp_trailing_bits, escaped.
func nalUnit(typ int, els ...[]elem) []byte {
	w := bitWriter{}
	w.u(1, 0)           // forbidden_zero_bit
	w.u(6, uint64(typ)) // nal_unit_type
	w.u(6, 0)           // nuh_layer_id
	w.u(3, 1)           // nuh_temporal_id_plus1
	for _, e := range els {
		w.write(e)
	}
	w.u(1, 1) // rbsp_stop_one_bit
	for w.n%8 != 0 {
		w.u(1, 0)
	}
	return escape(w.b)
}

// annexB writes NAL units with 4-byte start codes.
func annexB(nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		out = append(out, 0, 0, 0, 1)
		out = append(out, n...)
	}
	return out
}

// lengthPrefixed writes NAL units each after its length in size bytes.
func lengthPrefixed(size int, nals ...[]byte) []byte {
	var out []byte
	for _, n := range nals {
		var l [4]byte
		binary.BigEndian.PutUint32(l[:], uint32(len(n)))
		out = append(out, l[4-size:]...)
		out = append(out, n...)
	}
	return out
}

// hvcC writes an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15
// 8.3.3.1) holding nals, one array per NAL unit type in order of first
// appearance.
func hvcC(lengthSize int, nals ...[]byte) []byte {
	b := []byte{
		1,             // configurationVersion
		0x01,          // general_profile_space, tier, profile_idc (Main)
		0x60, 0, 0, 0, // general_profile_compatibility_flags
		0x90, 0, 0, 0, 0, 0, // general_constraint_indicator_flags
		93,         // general_level_idc
		0xf0, 0x00, // min_spatial_segmentation_idc
		0xfc,       // parallelismType
		0xfd,       // chromaFormat 4:2:0
		0xf8, 0xf8, // bit depths 8
		0, 0, // avgFrameRate
		0x0c | byte(lengthSize-1)&3, // constantFrameRate 0, numTemporalLayers 1, temporalIdNested 1, lengthSizeMinusOne
	}
	var types []int
	byType := map[int][][]byte{}
	for _, n := range nals {
		t := nalType(n)
		if _, ok := byType[t]; !ok {
			types = append(types, t)
		}
		byType[t] = append(byType[t], n)
	}
	b = append(b, byte(len(types)))
	for _, t := range types {
		b = append(b, 0x80|byte(t), 0, 0)
		binary.BigEndian.PutUint16(b[len(b)-2:], uint16(len(byType[t])))
		for _, n := range byType[t] {
			b = binary.BigEndian.AppendUint16(b, uint16(len(n)))
			b = append(b, n...)
		}
	}
	return b
}

// ptl writes profile_tier_level(1, maxNumSubLayersMinus1) (7.3.3): Main
// profile, level 3.1; sub-layer i has a profile when profile[i] and a
// level when level[i].
func ptl(maxNumSubLayersMinus1 int, profile, level []bool) []elem {
	general := []elem{
		u(2, 0), u(1, 0), u(5, 1), // general_profile_space, tier, profile_idc
		u(32, 0x60000000), // general_profile_compatibility_flag[j]
		u(4, 0b1001),      // progressive, interlaced, non_packed, frame_only
		u(43, 0),          // general_reserved_zero_43bits
		u(1, 0),           // general_inbld_flag
	}
	els := cat(general, []elem{u(8, 93)}) // general_level_idc
	for i := 0; i < maxNumSubLayersMinus1; i++ {
		els = append(els, f(profile[i]), f(level[i]))
	}
	if maxNumSubLayersMinus1 > 0 {
		for i := maxNumSubLayersMinus1; i < 8; i++ {
			els = append(els, u(2, 0)) // reserved_zero_2bits
		}
	}
	for i := 0; i < maxNumSubLayersMinus1; i++ {
		if profile[i] {
			els = append(els, general...)
		}
		if level[i] {
			els = append(els, u(8, 90))
		}
	}
	return els
}

// scalingList writes a scaling_list_data() (7.3.4) with explicit lists for
// every size's first matrix and predicted ones for the rest (delta up to
// the largest allowed).
func scalingList() []elem {
	var els []elem
	for sizeID := 0; sizeID < 4; sizeID++ {
		step := 1
		if sizeID == 3 {
			step = 3
		}
		for matrixID := 0; matrixID < 6; matrixID += step {
			if matrixID == 0 {
				els = append(els, f(true)) // scaling_list_pred_mode_flag
				if sizeID > 1 {
					els = append(els, se(8)) // scaling_list_dc_coef_minus8
				}
				for i := 0; i < min(64, 1<<(4+2*sizeID)); i++ {
					els = append(els, se(int64(i%5-2))) // scaling_list_delta_coef
				}
				continue
			}
			els = append(els, f(false), ue(int64(matrixID/step))) // scaling_list_pred_matrix_id_delta
		}
	}
	return els
}

// spsOpts describes a hand-built SPS; baseSPS gives the defaults: 64x64
// 4:2:0 8-bit, CTB 16 (16 CTBs: slice_segment_address of 4 bits), 8-bit POC
// LSBs, SAO and TMVP on, no reference picture sets.
type spsOpts struct {
	id                 int64
	maxSubLayersMinus1 int
	subProfile         []bool
	subLevel           []bool
	orderingInfo       bool // sps_sub_layer_ordering_info_present_flag
	chroma             int64
	separate           bool
	width, height      int64
	confWin            bool
	bitDepthMinus8     int64
	maxDecMinus1       int64
	scaling            bool // scaling_list_enabled_flag with sps_scaling_list_data
	pcm                bool
	st                 [][]elem // st_ref_pic_set(i), i = 0..
	lt                 [][2]int64
	ltPresent          bool
	tmvp, sao          bool
	vui                []elem // nil: no VUI
	ext                []elem // nil: sps_extension_present_flag 0
}

func baseSPS(id int64) spsOpts {
	return spsOpts{id: id, orderingInfo: true, chroma: 1, width: 64, height: 64, maxDecMinus1: 4, tmvp: true, sao: true}
}

// spsNAL writes seq_parameter_set_rbsp() (7.3.2.2).
func spsNAL(o spsOpts) []byte {
	els := []elem{u(4, 0), u(3, int64(o.maxSubLayersMinus1)), u(1, 1)} // vps id, max_sub_layers_minus1, temporal_id_nesting
	els = append(els, ptl(o.maxSubLayersMinus1, o.subProfile, o.subLevel)...)
	els = append(els, ue(o.id), ue(o.chroma))
	els = append(els, when(o.chroma == 3, f(o.separate))...)
	els = append(els, ue(o.width), ue(o.height), f(o.confWin))
	els = append(els, when(o.confWin, ue(0), ue(2), ue(1), ue(3))...)
	els = append(els, ue(o.bitDepthMinus8), ue(o.bitDepthMinus8), ue(4)) // log2_max_pic_order_cnt_lsb_minus4: 8 bits
	els = append(els, f(o.orderingInfo))
	first := o.maxSubLayersMinus1
	if o.orderingInfo {
		first = 0
	}
	for i := first; i <= o.maxSubLayersMinus1; i++ {
		els = append(els, ue(o.maxDecMinus1), ue(1), ue(0))
	}
	// MinCb 8, CTB 16, TB 4..16, depths 1.
	els = append(els, ue(0), ue(1), ue(0), ue(2), ue(1), ue(1))
	els = append(els, f(o.scaling))
	if o.scaling {
		els = append(els, f(true))
		els = append(els, scalingList()...)
	}
	els = append(els, f(true), f(o.sao), f(o.pcm)) // amp, sao, pcm
	if o.pcm {
		els = append(els, u(4, 7), u(4, 7), ue(0), ue(1), f(false))
	}
	els = append(els, ue(int64(len(o.st))))
	for _, s := range o.st {
		els = append(els, s...)
	}
	els = append(els, f(o.ltPresent))
	if o.ltPresent {
		els = append(els, ue(int64(len(o.lt))))
		for _, lt := range o.lt {
			els = append(els, u(8, lt[0]), f(lt[1] == 1))
		}
	}
	els = append(els, f(o.tmvp), f(true), f(o.vui != nil))
	els = append(els, o.vui...)
	els = append(els, f(o.ext != nil))
	els = append(els, o.ext...)
	return nalUnit(nalSPS, els)
}

// ppsOpts describes a hand-built PPS.
type ppsOpts struct {
	id, spsID          int64
	dependent          bool
	outputFlag         bool
	extraBits          int64
	cabacInit          bool
	l0, l1             int64
	initQP             int64
	weighted, bipred   bool
	tiles              []elem // after tiles_enabled_flag = 1; nil: no tiles
	wpp                bool
	deblock            []elem // after deblocking_filter_control_present_flag = 1
	scaling            bool
	listsMod           bool
	ext                []elem
	cuQPDeltaDepth     int64 // -1: cu_qp_delta_enabled_flag 0
	sliceChromaOffsets bool
}

func basePPS(id, spsID int64) ppsOpts {
	return ppsOpts{id: id, spsID: spsID, cuQPDeltaDepth: 1, sliceChromaOffsets: true}
}

// ppsNAL writes pic_parameter_set_rbsp() (7.3.2.3.1).
func ppsNAL(o ppsOpts) []byte {
	els := []elem{
		ue(o.id), ue(o.spsID), f(o.dependent), f(o.outputFlag), u(3, o.extraBits),
		f(true), f(o.cabacInit), ue(o.l0), ue(o.l1), se(o.initQP),
		f(false), f(false), // constrained_intra_pred_flag, transform_skip_enabled_flag
		f(o.cuQPDeltaDepth >= 0),
	}
	els = append(els, when(o.cuQPDeltaDepth >= 0, ue(o.cuQPDeltaDepth))...)
	els = append(els, se(1), se(-1), f(o.sliceChromaOffsets), f(o.weighted), f(o.bipred))
	els = append(els, f(false), f(o.tiles != nil), f(o.wpp)) // transquant_bypass, tiles, entropy sync
	els = append(els, o.tiles...)
	els = append(els, f(true), f(o.deblock != nil)) // loop filter across slices, deblocking control
	els = append(els, o.deblock...)
	els = append(els, f(o.scaling))
	if o.scaling {
		els = append(els, scalingList()...)
	}
	els = append(els, f(o.listsMod), ue(0), f(false), f(o.ext != nil)) // log2_parallel_merge_level_minus2, slice header extension
	els = append(els, o.ext...)
	return nalUnit(nalPPS, els)
}
