package hevc

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The encoder tests: clips encoded with FFmpeg and libx265, their slice
// QPs read here and by the oracle, FFmpeg's trace_headers bitstream filter
// (CBS, its own H.265 parser), which prints every syntax element it reads.
// Each clip is 1-2 s of 320x180 (640x360 where a case needs more CTUs),
// encoded with one x265 worker thread.

// ffmpegCheck tells once per test binary whether ffmpeg with libx265 is
// here.
var ffmpegCheck = sync.OnceValue(func() string {
	path, err := exec.LookPath("ffmpeg")
	if err != nil {
		return "ffmpeg not found in PATH"
	}
	out, err := exec.Command(path, "-hide_banner", "-encoders").Output()
	if err != nil {
		return fmt.Sprintf("ffmpeg -encoders: %v", err)
	}
	if !bytes.Contains(out, []byte("libx265")) {
		return "ffmpeg has no libx265 encoder"
	}
	return ""
})

// needFFmpeg skips the test without ffmpeg and libx265, unless
// STREAMQC_REQUIRE_TSTOOLS=1 (make test, whose packaging/deps.sh installs
// Debian's ffmpeg, built with libx265) makes it fail.
func needFFmpeg(t testing.TB) {
	t.Helper()
	if why := ffmpegCheck(); why != "" {
		if os.Getenv("STREAMQC_REQUIRE_TSTOOLS") == "1" {
			t.Fatalf("encoder tests need ffmpeg with libx265: %s", why)
		}
		t.Skipf("encoder tests need ffmpeg with libx265 (apt-get install ffmpeg): %s", why)
	}
}

// encCase is one clip: a lavfi source, filters, pixel format, x265
// parameters, and the syntax elements its trace must show (name or
// name=value) for the case to cover the header path it is for.
type encCase struct {
	name   string
	src    string // lavfi source (default: 2 s of testsrc2 at 320x180)
	vf     string // filters (default: temporal noise, so that QPs vary)
	pixFmt string // default yuv420p
	params string // x265 parameters
	passes int    // 2: a first pass writes the stats the second reads
	// setup writes what the case needs in dir and returns more x265
	// parameters.
	setup func(t *testing.T, dir string) string
	// broken: the encoder writes an SPS that H.265 does not allow (the
	// oracle and FFmpeg's decoder reject it too): every picture must give
	// ok=false with this error.
	broken error
	paths  []string
	// nonzero: elements the trace must show with a value other than 0.
	nonzero []string
	check   func(t *testing.T, pics []oraclePic)
}

const (
	srcDefault = "testsrc2=size=320x180:rate=25:duration=2"
	vfDefault  = "noise=alls=12:allf=t"
)

// encode writes the case's clip as an Annex B elementary stream in dir.
func encode(t *testing.T, dir string, c encCase) string {
	t.Helper()
	src, vf, pix := c.src, c.vf, c.pixFmt
	if src == "" {
		src = srcDefault
	}
	if vf == "" {
		vf = vfDefault
	}
	if pix == "" {
		pix = "yuv420p"
	}
	out := filepath.Join(dir, "clip.hevc")
	params := c.params + ":pools=1:frame-threads=1:log-level=error"
	if c.setup != nil {
		params += ":" + c.setup(t, dir)
	}
	run := func(params string) {
		cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-loglevel", "warning", "-y",
			"-f", "lavfi", "-i", src, "-vf", vf, "-pix_fmt", pix,
			"-c:v", "libx265", "-preset", "fast", "-x265-params", params, "-f", "hevc", out)
		cmd.Dir = dir
		msg, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, msg)
		}
		// A misspelt x265 parameter is only a warning.
		for _, bad := range []string{"Unknown option", "Invalid value", "Error parsing option"} {
			if bytes.Contains(msg, []byte(bad)) {
				t.Fatalf("%s:\n%s", cmd, msg)
			}
		}
	}
	if c.passes == 2 {
		stats := filepath.Join(dir, "x265.stats")
		run(params + ":pass=1:stats=" + stats)
		run(params + ":pass=2:stats=" + stats)
	} else {
		run(params)
	}
	return out
}

// oraclePic is a picture as FFmpeg's trace_headers read it.
type oraclePic struct {
	qp     int // mean SliceQpY of its independent slice segments, rounded half away from 0
	typ    SliceType
	slices int
	qps    []int
}

// traceLine matches an element line of trace_headers: bit position, name,
// bits, value.
var traceLine = regexp.MustCompile(`^\d+\s+(\S+)\s+[01]+\s+=\s+(-?\d+)$`)

// oracle runs trace_headers on the clip and returns its pictures in
// decoding order, and every element it printed as "name" and
// "name=value" (index brackets kept).
func oracle(t *testing.T, path string) ([]oraclePic, map[string]bool) {
	t.Helper()
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-nostats", "-v", "debug",
		"-i", path, "-c:v", "copy", "-bsf:v", "trace_headers", "-an", "-f", "null", "-")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, tail(out))
	}
	const prefix = "[trace_headers @ "
	var (
		pics    []oraclePic
		seen    = map[string]bool{}
		section string
		initQP  = map[int]int{} // pps id -> init_qp_minus26
		ppsID   int
		slice   struct {
			first, dependent bool
			pps              int
			typ              int
		}
	)
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		i := strings.Index(line, prefix)
		if i < 0 {
			continue
		}
		line = line[i+len(prefix):]
		j := strings.Index(line, "] ")
		if j < 0 {
			continue
		}
		line = strings.TrimSpace(line[j+2:])
		m := traceLine.FindStringSubmatch(line)
		if m == nil {
			section = line // a header: "Slice Segment Header", "Picture Parameter Set", ...
			continue
		}
		name := m[1]
		v, err := strconv.Atoi(m[2])
		if err != nil {
			t.Fatalf("trace line %q: %v", line, err)
		}
		seen[name] = true
		seen[name+"="+m[2]] = true
		switch section {
		case "Picture Parameter Set":
			switch name {
			case "pps_pic_parameter_set_id":
				ppsID = v
			case "init_qp_minus26":
				initQP[ppsID] = v
			}
		case "Slice Segment Header":
			switch name {
			case "first_slice_segment_in_pic_flag":
				slice.first, slice.dependent, slice.typ = v == 1, false, -1
				if slice.first {
					pics = append(pics, oraclePic{})
				}
			case "slice_pic_parameter_set_id":
				slice.pps = v
			case "dependent_slice_segment_flag":
				slice.dependent = v == 1
			case "slice_type":
				slice.typ = v
			case "slice_qp_delta":
				if len(pics) == 0 || slice.dependent {
					t.Fatalf("trace: slice_qp_delta outside a picture or in a dependent slice segment")
				}
				q, ok := initQP[slice.pps]
				if !ok {
					t.Fatalf("trace: slice of PPS %d before the PPS", slice.pps)
				}
				p := &pics[len(pics)-1]
				if p.slices == 0 {
					p.typ = SliceType(slice.typ)
				}
				p.qps = append(p.qps, 26+q+v)
				p.slices++
			}
		}
	}
	for i := range pics {
		sum := int64(0)
		for _, q := range pics[i].qps {
			sum += int64(q)
		}
		if pics[i].slices == 0 {
			t.Fatalf("trace: picture %d has no independent slice segment", i)
		}
		pics[i].qp = roundDiv(sum, pics[i].slices)
	}
	if len(pics) == 0 {
		t.Fatalf("trace shows no picture:\n%s", tail(out))
	}
	return pics, seen
}

// nonzero reports whether seen holds name=v for some v other than 0.
func nonzero(seen map[string]bool, name string) bool {
	for k := range seen {
		if v, ok := strings.CutPrefix(k, name+"="); ok && v != "0" {
			return true
		}
	}
	return false
}

func tail(b []byte) []byte {
	if len(b) > 3000 {
		return b[len(b)-3000:]
	}
	return b
}

// splitAccessUnits splits an Annex B stream into access units (7.4.2.4.4):
// one begins at an AUD, a VPS, SPS or PPS, a prefix SEI, or a NAL unit of
// types 41..44 or 48..55 that follows the first VCL NAL unit of the
// current one, and at a VCL NAL unit with first_slice_segment_in_pic_flag.
// Each is returned as its NAL units.
func splitAccessUnits(stream []byte) [][][]byte {
	var (
		aus    [][][]byte
		cur    [][]byte
		hasVCL bool
	)
	it := nalIter{b: stream}
	for nal, ok := it.next(); ok; nal, ok = it.next() {
		if len(nal) < 3 {
			continue
		}
		typ := nalType(nal)
		vcl := typ < 32
		start := false
		switch {
		case vcl:
			start = hasVCL && nal[2]&0x80 != 0
		case typ >= 32 && typ <= 35, typ == 39, typ >= 41 && typ <= 44, typ >= 48 && typ <= 55:
			start = hasVCL
		}
		if start {
			aus = append(aus, cur)
			cur, hasVCL = nil, false
		}
		cur = append(cur, nal)
		hasVCL = hasVCL || vcl
	}
	if len(cur) > 0 {
		aus = append(aus, cur)
	}
	return aus
}

// mp4HvcC remuxes the clip to MP4 with FFmpeg and returns its hvcC record.
func mp4HvcC(t *testing.T, path string) []byte {
	t.Helper()
	mp4 := strings.TrimSuffix(path, ".hevc") + ".mp4"
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y", "-i", path, "-c", "copy", "-f", "mp4", mp4)
	if msg, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, msg)
	}
	b, err := os.ReadFile(mp4)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("hvcC"))
	if i < 4 {
		t.Fatalf("%s: no hvcC box", mp4)
	}
	size := int(binary.BigEndian.Uint32(b[i-4:]))
	if size < 8 || i-4+size > len(b) {
		t.Fatalf("%s: hvcC box of %d bytes", mp4, size)
	}
	return b[i+4 : i-4+size]
}

// hvcCNALs returns the NAL units of an hvcC record.
func hvcCNALs(t *testing.T, rec []byte) [][]byte {
	t.Helper()
	var nals [][]byte
	b := rec[23:]
	for a := 0; a < int(rec[22]); a++ {
		n := int(binary.BigEndian.Uint16(b[1:]))
		b = b[3:]
		for i := 0; i < n; i++ {
			l := int(binary.BigEndian.Uint16(b))
			nals = append(nals, b[2:2+l])
			b = b[2+l:]
		}
	}
	return nals
}

// result is what Packet gave for one access unit.
type result struct {
	qp  int
	ok  bool
	pic Picture
}

func (r result) String() string {
	if !r.ok {
		return fmt.Sprintf("not ok (%v)", r.pic.Err)
	}
	return fmt.Sprintf("%d (%s, %d slices)", r.qp, r.pic.Type, r.pic.Slices)
}

// readAll reads access units through p, each converted to the length size
// (0: Annex B), leaving out the NAL units in skip (those of the
// extradata).
func readAll(p *Parser, aus [][][]byte, lengthSize int, skip [][]byte) []result {
	var res []result
	for _, au := range aus {
		var nals [][]byte
	nal:
		for _, n := range au {
			for _, s := range skip {
				if bytes.Equal(n, s) {
					continue nal
				}
			}
			nals = append(nals, n)
		}
		var b []byte
		if lengthSize == 0 {
			b = annexB(nals...)
		} else {
			b = lengthPrefixed(lengthSize, nals...)
		}
		qp, ok := p.Packet(b, lengthSize)
		res = append(res, result{qp, ok, p.Last()})
	}
	return res
}

// compare checks what Packet gave against the oracle, picture by picture.
func compare(t *testing.T, how string, got []result, want []oraclePic, depth int) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %d access units, the oracle shows %d pictures", how, len(got), len(want))
	}
	bad := 0
	for i := 0; i < min(len(got), len(want)); i++ {
		g, w := got[i], want[i]
		if !g.ok || g.qp != w.qp || g.pic.Type != w.typ || g.pic.Slices != w.slices || g.pic.BitDepth != depth {
			if bad++; bad <= 5 {
				t.Errorf("%s: picture %d: got %s, depth %d; oracle %d (%s, %d slices: %v), depth %d", how, i, g, g.pic.BitDepth, w.qp, w.typ, w.slices, w.qps, depth)
			}
		}
	}
	if bad > 5 {
		t.Errorf("%s: %d pictures differ in all", how, bad)
	}
}

// x265 3.5 as FFmpeg 5.1 drives it; syntax paths of the parser that no case
// here reaches (the hand-built tests in hand_test.go cover them):
//   - inter_ref_pic_set_prediction_flag = 1 (x265 writes each RPS in full),
//     in the SPS and in a slice header (delta_idx_minus1);
//   - long-term pictures (long_term_ref_pics_present_flag is always 0);
//   - ref_pic_lists_modification (lists_modification_present_flag 0);
//   - num_extra_slice_header_bits, output_flag_present_flag,
//     separate_colour_plane_flag (colour_plane_id);
//   - tiles (x265 has none), dependent slice segments;
//   - pcm_enabled_flag (no PCM in x265);
//   - sub-layer profiles and levels (x265 writes sub_layer_*_present_flag 0),
//     HRD sub-picture parameters;
//   - SPS range extension (high_precision_offsets_enabled_flag), SCC and 3D
//     extensions (rejected);
//   - SliceQpY below 0 at high bit depth (x265 clamps its QP to 0..51).
func encCases() []encCase {
	all := func(typ SliceType, want func(qp int) bool) func(t *testing.T, pics []oraclePic) {
		return func(t *testing.T, pics []oraclePic) {
			n := 0
			for i, p := range pics {
				if p.typ == typ {
					n++
					if !want(p.qp) {
						t.Errorf("picture %d (%s): QP %d", i, p.typ, p.qp)
					}
				}
			}
			if n == 0 {
				t.Errorf("no %s picture", typ)
			}
		}
	}
	distinct := func(n int) func(t *testing.T, pics []oraclePic) {
		return func(t *testing.T, pics []oraclePic) {
			qps := map[int]bool{}
			for _, p := range pics {
				qps[p.qp] = true
			}
			if len(qps) < n {
				t.Errorf("%d distinct QPs, want %d or more: the case does not vary slice_qp_delta", len(qps), n)
			}
		}
	}
	fade := "fade=in:0:25,noise=alls=8:allf=t"
	return []encCase{
		{name: "cqp30 P", params: "qp=30:bframes=0",
			paths: []string{"slice_type=1", "slice_qp_delta"},
			check: all(SliceP, func(qp int) bool { return qp == 30 })},
		{name: "cqp30 B pyramid", params: "qp=30:bframes=4:b-pyramid=1:b-adapt=0",
			paths: []string{"slice_type=0", "mvd_l1_zero_flag", "collocated_from_l0_flag"},
			check: all(SliceB, func(qp int) bool { return qp >= 30 && qp <= 34 })},
		{name: "cqp51 P", params: "qp=51:bframes=0",
			check: all(SliceP, func(qp int) bool { return qp == 51 })},
		{name: "cqp51 B", params: "qp=51:bframes=3:b-adapt=0",
			check: func(t *testing.T, pics []oraclePic) {
				all(SliceP, func(qp int) bool { return qp == 51 })(t, pics)
				all(SliceB, func(qp int) bool { return qp == 51 })(t, pics)
				all(SliceI, func(qp int) bool { return qp >= 47 && qp <= 51 })(t, pics)
			}},
		{name: "starved VBV, aq-mode 2", params: "bitrate=60:vbv-maxrate=60:vbv-bufsize=120:aq-mode=2:bframes=3",
			check: func(t *testing.T, pics []oraclePic) {
				distinct(5)(t, pics) // x265 3.5: 39 to 45
				top := 0
				for _, p := range pics {
					top = max(top, p.qp)
				}
				if top < 42 {
					t.Errorf("highest QP %d: the encode is not starved", top)
				}
			}},
		{name: "crf with VBV, aq-mode 3, mandelbrot", src: "mandelbrot=size=320x180:rate=25", vf: "trim=duration=2,noise=alls=6:allf=t",
			params: "crf=24:vbv-maxrate=250:vbv-bufsize=250:aq-mode=3", check: distinct(5)},
		{name: "weighted P and B, fade", vf: fade, params: "crf=26:weightp=1:weightb=1:bframes=3:b-adapt=0",
			paths: []string{"luma_weight_l0_flag[0]=1", "delta_luma_weight_l0[0]", "luma_offset_l0[0]", "luma_weight_l1_flag[0]", "delta_chroma_log2_weight_denom"}},
		{name: "4 slices, CTU 16", params: "crf=28:slices=4:ctu=16:min-cu-size=8",
			paths: []string{"slice_segment_address", "log2_diff_max_min_luma_coding_block_size=1"},
			check: func(t *testing.T, pics []oraclePic) {
				for i, p := range pics {
					if p.slices != 4 {
						t.Errorf("picture %d: %d slices, want 4", i, p.slices)
					}
				}
			}},
		{name: "4 slices 640x360, weighted", src: "testsrc2=size=640x360:rate=25:duration=1", vf: fade,
			params: "crf=30:slices=4:weightp=1:bframes=2", paths: []string{"slice_segment_address", "luma_weight_l0_flag[0]=1"}},
		{name: "main10", pixFmt: "yuv420p10le", params: "crf=20:bframes=3", paths: []string{"bit_depth_luma_minus8=2"}},
		{name: "main12 low QP", pixFmt: "yuv420p12le", params: "qp=1:bframes=2", paths: []string{"bit_depth_luma_minus8=4"}},
		{name: "4:2:2 10-bit", pixFmt: "yuv422p10le", vf: fade, params: "crf=28:weightp=1", paths: []string{"chroma_format_idc=2"}},
		{name: "4:4:4", pixFmt: "yuv444p", params: "crf=28", paths: []string{"chroma_format_idc=3", "separate_colour_plane_flag=0"}},
		{name: "monochrome, weighted", pixFmt: "gray", vf: fade, params: "crf=28:weightp=1:bframes=0",
			paths: []string{"chroma_format_idc=0", "luma_weight_l0_flag[0]=1", "slice_sao_luma_flag"}},
		{name: "open GOP, CRA and RASL", params: "crf=28:keyint=12:min-keyint=12:scenecut=0:open-gop=1:bframes=3:b-adapt=0",
			paths: []string{"nal_unit_type=21", "nal_unit_type=8", "no_output_of_prior_pics_flag"}},
		{name: "closed GOP, IDR with RADL", params: "crf=28:keyint=12:min-keyint=12:scenecut=0:open-gop=0:radl=2:bframes=3:b-adapt=0",
			paths: []string{"nal_unit_type=19", "nal_unit_type=7"}},
		{name: "IDR_N_LP, no B", params: "crf=28:keyint=10:min-keyint=10:open-gop=0:bframes=0",
			paths: []string{"nal_unit_type=20"}},
		{name: "default scaling lists, no TMVP, 16-bit POC LSB", params: "crf=28:scaling-list=default:temporal-mvp=0:log2-max-poc-lsb=16",
			paths: []string{"scaling_list_enabled_flag=1", "sps_temporal_mvp_enabled_flag=0", "log2_max_pic_order_cnt_lsb_minus4=12"}},
		{name: "explicit scaling lists", params: "crf=28", setup: scalingListFile,
			paths: []string{"sps_scaling_list_data_present_flag=1", "scaling_list_pred_mode_flag[0][0]=1", "scaling_list_dc_coef_minus8[1][3]",
				"scaling_list_pred_matrix_id_delta[1][2]=1", "scaling_list_delta_coeff[3][3][63]"}},
		{name: "no SAO", params: "crf=28:sao=0", paths: []string{"sample_adaptive_offset_enabled_flag=0"}},
		{name: "rect, amp, 5 merge candidates", params: "crf=28:rect=1:amp=1:max-merge=5", paths: []string{"amp_enabled_flag=1", "five_minus_max_num_merge_cand=0"}},
		{name: "1 merge candidate, 4 references", params: "crf=28:max-merge=1:ref=4:bframes=3:limit-refs=0",
			paths: []string{"five_minus_max_num_merge_cand=4", "collocated_ref_idx"}},
		{name: "PPS tools: constrained intra, transform skip, lossless CUs, chroma offsets, deblocking offsets",
			params: "crf=28:rd=3:constrained-intra=1:tskip=1:cu-lossless=1:signhide=0:cbqpoffs=3:crqpoffs=-2:deblock=-2,1:qg-size=16",
			paths:  []string{"constrained_intra_pred_flag=1", "transform_skip_enabled_flag=1", "transquant_bypass_enabled_flag=1", "pps_cb_qp_offset=3", "pps_beta_offset_div2", "diff_cu_qp_delta_depth"}},
		{name: "deblocking off, no WPP", params: "crf=28:no-deblock=1:wpp=0", paths: []string{"pps_deblocking_filter_disabled_flag=1", "entropy_coding_sync_enabled_flag=0"}},
		{name: "temporal sub-layers", params: "crf=28:temporal-layers=1:bframes=3:b-adapt=0", paths: []string{"sps_max_sub_layers_minus1=1", "sub_layer_level_present_flag[0]"}},
		{name: "HRD in the VUI", params: "crf=28:hrd=1:vbv-maxrate=400:vbv-bufsize=800", paths: []string{"vui_hrd_parameters_present_flag=1", "cpb_cnt_minus1[0]"}},
		{name: "VUI: colour, SAR, chroma location, display window, overscan", params: "crf=28:colorprim=bt709:transfer=bt709:colormatrix=bt709:range=full:sar=2:chromaloc=2:overscan=show:videoformat=pal:display-window=8,8,0,0",
			paths: []string{"colour_primaries=1", "aspect_ratio_idc=2", "chroma_sample_loc_type_top_field=2", "default_display_window_flag=1", "overscan_info_present_flag=1"}},
		{name: "interlaced fields", params: "crf=28:interlace=tff", paths: []string{"field_seq_flag=1"}},
		{name: "parameter sets repeated, AUD", params: "crf=28:keyint=10:min-keyint=10:repeat-headers=1:aud=1",
			paths: []string{"pic_type"}},
		{name: "QP and references optimised in the PPS", params: "crf=26:opt-qp-pps=1:opt-ref-list-length-pps=1:repeat-headers=1:keyint=10:min-keyint=10:bframes=3",
			nonzero: []string{"init_qp_minus26", "num_ref_idx_l0_default_active_minus1"}},
		// x265 3.5 writes delta_poc_s0_minus1 of 33 bits and more in the
		// RPS sets it stores in the SPS ("Invalid value of delta_poc: 0"
		// from FFmpeg's decoder, which drops every picture).
		{name: "RPS sets in the SPS, two passes (broken SPS)", passes: 2, params: "bitrate=300:multi-pass-opt-rps=1:bframes=3:b-adapt=0",
			broken: ErrInvalid},
		{name: "lossless", params: "lossless=1:bframes=0", paths: []string{"transquant_bypass_enabled_flag=1"}},
		{name: "CTU 32, min CU 16, deep TUs", params: "crf=28:ctu=32:min-cu-size=16:tu-intra-depth=3:tu-inter-depth=3:max-tu-size=16",
			paths: []string{"log2_min_luma_coding_block_size_minus3=1"}},
	}
}

// scalingListFile writes a scaling list file for x265 (the HM format it
// reads: each matrix's name, its coefficients, and the DC of the 16x16 and
// 32x32 ones) and returns the parameter that reads it. The chroma V lists of
// 4x4 to 16x16 repeat the U ones (x265 codes them as predicted from them:
// scaling_list_pred_matrix_id_delta 1), the 8x8 intra luma list is the
// default one (delta 0), the others explicit.
func scalingListFile(t *testing.T, dir string) string {
	names := [4][]string{
		{"INTRA4X4_LUMA", "INTRA4X4_CHROMAU", "INTRA4X4_CHROMAV", "INTER4X4_LUMA", "INTER4X4_CHROMAU", "INTER4X4_CHROMAV"},
		{"INTRA8X8_LUMA", "INTRA8X8_CHROMAU", "INTRA8X8_CHROMAV", "INTER8X8_LUMA", "INTER8X8_CHROMAU", "INTER8X8_CHROMAV"},
		{"INTRA16X16_LUMA", "INTRA16X16_CHROMAU", "INTRA16X16_CHROMAV", "INTER16X16_LUMA", "INTER16X16_CHROMAU", "INTER16X16_CHROMAV"},
		{"INTRA32X32_LUMA", "", "", "INTER32X32_LUMA"},
	}
	intra8x8 := []int{ // Table 7-6, the default 8x8 intra list, in raster order
		16, 16, 16, 16, 17, 18, 21, 24, 16, 16, 16, 16, 17, 19, 22, 25, 16, 16, 17, 18, 20, 22, 25, 29, 16, 16, 18, 21, 24, 27, 31, 36,
		17, 17, 20, 24, 30, 35, 41, 47, 18, 19, 22, 27, 35, 44, 54, 65, 21, 22, 25, 31, 41, 54, 70, 88, 24, 25, 29, 36, 47, 65, 88, 115,
	}
	var b strings.Builder
	for size, list := range names {
		n := min(64, 16<<(2*size))
		for id, name := range list {
			if name == "" {
				continue
			}
			fmt.Fprintf(&b, "%s =\n", name)
			src := id
			if id == 2 || id == 5 {
				src = id - 1 // V as U
			}
			for i := 0; i < n; i++ {
				v := 16 + (i*(3+size)+src*7)%40
				if size == 1 && id == 0 {
					v = intra8x8[i]
				}
				fmt.Fprintf(&b, "%d,", v)
				if i%8 == 7 {
					b.WriteString("\n")
				}
			}
			if size >= 2 {
				fmt.Fprintf(&b, "%s_DC =\n%d\n", name, 12+src+size)
			}
		}
	}
	path := filepath.Join(dir, "scaling.txt")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return "scaling-list=" + path
}

func TestEncodedClips(t *testing.T) {
	needFFmpeg(t)
	for _, c := range encCases() {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			dir := t.TempDir()
			path := encode(t, dir, c)
			if c.broken != nil {
				stream, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				var p Parser
				res := readAll(&p, splitAccessUnits(stream), 0, nil)
				for i, r := range res {
					if r.ok || !errors.Is(r.pic.Err, c.broken) {
						t.Errorf("picture %d: %s, want ok=false with %v", i, r, c.broken)
					}
				}
				if len(res) < 10 {
					t.Errorf("%d access units", len(res))
				}
				return
			}
			want, seen := oracle(t, path)
			for _, p := range c.paths {
				if !seen[p] {
					t.Errorf("the trace shows no %s: the case does not cover its path", p)
				}
			}
			for _, name := range c.nonzero {
				if !nonzero(seen, name) {
					t.Errorf("the trace shows no %s other than 0: the case does not cover its path", name)
				}
			}
			if c.check != nil {
				c.check(t, want)
			}
			depth := 8 + 2*strings.Count(c.pixFmt, "10") + 4*strings.Count(c.pixFmt, "12")
			stream, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			aus := splitAccessUnits(stream)

			// Annex B: parameter sets in the packets only.
			var p Parser
			compare(t, "Annex B", readAll(&p, aus, 0, nil), want, depth)

			// The hvcC FFmpeg's MP4 muxer writes, and packets with 4-byte
			// lengths without the NAL units the record holds.
			rec := mp4HvcC(t, path)
			p = Parser{}
			ls, err := p.Extradata(rec)
			if err != nil || ls != 4 {
				t.Fatalf("Extradata(MP4 hvcC): %d, %v", ls, err)
			}
			compare(t, "hvcC from MP4", readAll(&p, aus, 4, hvcCNALs(t, rec)), want, depth)

			// An hvcC of our own with 2-byte lengths (4 if a NAL unit
			// needs them), and Annex B extradata, from the first access
			// unit's parameter sets.
			var ps [][]byte
			for _, n := range aus[0] {
				if t := nalType(n); t >= nalVPS && t <= nalPPS {
					ps = append(ps, n)
				}
			}
			ls = 2
			for _, au := range aus {
				for _, n := range au {
					if len(n) > 0xffff {
						ls = 4
					}
				}
			}
			p = Parser{}
			if got, err := p.Extradata(hvcC(ls, ps...)); err != nil || got != ls {
				t.Fatalf("Extradata(hvcC): %d, %v", got, err)
			}
			compare(t, fmt.Sprintf("hvcC, %d-byte lengths", ls), readAll(&p, aus, ls, ps), want, depth)
			p = Parser{}
			if ls, err := p.Extradata(annexB(ps...)); err != nil || ls != 0 {
				t.Fatalf("Extradata(Annex B): %d, %v", ls, err)
			}
			compare(t, "Annex B extradata", readAll(&p, aus, 0, ps), want, depth)
		})
	}
}
