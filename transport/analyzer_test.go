package transport_test

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/streamqc/streamqc/transport"
	"github.com/streamqc/streamqc/transport/tstest"
)

// recorder counts what an analyzer reports.
type recorder struct {
	counts transport.Counts
	last   float64
	times  int
	back   bool // time went backwards
}

func (r *recorder) TransportError(ind transport.Indicator, pid uint16, t float64, n int64) {
	r.counts[ind] += n
	r.back = r.back || t < r.last
	r.last = t
}

func (r *recorder) TransportTime(t float64) {
	r.back = r.back || t < r.last
	r.last = t
	r.times++
}

// find returns the index of the packet of the generated stream with Index i.
func find(ps []tstest.Packet, i int) int {
	for k := range ps {
		if ps[k].Index == i {
			return k
		}
	}
	panic(fmt.Sprintf("no packet %d", i))
}

// each applies f to the packets whose index is in [from, to) and of kind k.
func each(ps []tstest.Packet, from, to int, k tstest.Kind, f func(*tstest.Packet)) {
	for i := range ps {
		if ps[i].Index >= from && ps[i].Index < to && ps[i].Kind == k {
			f(&ps[i])
		}
	}
}

type counts map[transport.Indicator]int64

// The expected counts follow from the schedule of tstest (one packet per ms;
// PAT and PMT every 100 ms, PCR every 20 ms, audio PTS every 20 ms) and the
// limits of TR 101 290; each case says how.
func TestInjected(t *testing.T) {
	tests := []struct {
		name    string
		packets int
		noCAT   bool
		inject  func([]tstest.Packet) []tstest.Packet
		want    counts
	}{
		{name: "clean", inject: nil, want: counts{}},
		{name: "clean without CAT", noCAT: true, want: counts{}},
		{
			// One lost packet: a CC gap, and the next PCR arrives one packet
			// early for its value (one PCR_accuracy_error, not one per PCR after).
			name: "drop a packet",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				k := find(ps, 1503)
				return append(ps[:k:k], ps[k+1:]...)
			},
			want: counts{transport.Continuity: 1, transport.PCRAccuracy: 1},
		},
		{
			// A packet sent twice is allowed (ISO 13818-1 2.4.3.3); the extra bytes still shift the next PCR.
			name: "duplicate a packet once",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				k := find(ps, 1503)
				return append(ps[:k+1:k+1], ps[k:]...)
			},
			want: counts{transport.PCRAccuracy: 1},
		},
		{
			name: "duplicate a packet twice",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				k := find(ps, 1503)
				out := append(ps[:k+1:k+1], ps[k], ps[k])
				return append(out, ps[k+1:]...)
			},
			want: counts{transport.Continuity: 1, transport.PCRAccuracy: 1},
		},
		{
			// c, c+2, c+1, c+3: each of the three breaks the chain.
			name: "swap two packets",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				k := find(ps, 1503)
				ps[k], ps[k+1] = ps[k+1], ps[k]
				return ps
			},
			want: counts{transport.Continuity: 3},
		},
		{
			name: "PAT CRC corrupted once",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				ps[find(ps, 1500)].B[5+15] ^= 0x01 // last byte of the CRC_32
				return ps
			},
			want: counts{transport.CRCError: 1},
		},
		{
			// PATs at 1.0 .. 1.5 s corrupt: 0.9 -> 1.6 s is 0.7 s without a PAT.
			name: "PAT CRC corrupted for 0.6 s",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 1000, 1501, tstest.PAT, func(p *tstest.Packet) { p.B[5+15] ^= 0x01 })
				return ps
			},
			want: counts{transport.CRCError: 6, transport.PATError: 1},
		},
		{
			// 1.9 -> 3.0 s: 1.1 s, two whole 0.5 s periods.
			name: "PAT removed for 1 s",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 2000, 3000, tstest.PAT, tstest.MakeNull)
				tstest.Renumber(ps)
				return ps
			},
			want: counts{transport.PATError: 2},
		},
		{
			name: "other table on PID 0",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				tstest.SetSection(&ps[find(ps, 1500)], tstest.NotPATSection())
				return ps
			},
			want: counts{transport.PATError: 1},
		},
		{
			name: "PAT scrambled",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				tstest.Scramble(&ps[find(ps, 1500)])
				return ps
			},
			want: counts{transport.PATError: 1},
		},
		{
			// 1.901 -> 4.001 s: 2.1 s, four whole 0.5 s periods.
			name: "PMT removed for 2 s",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 2000, 4000, tstest.PMT, tstest.MakeNull)
				tstest.Renumber(ps)
				return ps
			},
			want: counts{transport.PMTError: 4},
		},
		{
			name: "PMT removed from the start",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 0, 1<<30, tstest.PMT, tstest.MakeNull)
				return ps
			},
			// The PMT timer starts with the PAT at 0; the last PCR (the last
			// sweep: the end of a stream is not an absence) is at 4.98 s:
			// nine whole periods.
			want: counts{transport.PMTError: 9},
		},
		{
			// Sections 0 and 1 alternate every 100 ms: program 1 (its PMT
			// present) and program 2 on PID 0x200 (no PMT), listed from the
			// second PAT at 0.095 s to the last PCR at 4.98 s: nine periods.
			name: "PAT in two sections, a PMT missing",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				n := 0
				each(ps, 0, 1<<30, tstest.PAT, func(p *tstest.Packet) {
					if n%2 == 0 {
						tstest.SetSection(p, tstest.PATPart(0, 1, 1, tstest.PMTPID))
					} else {
						tstest.SetSection(p, tstest.PATPart(1, 1, 2, 0x200))
					}
					n++
				})
				return ps
			},
			want: counts{transport.PMTError: 9},
		},
		{
			name: "PMT scrambled",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				tstest.Scramble(&ps[find(ps, 1501)])
				return ps
			},
			want: counts{transport.PMTError: 1},
		},
		{
			// PCRs at 1.985 and 2.045 s: 60 ms apart, within 100 ms.
			name: "PCR gap 60 ms",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				tstest.DropPCR(&ps[find(ps, 2005)])
				tstest.DropPCR(&ps[find(ps, 2025)])
				return ps
			},
			want: counts{transport.PCRRepetition: 1},
		},
		{
			// 1.985 -> 2.105 s: 120 ms, beyond 40 ms and beyond 100 ms unflagged.
			name: "PCR gap 120 ms",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 2005, 2100, tstest.Video, func(p *tstest.Packet) {
					if p.PCR {
						tstest.DropPCR(p)
					}
				})
				return ps
			},
			want: counts{transport.PCRRepetition: 1, transport.PCRDiscontinuity: 1},
		},
		{
			name: "PCR jump flagged",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				jumpPCR(ps, 2505)
				tstest.SetDiscontinuity(&ps[find(ps, 2505)])
				return ps
			},
			want: counts{},
		},
		{
			name: "PCR jump not flagged",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				jumpPCR(ps, 2505)
				return ps
			},
			want: counts{transport.PCRDiscontinuity: 1},
		},
		{
			name: "PCR off by 1 us",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				p := &ps[find(ps, 3005)]
				tstest.SetPCR(&p.B, tstest.PCROf(&p.B)+27)
				return ps
			},
			want: counts{transport.PCRAccuracy: 1},
		},
		{
			name: "PCR off by 370 ns",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				p := &ps[find(ps, 3005)]
				tstest.SetPCR(&p.B, tstest.PCROf(&p.B)-10)
				return ps
			},
			want: counts{},
		},
		{
			name: "transport_error_indicator on 3 packets",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				for _, i := range []int{1503, 2503, 3503} {
					tstest.SetTEI(&ps[find(ps, i)])
				}
				return ps
			},
			want: counts{transport.TransportError: 3},
		},
		{
			name: "bad sync byte on a null packet",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				ps[find(ps, 1550)].B[0] = 0x48
				return ps
			},
			want: counts{transport.SyncByte: 1},
		},
		{
			name: "bad sync bytes on two null packets",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				ps[find(ps, 1550)].B[0] = 0x48
				ps[find(ps, 1551)].B[0] = 0x00
				return ps
			},
			want: counts{transport.SyncByte: 2, transport.SyncLoss: 1},
		},
		{
			// The packet with the bad sync byte is not trusted: its PID misses it.
			name: "bad sync byte on a video packet",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				ps[find(ps, 1503)].B[0] = 0x46
				return ps
			},
			want: counts{transport.SyncByte: 1, transport.Continuity: 1},
		},
		{
			// Audio PTS at 1.987 and then 3.007 s: 1.02 s.
			name: "PTS gap 1 s",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 2000, 3000, tstest.Audio, func(p *tstest.Packet) {
					if p.PTS {
						tstest.DropPTS(p)
					}
				})
				return ps
			},
			want: counts{transport.PTSError: 1},
		},
		{
			// Audio at 0.997 s and then 7.007 s: one 5 s PID period; its PTS
			// at 0.987 and 7.007 s: 6.02 s, eight whole 0.7 s periods.
			name:    "audio PID gone for 6 s",
			packets: 8000,
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 1000, 7000, tstest.Audio, tstest.MakeNull)
				tstest.Renumber(ps)
				return ps
			},
			want: counts{transport.PIDError: 1, transport.PTSError: 8},
		},
		{
			// Video scrambled 1.003 to 2.9 s without a CAT: one error per 0.5 s.
			name:  "scrambled without CAT",
			noCAT: true,
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 1000, 2900, tstest.Video, tstest.Scramble)
				return ps
			},
			want: counts{transport.CATError: 4},
		},
		{
			name: "scrambled with CAT",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				each(ps, 1000, 2900, tstest.Video, tstest.Scramble)
				return ps
			},
			want: counts{},
		},
		{
			name: "other table on PID 1",
			inject: func(ps []tstest.Packet) []tstest.Packet {
				tstest.SetSection(&ps[find(ps, 1502)], tstest.CATSectionID(0x05))
				return ps
			},
			want: counts{transport.CATError: 1},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := tc.packets
			if n == 0 {
				n = 5000
			}
			ps := tstest.Generate(tstest.Options{Packets: n, CAT: !tc.noCAT})
			if tc.inject != nil {
				ps = tc.inject(ps)
			}
			data := tstest.Bytes(ps)
			var want transport.Counts
			for k, v := range tc.want {
				want[k] = v
			}
			// Chunk sizes that cut packets anywhere must not change a count.
			for _, chunk := range []int{len(data), 188, 1000, 7, 1} {
				rec := &recorder{}
				a := transport.New(transport.DefaultLimits(), rec, 10)
				for off := 0; off < len(data); off += chunk {
					a.Feed(data[off:min(off+chunk, len(data))])
				}
				a.Flush()
				if got := a.Counts(); got != want {
					t.Fatalf("chunks of %d bytes: counts\n got  %v\n want %v", chunk, fmtCounts(got), fmtCounts(want))
				}
				if rec.counts != want {
					t.Fatalf("chunks of %d: reported %v, counted %v", chunk, fmtCounts(rec.counts), fmtCounts(want))
				}
				if rec.back || rec.times == 0 || rec.last < 10 {
					t.Fatalf("chunks of %d: reported times: backwards %v, %d clock reports, last %.3f (offset 10)", chunk, rec.back, rec.times, rec.last)
				}
			}
		})
	}
}

// jumpPCR adds 10 s to every PCR from packet from on.
func jumpPCR(ps []tstest.Packet, from int) {
	for i := range ps {
		if ps[i].Index >= from && ps[i].PCR {
			tstest.SetPCR(&ps[i].B, tstest.PCROf(&ps[i].B)+270_000_000)
		}
	}
}

func fmtCounts(c transport.Counts) string {
	var b bytes.Buffer
	for i, v := range c {
		if v != 0 {
			fmt.Fprintf(&b, "%s=%d ", transport.Indicator(i), v)
		}
	}
	if b.Len() == 0 {
		return "none"
	}
	return b.String()
}

// Garbage before, between and after packets: sync is found, lost, found.
func TestGarbage(t *testing.T) {
	ps := tstest.Generate(tstest.Options{Packets: 3000, CAT: true})
	k := find(ps, 1550) // a null packet
	var b []byte
	b = append(b, bytes.Repeat([]byte{0x47, 0x00, 0x11}, 200)...) // sync-like noise before
	b = append(b, tstest.Bytes(ps[:k])...)
	b = append(b, make([]byte, 100)...) // 100 zero bytes at a packet boundary
	b = append(b, tstest.Bytes(ps[k:])...)
	b = append(b, 0x47, 0x01, 0x02) // a truncated packet at the end
	a := transport.New(transport.DefaultLimits(), nil, 0)
	a.Feed(b)
	a.Flush()
	// The 100 bytes frame two bad packets (sync lost), the second inside the
	// null packet 1550, which is lost; 100 extra bytes move the next PCR by
	// 0.53 ms for its position.
	want := transport.Counts{}
	want[transport.SyncByte], want[transport.SyncLoss], want[transport.PCRAccuracy] = 2, 1, 1
	if got := a.Counts(); got != want {
		t.Fatalf("counts %v, want %v", fmtCounts(got), fmtCounts(want))
	}
	if got, wantN := a.Packets(), int64(len(ps)-1); got != wantN {
		t.Fatalf("%d packets analyzed, want %d", got, wantN)
	}
}

// The clock is the PCR's, interpolated by bytes: a file fed at any pace reads
// the same times.
func TestClock(t *testing.T) {
	ps := tstest.Generate(tstest.Options{Packets: 2000, CAT: true})
	a := transport.New(transport.DefaultLimits(), nil, 5)
	data := tstest.Bytes(ps)
	a.Feed(data[:1000*188])
	// Packet 1000 starts 995 ms after the first PCR (packet 5).
	if got := a.Time(); got < 5.995-1e-9 || got > 5.995+1e-9 {
		t.Fatalf("time after 1000 packets %.9f, want 5.995", got)
	}
	a.Feed(data[1000*188:])
	if got := a.Time(); got < 6.995-1e-9 || got > 6.995+1e-9 {
		t.Fatalf("time at the end %.9f, want 6.995", got)
	}
}

func TestIndicatorNames(t *testing.T) {
	seen := map[string]bool{}
	for i := range transport.NumIndicators {
		s := i.String()
		if s == "unknown" || seen[s] {
			t.Fatalf("indicator %d: name %q", i, s)
		}
		seen[s] = true
	}
	if transport.Continuity.String() != "1.4 continuity_count_error" {
		t.Fatalf("1.4 is %q", transport.Continuity)
	}
}
