// Package hevc reads the slice quantizer of HEVC / H.265 pictures from
// their compressed packets: SliceQpY = 26 + init_qp_minus26 (PPS) +
// slice_qp_delta (slice segment header), averaged over a picture's
// independent slice segments.
//
// Why: FFmpeg 5.1's HEVC decoder exports no quantizers (for H.264 the
// decoder's AV_FRAME_DATA_VIDEO_ENC_PARAMS gives them), so without this
// parser a starved HEVC encode, an encoder held at QP 51, is invisible to
// the quantizer cue of the detail-loss detector. The value is on the QP
// scale of H.264 and HEVC (the same 6 steps per doubling of the step size),
// offset by the bit depth: -QpBdOffsetY..51, QpBdOffsetY = 6 * (BitDepthY -
// 8); Parser.Last reports BitDepthY so that the caller can rescale.
//
// What it reads: the SPS (through its VUI, to its extension flags), the PPS
// (to its extension flags) and each slice segment header up to
// slice_qp_delta, following ITU-T H.265 v4 (12/2016) and later editions
// (the syntax used here has not changed since; v4 added the screen content
// coding extensions, which this parser does not read: an SPS or PPS that
// enables them makes its pictures unreadable, ok=false, as does the 3D
// extension). Parameter sets come from codec extradata (hvcC or Annex B)
// and from the packets themselves. Only the base layer (nuh_layer_id 0) is
// read; VPS are not needed.
//
// What it does not read: the coding units. Each coding unit may move its
// QP by cu_qp_delta when the PPS enables it (adaptive quantization); the
// value here is the slice's base QP, which for x265 and most encoders with
// adaptive quantization is the picture's base level, the one rate control
// chose, not the mean of the coding units' QPs.
//
// It never guesses: a header that cannot be read to slice_qp_delta (an
// unknown parameter set, a truncated or corrupt header, a value out of the
// spec's range) gives ok=false, and no input makes it panic or loop without
// bound. Reading a packet allocates nothing once its parameter sets are
// stored.
package hevc
