package hevc

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// fuzzClip is a tiny real encode for the seed corpora: 6 pictures of 64x64
// with B-frames, weighted prediction and 2 slices, as access units in Annex
// B, and its hvcC record; nil without ffmpeg.
var fuzzClip = sync.OnceValues(func() ([][]byte, []byte) {
	if ffmpegCheck() != "" {
		return nil, nil
	}
	dir, err := os.MkdirTemp("", "hevc-fuzz-seed")
	if err != nil {
		return nil, nil
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "seed.hevc")
	cmd := exec.Command("ffmpeg", "-hide_banner", "-nostdin", "-loglevel", "error", "-y",
		"-f", "lavfi", "-i", "testsrc2=size=64x64:rate=25:duration=0.24", "-vf", "fade=in:0:6",
		"-c:v", "libx265", "-preset", "fast",
		"-x265-params", "crf=30:bframes=2:weightp=1:weightb=1:slices=2:ctu=16:keyint=4:pools=1:frame-threads=1:log-level=error",
		"-f", "hevc", path)
	if cmd.Run() != nil {
		return nil, nil
	}
	stream, err := os.ReadFile(path)
	if err != nil {
		return nil, nil
	}
	var aus [][]byte
	var ps [][]byte
	for _, au := range splitAccessUnits(stream) {
		aus = append(aus, annexB(au...))
		for _, n := range au {
			if t := nalType(n); t >= nalVPS && t <= nalPPS && len(ps) < 3 {
				ps = append(ps, n)
			}
		}
	}
	return aus, hvcC(4, ps...)
})

// FuzzPacket: no extradata and packet make Packet panic, allocate without
// bound or return a QP out of range; a packet read again, once the
// parameter sets it carries are stored, gives the same result.
func FuzzPacket(f *testing.F) {
	aus, rec := fuzzClip()
	for i, au := range aus {
		f.Add(rec, au, uint8(0))
		if i > 0 {
			f.Add([]byte(nil), append(append([]byte(nil), aus[0]...), au...), uint8(0))
		}
	}
	if len(aus) > 1 {
		var nals [][]byte
		it := nalIter{b: aus[1]}
		for n, ok := it.next(); ok; n, ok = it.next() {
			nals = append(nals, n)
		}
		f.Add(rec, lengthPrefixed(4, nals...), uint8(4))
	}
	ps := annexB(handParamSets...)
	for _, c := range handCases() {
		f.Add(ps, annexB(c.pkt...), uint8(0))
		f.Add(hvcC(2, handParamSets...), lengthPrefixed(2, c.pkt...), uint8(2))
	}
	f.Fuzz(func(t *testing.T, ext, pkt []byte, ls uint8) {
		var p Parser
		p.Extradata(ext)
		lengthSize := int(ls % 5)
		qp, ok := p.Packet(pkt, lengthSize)
		pic := p.Last()
		if ok {
			if pic.Err != nil || pic.QP != qp || pic.Slices < 1 || pic.BitDepth < 8 || pic.BitDepth > 16 ||
				qp > 51 || qp < -6*(pic.BitDepth-8) || pic.Type > SliceI {
				t.Fatalf("ok with %d, %+v", qp, pic)
			}
		} else if qp != 0 || pic.Err == nil {
			t.Fatalf("not ok with %d, %+v", qp, pic)
		}
		// The first read may store parameter sets that come after the
		// slices that use them; from then on the packet reads the same.
		qp2, ok2 := p.Packet(pkt, lengthSize)
		if qp3, ok3 := p.Packet(pkt, lengthSize); qp3 != qp2 || ok3 != ok2 {
			t.Fatalf("read a third time: %d, %v; the second %d, %v", qp3, ok3, qp2, ok2)
		}
	})
}

// FuzzExtradata: no extradata makes Extradata panic or return a length
// size other than 0, 1, 2 or 4.
func FuzzExtradata(f *testing.F) {
	_, rec := fuzzClip()
	if rec != nil {
		f.Add(rec)
	}
	f.Add(hvcC(4, handParamSets...))
	f.Add(annexB(handParamSets...))
	f.Add(annexB(handSPS6, handPPS6))
	f.Add([]byte{1})
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Parser
		ls, err := p.Extradata(b)
		switch ls {
		case 0, 1, 2, 4:
		default:
			t.Fatalf("length size %d (%v)", ls, err)
		}
	})
}
