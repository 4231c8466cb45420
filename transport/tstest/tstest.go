// Package tstest builds synthetic MPEG transport streams for tests: constant
// rate, one packet per millisecond, every table and timestamp where the test
// can compute it, so that an error injected into them has an exact count.
package tstest

import "github.com/streamqc/streamqc/transport"

// PIDs of the generated program.
const (
	PMTPID   = 0x100
	VideoPID = 0x101 // carries the PCR
	AudioPID = 0x102
	NullPID  = 0x1FFF
)

// Kind says what a generated packet carries.
type Kind uint8

const (
	PAT Kind = iota
	PMT
	CAT
	Video
	Audio
	Null
)

// Packet is one generated packet; its nominal time is Index milliseconds.
type Packet struct {
	B     [transport.PacketSize]byte
	Kind  Kind
	Index int
	PCR   bool // carries a PCR
	PTS   bool // starts a PES packet with a PTS
}

// T is the packet's nominal time in seconds.
func (p *Packet) T() float64 { return float64(p.Index) / 1000 }

// Schedule, for packet i (time i ms): a PAT every 100 ms (i%100 == 0), the PMT
// right after, the CAT (or a null packet) after that, two null packets at
// i%100 == 50 and 51, audio every 10 ms (a PES with a PTS every 20 ms), video
// in every other slot, with a PCR every 20 ms (i%20 == 5) and a PES with a
// PTS every 40 ms (i%40 == 5).
const (
	PCRPeriodMs      = 20
	AudioPTSPeriodMs = 20
	VideoPTSPeriodMs = 40
)

// Options of a generated stream.
type Options struct {
	Packets int  // one per millisecond
	CAT     bool // send a CAT every 100 ms
}

// PCRAt is the PCR (27 MHz) of packet i: 1 s plus i ms.
func PCRAt(i int) uint64 { return 27_000_000 + uint64(i)*27_000 }

// Generate returns the packets of a clean stream.
func Generate(o Options) []Packet {
	ps := make([]Packet, o.Packets)
	var cc [0x2000]uint8
	for i := range ps {
		p := &ps[i]
		p.Index = i
		switch {
		case i%100 == 0:
			p.Kind = PAT
			section(&p.B, 0, cc[0], PATSection())
			cc[0]++
		case i%100 == 1:
			p.Kind = PMT
			section(&p.B, PMTPID, cc[PMTPID], PMTSection())
			cc[PMTPID]++
		case i%100 == 2 && o.CAT:
			p.Kind = CAT
			section(&p.B, 1, cc[1], CATSection())
			cc[1]++
		case i%100 == 2 || i%100 == 50 || i%100 == 51:
			p.Kind = Null
			header(&p.B, NullPID, false, 1, 0)
			fill(p.B[4:], 0xFF)
		case i%10 == 7:
			p.Kind = Audio
			p.PTS = i%AudioPTSPeriodMs == 7
			es(&p.B, AudioPID, cc[AudioPID], 0xC0, p.PTS, false, i)
			cc[AudioPID]++
		default:
			p.Kind = Video
			p.PCR = i%PCRPeriodMs == 5
			p.PTS = i%VideoPTSPeriodMs == 5
			es(&p.B, VideoPID, cc[VideoPID], 0xE0, p.PTS, p.PCR, i)
			cc[VideoPID]++
		}
	}
	return ps
}

// Bytes concatenates packets.
func Bytes(ps []Packet) []byte {
	b := make([]byte, 0, len(ps)*transport.PacketSize)
	for i := range ps {
		b = append(b, ps[i].B[:]...)
	}
	return b
}

func fill(b []byte, v byte) {
	for i := range b {
		b[i] = v
	}
}

func header(b *[transport.PacketSize]byte, pid uint16, pusi bool, afc, cc uint8) {
	b[0] = 0x47
	b[1] = byte(pid>>8) & 0x1F
	if pusi {
		b[1] |= 0x40
	}
	b[2] = byte(pid)
	b[3] = afc<<4 | cc&0x0F
}

// section writes a packet carrying one whole section.
func section(b *[transport.PacketSize]byte, pid uint16, cc uint8, s []byte) {
	header(b, pid, true, 1, cc)
	b[4] = 0 // pointer_field
	n := copy(b[5:], s)
	fill(b[5+n:], 0xFF)
}

// WithCRC appends the CRC_32 of a section.
func WithCRC(s []byte) []byte {
	c := uint32(0xFFFFFFFF)
	for _, x := range s {
		c ^= uint32(x) << 24
		for range 8 {
			if c&0x80000000 != 0 {
				c = c<<1 ^ 0x04C11DB7
			} else {
				c <<= 1
			}
		}
	}
	return append(s, byte(c>>24), byte(c>>16), byte(c>>8), byte(c))
}

// PATSection returns a PAT listing program 1 at PMTPID.
func PATSection() []byte {
	return WithCRC([]byte{0x00, 0xB0, 13, 0x00, 0x01, 0xC1, 0, 0, 0x00, 0x01, 0xE0 | PMTPID>>8, PMTPID & 0xFF})
}

// PATPart returns section number of a PAT in last+1 sections, listing one
// program on pmtPID.
func PATPart(number, last byte, program, pmtPID uint16) []byte {
	return WithCRC([]byte{0x00, 0xB0, 13, 0x00, 0x01, 0xC1, number, last,
		byte(program >> 8), byte(program), 0xE0 | byte(pmtPID>>8), byte(pmtPID)})
}

// NotPATSection returns a valid section with table id 0x02 for PID 0.
func NotPATSection() []byte {
	return WithCRC([]byte{0x02, 0xB0, 13, 0x00, 0x01, 0xC1, 0, 0, 0xE0, 0x00, 0xF0, 0x00})
}

// PMTSection returns program 1's PMT: MPEG-2 video on VideoPID (the PCR PID)
// and MPEG-1 audio on AudioPID.
func PMTSection() []byte {
	return WithCRC([]byte{0x02, 0xB0, 23, 0x00, 0x01, 0xC1, 0, 0,
		0xE0 | VideoPID>>8, VideoPID & 0xFF, 0xF0, 0x00,
		0x02, 0xE0 | VideoPID>>8, VideoPID & 0xFF, 0xF0, 0x00,
		0x03, 0xE0 | AudioPID>>8, AudioPID & 0xFF, 0xF0, 0x00})
}

// CATSection returns an empty CAT; with tableID other than 0x01, a section
// that is not one.
func CATSection() []byte { return CATSectionID(0x01) }

// CATSectionID returns a CAT-shaped section with the given table id.
func CATSectionID(tableID byte) []byte {
	return WithCRC([]byte{tableID, 0xB0, 9, 0xFF, 0xFF, 0xC1, 0, 0})
}

// SetSection replaces a section packet's content.
func SetSection(p *Packet, s []byte) {
	pid := uint16(p.B[1]&0x1F)<<8 | uint16(p.B[2])
	section(&p.B, pid, p.B[3]&0x0F, s)
}

// es writes an elementary stream packet: an adaptation field with the PCR
// when pcr, a PES header with the PTS when pts, filler otherwise.
func es(b *[transport.PacketSize]byte, pid uint16, cc uint8, streamID byte, pts, pcr bool, i int) {
	afc := uint8(1)
	if pcr {
		afc = 3
	}
	header(b, pid, pts, afc, cc)
	off := 4
	if pcr {
		b[4] = 7
		b[5] = 0x10
		SetPCR(b, PCRAt(i))
		off = 12
	}
	fill(b[off:], 0xAA)
	if pts {
		v := PCRAt(i)/300 + 45_000 // 0.5 s after the PCR
		h := b[off:]
		h[0], h[1], h[2], h[3] = 0, 0, 1, streamID
		h[4], h[5] = 0, 0
		h[6], h[7], h[8] = 0x80, 0x80, 5
		h[9] = 0x21 | byte(v>>29)&0x0E
		h[10] = byte(v >> 22)
		h[11] = byte(v>>14) | 1
		h[12] = byte(v >> 7)
		h[13] = byte(v<<1) | 1
	}
}

// SetPCR writes a PCR into a packet that has a PCR adaptation field.
func SetPCR(b *[transport.PacketSize]byte, pcr uint64) {
	base, ext := pcr/300, pcr%300
	b[6] = byte(base >> 25)
	b[7] = byte(base >> 17)
	b[8] = byte(base >> 9)
	b[9] = byte(base >> 1)
	b[10] = byte(base<<7) | 0x7E | byte(ext>>8)
	b[11] = byte(ext)
}

// PCROf reads the PCR a packet carries.
func PCROf(b *[transport.PacketSize]byte) uint64 {
	base := uint64(b[6])<<25 | uint64(b[7])<<17 | uint64(b[8])<<9 | uint64(b[9])<<1 | uint64(b[10])>>7
	return base*300 + (uint64(b[10]&1)<<8 | uint64(b[11]))
}

// DropPCR removes the PCR from a packet (its adaptation field stays, stuffed).
func DropPCR(p *Packet) {
	p.B[5] &^= 0x10
	fill(p.B[6:12], 0xFF)
	p.PCR = false
}

// SetDiscontinuity sets the discontinuity_indicator of a packet with an adaptation field.
func SetDiscontinuity(p *Packet) { p.B[5] |= 0x80 }

// DropPTS makes a PES header carry no PTS (the header keeps its length, stuffed).
func DropPTS(p *Packet) {
	off := 4
	if p.PCR {
		off = 12
	}
	p.B[off+7] = 0x00
	fill(p.B[off+9:off+14], 0xFF)
	p.PTS = false
}

// Scramble sets transport_scrambling_control to 10 (even key).
func Scramble(p *Packet) { p.B[3] = p.B[3]&0x3F | 0x80 }

// SetTEI sets the transport_error_indicator.
func SetTEI(p *Packet) { p.B[1] |= 0x80 }

// MakeNull turns a packet into a null packet (same position, same rate).
func MakeNull(p *Packet) {
	header(&p.B, NullPID, false, 1, 0)
	fill(p.B[4:], 0xFF)
	p.Kind, p.PCR, p.PTS = Null, false, false
}

// Renumber rewrites the continuity counters as a multiplexer that never sent
// the missing packets would have: removing packets then breaks no CC chain.
func Renumber(ps []Packet) {
	var cc [0x2000]uint8
	for i := range ps {
		b := &ps[i].B
		pid := uint16(b[1]&0x1F)<<8 | uint16(b[2])
		if pid == NullPID || b[3]&0x10 == 0 {
			continue
		}
		b[3] = b[3]&0xF0 | cc[pid]&0x0F
		cc[pid]++
	}
}
