package media

import (
	"encoding/binary"
	"math"
	"time"
	"unsafe"

	"github.com/asticode/go-astiav"
)

// convertAudio presents a decoded audio frame as planar float32. Planar
// float (AAC, Opus, AC-3, Vorbis...) is viewed in place; other formats are
// converted into buffers kept from frame to frame.
func (s *session) convertAudio(d *decoder, f *astiav.Frame, n, ch int) bool {
	if cap(d.planes) < ch {
		d.planes = make([][]float32, ch)
		d.bufs = make([][]float32, ch)
	}
	d.planes, d.bufs = d.planes[:ch], d.bufs[:ch]
	switch sf := f.SampleFormat(); sf {
	case astiav.SampleFormatFltp:
		for c := 0; c < ch; c++ {
			p := audioPlane(f, c, n*4)
			if p == nil {
				return false
			}
			d.planes[c] = unsafe.Slice((*float32)(unsafe.Pointer(&p[0])), n)
		}
	case astiav.SampleFormatFlt, astiav.SampleFormatS16, astiav.SampleFormatS32, astiav.SampleFormatDbl, astiav.SampleFormatU8:
		size := sampleSize(sf)
		p := audioPlane(f, 0, n*ch*size)
		if p == nil {
			return false
		}
		for c := 0; c < ch; c++ {
			b := d.buf(c, n)
			for i := range b {
				b[i] = sampleAt(sf, p, (i*ch+c)*size)
			}
			d.planes[c] = b
		}
	case astiav.SampleFormatS16P, astiav.SampleFormatS32P, astiav.SampleFormatDblp, astiav.SampleFormatU8P:
		size := sampleSize(sf)
		for c := 0; c < ch; c++ {
			p := audioPlane(f, c, n*size)
			if p == nil {
				return false
			}
			b := d.buf(c, n)
			for i := range b {
				b[i] = sampleAt(sf, p, i*size)
			}
			d.planes[c] = b
		}
	default:
		if d.output == 0 {
			s.o.Logger.Warn("sample format not supported by the audio detectors", "format", sf.String())
		}
		return false
	}
	return true
}

// buf returns channel c's conversion buffer, n samples long.
func (d *decoder) buf(c, n int) []float32 {
	if cap(d.bufs[c]) < n {
		d.bufs[c] = make([]float32, n, n*2) // grows rarely: frame sizes are near constant
	}
	d.bufs[c] = d.bufs[c][:n]
	return d.bufs[c]
}

func sampleSize(sf astiav.SampleFormat) int {
	switch sf {
	case astiav.SampleFormatU8, astiav.SampleFormatU8P:
		return 1
	case astiav.SampleFormatS16, astiav.SampleFormatS16P:
		return 2
	case astiav.SampleFormatDbl, astiav.SampleFormatDblp:
		return 8
	}
	return 4
}

// sampleAt reads one sample at byte offset i and scales it to [-1, 1].
func sampleAt(sf astiav.SampleFormat, p []byte, i int) float32 {
	switch sf {
	case astiav.SampleFormatS16, astiav.SampleFormatS16P:
		return float32(int16(binary.LittleEndian.Uint16(p[i:]))) / 32768
	case astiav.SampleFormatS32, astiav.SampleFormatS32P:
		return float32(float64(int32(binary.LittleEndian.Uint32(p[i:]))) / 2147483648)
	case astiav.SampleFormatFlt:
		return math.Float32frombits(binary.LittleEndian.Uint32(p[i:]))
	case astiav.SampleFormatDbl, astiav.SampleFormatDblp:
		return float32(math.Float64frombits(binary.LittleEndian.Uint64(p[i:])))
	case astiav.SampleFormatU8, astiav.SampleFormatU8P:
		return (float32(p[i]) - 128) / 128
	}
	return 0
}

// pace sleeps until media time t is due on the wall clock (Realtime).
func (s *session) pace(ctx interface{ Done() <-chan struct{} }, t float64) {
	now := time.Now()
	if s.paceStart.IsZero() {
		s.paceStart, s.paceT0 = now, t
		return
	}
	due := s.paceStart.Add(time.Duration((t - s.paceT0) * float64(time.Second)))
	wait := due.Sub(now)
	if wait <= time.Millisecond {
		return
	}
	if s.paceTimer == nil {
		s.paceTimer = time.NewTimer(wait)
	} else {
		s.paceTimer.Reset(wait)
	}
	select {
	case <-ctx.Done():
	case <-s.paceTimer.C:
	}
}

// close releases everything the session opened.
func (s *session) close() {
	for _, d := range []*decoder{s.video, s.audio} {
		if d != nil {
			d.free()
		}
	}
	if s.pkt != nil {
		s.pkt.Free()
	}
	if s.fc != nil {
		if s.fcOpen {
			s.fc.CloseInput()
		}
		s.fc.Free()
	}
	s.closeTap()
	if s.paceTimer != nil {
		s.paceTimer.Stop()
	}
}

func (d *decoder) free() {
	for i := range d.frames {
		if d.frames[i] != nil {
			d.frames[i].Free()
		}
		if d.sw[i] != nil {
			d.sw[i].Free()
		}
	}
	if d.cc != nil {
		d.cc.Free() // also unrefs the hardware device context
		d.cc = nil
	}
	if d.info != nil {
		freeFrameInfo(d.info)
		d.info = nil
	}
	if d.handle != 0 {
		d.handle.Delete()
		d.handle = 0
	}
}
