package media

/*
#cgo pkg-config: libavcodec libavformat libavutil
#include <libavformat/avformat.h>
#include <libavutil/avutil.h>

static const char *sq_next_input_protocol(void **opaque) { return avio_enum_protocols(opaque, 0); }
*/
import "C"

import (
	"slices"
	"strings"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// FileFormats are the demuxers a file input may use: media containers, not
// playlists or lists (hls, dash, concat) that would open further files.
const FileFormats = "mpegts,mpegtsraw,mov,mp4,m4a,3gp,3g2,mj2,matroska,webm,flv,avi,wav,w64,mp3,aac,ac3,eac3,h264,hevc,mpegvideo,mpeg,mxf,gxf,lxf,dv,ogg,flac,aiff,asf,yuv4mpegpipe,ivf,nut"

// Component is one part of FFmpeg that streamqc's inputs need.
type Component struct {
	Kind string // decoder, demuxer, protocol or hwdevice
	Name string
}

func (c Component) String() string { return c.Kind + " " + c.Name }

// Required lists what every build of streamqc must carry for the inputs the
// README promises: the decoders of broadcast and contribution chains, the
// demuxers of the file whitelist and of the live inputs (HLS, RTSP, RTP/SDP,
// RTMP's flv, MPEG-TS), the protocols of every scheme the agent accepts, and
// the CUDA device of NVDEC.
func Required() []Component {
	var cs []Component
	add := func(kind string, names ...string) {
		for _, n := range names {
			cs = append(cs, Component{kind, n})
		}
	}
	add("decoder", "h264", "hevc", "mpeg1video", "mpeg2video", "mpeg4", "vp8", "vp9",
		"aac", "aac_latm", "ac3", "eac3", "mp2", "mp3", "opus", "vorbis", "flac", "s302m",
		"pcm_s16le", "pcm_s16be", "pcm_s24le", "pcm_s24be", "pcm_s32le", "pcm_f32le", "pcm_bluray", "pcm_dvd")
	add("demuxer", strings.Split(FileFormats, ",")...)
	add("demuxer", "hls", "rtsp", "rtp", "sdp", "live_flv")
	add("protocol", "file", "udp", "rtp", "tcp", "tls", "http", "https", "httpproxy", "crypto", "hls",
		"srt", "rtmp", "rtmps")
	add("hwdevice", "cuda")
	return cs
}

// Missing returns the required components this process's FFmpeg lacks.
func Missing() []Component {
	var protocols []string
	var opaque unsafe.Pointer
	for {
		p := C.sq_next_input_protocol(&opaque)
		if p == nil {
			break
		}
		protocols = append(protocols, C.GoString(p))
	}
	var missing []Component
	for _, c := range Required() {
		ok := false
		switch c.Kind {
		case "decoder":
			d := astiav.FindDecoderByName(c.Name)
			ok = d != nil && d.IsDecoder()
		case "demuxer":
			ok = astiav.FindInputFormat(c.Name) != nil
		case "protocol":
			ok = slices.Contains(protocols, c.Name)
		case "hwdevice":
			ok = astiav.FindHardwareDeviceTypeByName(c.Name) != astiav.HardwareDeviceTypeNone
		}
		if !ok {
			missing = append(missing, c)
		}
	}
	return missing
}

// FFmpegVersion is the version of the FFmpeg linked in and its configure line.
func FFmpegVersion() (version, configuration string) {
	return C.GoString(C.av_version_info()), C.GoString(C.avutil_configuration())
}
