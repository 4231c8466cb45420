package transport

import "math"

// PacketSize is the MPEG-TS packet size the analyzer frames (the 192- and
// 204-byte variants never acquire sync, so they report nothing).
const PacketSize = 188

const (
	syncByte    = 0x47
	syncAcquire = 5 // consecutive sync bytes to acquire sync (TR 101 290 5.2.1)
	syncLose    = 2 // consecutive bad sync bytes to lose it
	nullPID     = 0x1FFF
	maxSection  = 4096 // private sections are at most 4096 bytes
	maxPSIPIDs  = 512  // bounds the section buffers a hostile PAT can make us allocate
	pcrHz       = 27e6
	pcrWrap     = (1 << 33) * 300
	eps         = 1e-9
)

type pidKind uint8

const (
	kindNone pidKind = iota
	kindPAT
	kindCAT
	kindPMT
	kindSI // NIT, SDT/BAT, EIT, TOT: checked for CRC only
	kindES
)

// timer is a "must occur at least every limit" check.
type timer struct {
	last float64
	on   bool
}

// overdue returns how many whole periods of limit passed without the event
// before now, and the time the last of them fell due; it moves the timer past them.
func (tm *timer) overdue(now, limit float64) (n int64, due float64) {
	if !tm.on || limit <= 0 {
		return 0, 0
	}
	d := now - tm.last
	if d <= limit+eps {
		return 0, 0
	}
	n = int64(math.Ceil(d/limit-eps)) - 1
	if n <= 0 {
		return 0, 0
	}
	tm.last += float64(n) * limit
	return n, tm.last
}

func (tm *timer) start(t float64) { tm.on, tm.last = true, t }

// pidState is what every PID needs: a fixed array of them (16 bytes each),
// so the packet path never allocates; timers and PCR state live in small
// tables for the PIDs that have them.
type pidState struct {
	kind    pidKind
	ccValid bool
	cc      uint8
	dup     bool   // the last packet repeated its predecessor's CC once
	av      bool   // audio or video elementary stream: PTS checked
	refs    uint8  // PMTs referring to this PID
	isPCR   bool   // a PMT names it PCR_PID
	pcrIdx  uint8  // 1 + index in Analyzer.pcrs, 0 none
	sec     uint16 // 1 + index of its section buffer, 0 none
	pmtIdx  uint16 // 1 + index in Analyzer.pmts (PMT PIDs)
	esIdx   uint16 // 1 + index in Analyzer.ess (PIDs a PMT lists)
}

// esState are the timers of a PID a PMT lists.
type esState struct {
	seen timer // PID_error
	pts  timer // PTS_error
}

// pcrState is the PCR history of a PID that carries PCRs.
type pcrState struct {
	hasPCR  bool
	pcr     uint64
	pcrPos  int64
	pcrT    float64
	accPCR  uint64 // PCR accuracy: the anchor the expectation runs from
	accPos  int64
	rate    float64 // PCR ticks per byte since the anchor
	rateOK  bool
	suspect bool // the last PCR was off: was it jitter, or lost bytes?
	// cbr: 0 learning (the first second of PCRs), 1 constant rate, 2 variable
	// rate: PCR_AC is not applicable, TR 101 290 assumes a constant rate.
	cbr      uint8
	cbrStart uint64
	susPCR   uint64
	susPos   int64
}

const maxPCRPIDs = 255 // pcrIdx is a byte

// section reassembles the PSI sections of one PID.
type section struct {
	buf [maxSection]byte
	n   int
	crc uint32 // CRC of the last table parsed, to skip unchanged repeats
}

// pmt is one program's PMT PID and the elementary PIDs it lists.
type pmt struct {
	pid   uint16
	pcr   uint16 // its PCR_PID, 0 none
	timer timer  // PMT_error
	es    []uint16
}

// clock is the transport's time: seconds on the reference PCR PID's clock
// since its first PCR, interpolated between PCRs by byte position at the
// rate of the last half to one second, so that a file and a live stream read
// the same (and a burst of bytes between two PCRs does not make time race).
type clock struct {
	have      bool
	ref       uint16
	anchorPos int64
	anchorPCR uint64
	anchorT   float64
	rate      float64 // bytes per second, 0 until two PCRs
	resync    bool    // the reference PID changed: the next PCR re-anchors
	winPos    int64   // the rate is measured from here...
	winT      float64
	midPos    int64 // ...and from here once the window passes a second
	midT      float64
	midSet    bool
}

func (c *clock) at(pos int64) float64 {
	if c.rate <= 0 {
		return c.anchorT
	}
	return c.anchorT + float64(pos-c.anchorPos)/c.rate
}

// update moves the clock to a PCR of the reference PID. A PCR that disagrees
// with the byte count (a jump, a discontinuity) keeps the extrapolated time,
// so that the clock never jumps.
func (c *clock) update(pos int64, pcr uint64, disc bool) {
	if !c.have {
		c.have, c.anchorPos, c.anchorPCR = true, pos, pcr
		c.winPos, c.winT = pos, 0
		return
	}
	t := c.at(pos)
	d := pcrSeconds(pcrDiff(pcr, c.anchorPCR))
	bytes := pos - c.anchorPos
	elapsed := t - c.anchorT
	ok := !disc && !c.resync && d > 0 && bytes > 0 && d <= 1
	c.resync = false
	if ok && c.rate > 0 {
		ok = d <= max(2*elapsed, elapsed+0.1)
	}
	if ok {
		c.anchorT += d
	} else {
		c.anchorT = t
		if c.rate <= 0 { // no rate yet: measure from here
			c.winPos, c.winT, c.midSet = pos, t, false
		}
	}
	c.anchorPos, c.anchorPCR = pos, pcr
	span := c.anchorT - c.winT
	if !ok || span <= 0 || pos <= c.winPos {
		return
	}
	c.rate = float64(pos-c.winPos) / span
	if span >= 0.5 && !c.midSet {
		c.midPos, c.midT, c.midSet = pos, c.anchorT, true
	}
	if span > 1 && c.midSet {
		c.winPos, c.winT, c.midSet = c.midPos, c.midT, false
	}
}

func pcrDiff(a, b uint64) int64 {
	d := (int64(a) - int64(b)) % pcrWrap
	if d < 0 {
		d += pcrWrap
	}
	if d > pcrWrap/2 {
		d -= pcrWrap
	}
	return d
}

func pcrSeconds(ticks int64) float64 { return float64(ticks) / pcrHz }

// Analyzer checks one transport stream. Feed it the bytes in order, as they
// arrive, in chunks of any size; it is not safe for concurrent use.
//
// Times are on the transport's clock: seconds of the stream's PCR since its
// first PCR (bytes before it are at 0), interpolated by byte position, plus
// the offset given to New. The timers of PAT, PMT, PID, PTS and PCR
// repetition run on that clock, so a file read at any speed gives the
// answers the live stream would.
type Analyzer struct {
	lim    Limits
	rep    Reporter
	offset float64
	counts Counts

	inSync   bool
	bad      int // consecutive bad sync bytes
	consumed int64
	carry    [PacketSize]byte
	nCarry   int
	hunt     [(syncAcquire + 1) * PacketSize]byte
	nHunt    int
	packets  int64

	clk      clock
	started  bool
	lastT    float64 // last time reported
	pat      timer
	catSeen  bool
	catErrT  float64
	catErred bool

	pcrKnown bool // a PMT named a PCR_PID

	pids [8192]pidState
	ess  []esState
	pcrs []pcrState
	psi  []*section
	pmts []pmt
	es   []uint16 // referenced elementary PIDs, for the sweeps
}

// New returns an analyzer reporting to rep (which may be nil) with times
// shifted by offset.
func New(lim Limits, rep Reporter, offset float64) *Analyzer {
	a := &Analyzer{lim: lim, rep: rep, offset: offset, lastT: offset}
	a.pids[0].kind = kindPAT
	a.pids[1].kind = kindCAT
	for _, p := range []uint16{0x10, 0x11, 0x12, 0x14} {
		a.pids[p].kind = kindSI
	}
	for _, p := range []uint16{0, 1, 0x10, 0x11, 0x12, 0x14} {
		a.sectionBuffer(&a.pids[p])
	}
	return a
}

// sectionBuffer gives a PSI PID its reassembly buffer, when it becomes one
// (New, a PAT naming a PMT): never on the packet path.
func (a *Analyzer) sectionBuffer(st *pidState) {
	if st.sec != 0 || len(a.psi) >= maxPSIPIDs {
		return
	}
	a.psi = append(a.psi, &section{})
	st.sec = uint16(len(a.psi))
}

// Counts returns the errors found so far.
func (a *Analyzer) Counts() Counts { return a.counts }

// Packets returns how many packets were analyzed.
func (a *Analyzer) Packets() int64 { return a.packets }

// Time returns the transport's clock at the last byte fed, offset included.
func (a *Analyzer) Time() float64 { return a.offset + a.clk.at(a.consumed) }

// Flush ends the stream. Its end is not an absence: a PAT or PTS due after
// the last PCR is not counted (the stream may just have been cut there).
func (a *Analyzer) Flush() {
	if a.rep != nil && a.started {
		a.lastT = max(a.offset+a.clk.at(a.consumed), a.lastT)
		a.rep.TransportTime(a.lastT)
	}
}

// Feed analyzes the next bytes of the stream.
func (a *Analyzer) Feed(b []byte) {
	for len(b) > 0 {
		if !a.inSync {
			b = a.huntFeed(b)
			continue
		}
		if a.nCarry > 0 {
			n := copy(a.carry[a.nCarry:], b)
			a.nCarry += n
			b = b[n:]
			if a.nCarry < PacketSize {
				return
			}
			a.nCarry = 0
			if used := a.run(a.carry[:]); used < PacketSize {
				// Sync lost on this packet: hunt again from its second byte.
				rest := a.carry[used:PacketSize]
				for len(rest) > 0 && !a.inSync {
					rest = a.huntFeed(rest)
				}
				if len(rest) > 0 {
					a.Feed(rest) // in sync again within it: at most one level deep
				}
			}
			continue
		}
		used := a.run(b)
		b = b[used:]
		if a.inSync {
			a.nCarry = copy(a.carry[:], b)
			return
		}
	}
}

// huntFeed looks for syncAcquire packets in a row; it consumes what it can
// and returns the rest of b.
func (a *Analyzer) huntFeed(b []byte) []byte {
	n := copy(a.hunt[a.nHunt:], b)
	a.nHunt += n
	b = b[n:]
	for !a.inSync {
		i := findSync(a.hunt[:a.nHunt])
		if i < 0 {
			keep := min(a.nHunt, syncAcquire*PacketSize-1) // may still begin a run
			drop := a.nHunt - keep
			a.consumed += int64(drop)
			copy(a.hunt[:], a.hunt[drop:a.nHunt])
			a.nHunt = keep
			return b
		}
		a.consumed += int64(i)
		a.inSync, a.bad = true, 0
		used := a.run(a.hunt[i:a.nHunt])
		rest := a.hunt[i+used : a.nHunt]
		if a.inSync {
			a.nCarry = copy(a.carry[:], rest)
			a.nHunt = 0
			return b
		}
		a.nHunt = copy(a.hunt[:], rest)
	}
	return b
}

func findSync(b []byte) int {
	for i := 0; i+(syncAcquire-1)*PacketSize < len(b); i++ {
		ok := true
		for k := 0; k < syncAcquire; k++ {
			if b[i+k*PacketSize] != syncByte {
				ok = false
				break
			}
		}
		if ok {
			return i
		}
	}
	return -1
}

// run analyzes whole packets while in sync and returns the bytes used; a
// lost sync uses only the first byte of the packet that lost it.
func (a *Analyzer) run(b []byte) int {
	used := 0
	for len(b)-used >= PacketSize {
		p := b[used : used+PacketSize]
		if p[0] != syncByte {
			a.bad++
			t := a.clk.at(a.consumed)
			a.err(SyncByte, NoPID, t, 1)
			if a.bad >= syncLose {
				a.err(SyncLoss, NoPID, t, 1)
				a.inSync = false
				a.consumed++
				return used + 1
			}
		} else {
			a.bad = 0
			a.packet(p, a.consumed) // a packet with a bad sync byte is not trusted further
		}
		a.consumed += PacketSize
		used += PacketSize
	}
	return used
}

func (a *Analyzer) err(ind Indicator, pid uint16, t float64, n int64) {
	a.counts[ind] += n
	if a.rep == nil {
		return
	}
	t = max(a.offset+t, a.lastT) // the decisions want time to move forward
	a.lastT = t
	a.rep.TransportError(ind, pid, t, n)
}

// packet analyzes one 188-byte packet that starts at byte pos.
func (a *Analyzer) packet(p []byte, pos int64) {
	a.packets++
	pid := uint16(p[1]&0x1F)<<8 | uint16(p[2])
	t := a.clk.at(pos)
	if !a.started {
		a.started = true
		a.pat.start(t)
	}
	tei := p[1]&0x80 != 0
	if tei {
		a.err(TransportError, pid, t, 1)
	}
	if pid == nullPID {
		return
	}
	st := &a.pids[pid]
	afc := p[3] >> 4 & 3
	if afc == 0 {
		return // reserved: no payload, no CC
	}
	var af []byte
	payload := p[4:]
	if afc&2 != 0 {
		n := int(p[4])
		if n > 183 || (afc == 3 && n > 182) {
			return // malformed adaptation field
		}
		af, payload = p[5:5+n], p[5+n:]
	}
	if afc&1 == 0 {
		payload = nil
	}
	disc := len(af) > 0 && af[0]&0x80 != 0
	cc := p[3] & 0x0F
	dup := false
	if st.ccValid && !disc && !tei {
		switch {
		case afc&1 == 0:
			if cc != st.cc { // CC does not advance without payload
				a.err(Continuity, pid, t, 1)
				a.resetSection(st)
			}
		case cc == st.cc:
			if st.dup { // a packet may be sent twice, not three times
				a.err(Continuity, pid, t, 1)
			}
			st.dup, dup = true, true
		case cc != (st.cc+1)&0x0F:
			a.err(Continuity, pid, t, 1)
			a.resetSection(st)
			st.dup = false
		default:
			st.dup = false
		}
	}
	st.ccValid, st.cc = true, cc
	if tei || dup {
		return // unreliable or already seen
	}
	if len(af) >= 7 && af[0]&0x10 != 0 {
		pcr := (uint64(af[1])<<25|uint64(af[2])<<17|uint64(af[3])<<9|uint64(af[4])<<1|uint64(af[5])>>7)*300 +
			(uint64(af[5]&1)<<8 | uint64(af[6]))
		a.pcr(st, pid, pos, t, pcr, disc)
		if a.clk.ref == pid {
			t = a.clk.at(pos)
		}
	}
	scrambled := p[3]>>6 != 0
	if scrambled && !a.catSeen && a.lim.CAT > 0 && (!a.catErred || t-a.catErrT >= a.lim.CAT-eps) {
		a.catErred, a.catErrT = true, t
		a.err(CATError, pid, t, 1)
	}
	pusi := p[1]&0x40 != 0
	switch st.kind {
	case kindPAT:
		if scrambled {
			a.err(PATError, pid, t, 1)
			return
		}
		a.psiPacket(st, pid, payload, pusi, t)
	case kindPMT:
		if scrambled {
			a.err(PMTError, pid, t, 1)
			return
		}
		a.psiPacket(st, pid, payload, pusi, t)
	case kindCAT, kindSI:
		if !scrambled {
			a.psiPacket(st, pid, payload, pusi, t)
		}
	case kindES:
		if st.refs == 0 {
			return
		}
		es := &a.ess[st.esIdx-1]
		if n, due := es.seen.overdue(t, a.lim.PID); n > 0 {
			a.err(PIDError, pid, due, n)
		}
		es.seen.start(t)
		if scrambled {
			es.pts.on = false // PTS cannot be read: TR 101 290 checks it only in the clear
			return
		}
		if pusi && st.av && hasPTS(payload) {
			if n, due := es.pts.overdue(t, a.lim.PTS); n > 0 {
				a.err(PTSError, pid, due, n)
			}
			es.pts.start(t)
		}
	}
}

// hasPTS reports whether a payload starts a PES packet with a PTS.
func hasPTS(b []byte) bool {
	if len(b) < 14 || b[0] != 0 || b[1] != 0 || b[2] != 1 {
		return false
	}
	switch b[3] { // stream ids without the optional PES header
	case 0xBC, 0xBE, 0xBF, 0xF0, 0xF1, 0xF2, 0xF8, 0xFF:
		return false
	}
	return b[7]&0x80 != 0
}

// pcr checks one PCR of a PID (2.3a, 2.3b, 2.4) and moves the clock.
func (a *Analyzer) pcr(st *pidState, pid uint16, pos int64, t float64, pcr uint64, disc bool) {
	if !st.isPCR && a.pcrKnown {
		return // TR 101 290 checks the PCR_PID a PMT names; other PCR flags are not the program's clock
	}
	if st.pcrIdx == 0 {
		if len(a.pcrs) >= maxPCRPIDs {
			return
		}
		a.pcrs = append(a.pcrs, pcrState{}) // once per PCR PID
		st.pcrIdx = uint8(len(a.pcrs))
	}
	ps := &a.pcrs[st.pcrIdx-1]
	if !a.clk.have {
		a.clk.ref = pid
	}
	if !ps.hasPCR {
		ps.accPCR, ps.accPos = pcr, pos
	} else {
		d := pcrDiff(pcr, ps.pcr)
		// The interval is the PCRs' own difference; across a discontinuity or
		// jump, the bytes between them at the stream's rate.
		interval := t - ps.pcrT
		if !disc && d >= 0 && pcrSeconds(d) <= max(a.lim.PCRDiscontinuity, 0.1) {
			interval = pcrSeconds(d)
		}
		if lim := a.lim.PCRRepetition; lim > 0 && interval > lim+eps {
			a.err(PCRRepetition, pid, t, 1)
		}
		switch {
		case disc:
			ps.accPCR, ps.accPos, ps.suspect = pcr, pos, false
		case a.lim.PCRDiscontinuity > 0 && (d < 0 || pcrSeconds(d) > a.lim.PCRDiscontinuity+eps):
			a.err(PCRDiscontinuity, pid, t, 1)
			ps.accPCR, ps.accPos, ps.suspect = pcr, pos, false
		default:
			a.accuracy(ps, pid, pos, t, pcr)
		}
	}
	ps.hasPCR, ps.pcr, ps.pcrPos, ps.pcrT = true, pcr, pos, t
	if a.clk.ref == pid {
		a.clk.update(pos, pcr, disc)
		a.sweep(a.clk.at(pos))
	}
}

// accuracy checks a PCR against the value its byte position predicts at the
// rate measured since the anchor (TR 101 290 assumes a constant rate). A PCR
// off by more than the limit is one error; if the next PCR agrees with it
// rather than with the anchor, bytes were lost or added (a continuity error
// already says so) and the anchor moves there, so that one lost packet is
// one PCR_accuracy_error, not one per PCR after it.
func (a *Analyzer) accuracy(ps *pcrState, pid uint16, pos int64, t float64, pcr uint64) {
	lim := a.lim.PCRAccuracy
	if lim <= 0 || pos <= ps.accPos {
		return
	}
	if !ps.rateOK {
		ps.rate, ps.rateOK = float64(pcrDiff(pcr, ps.accPCR))/float64(pos-ps.accPos), true
		ps.cbrStart = ps.accPCR
		return
	}
	if ps.cbr == 2 {
		return
	}
	off := func(from uint64, at int64) float64 {
		return math.Abs(float64(pcrDiff(pcr, from))-ps.rate*float64(pos-at)) / pcrHz
	}
	switch {
	case off(ps.accPCR, ps.accPos) <= lim+eps:
		ps.suspect = false
		ps.rate = float64(pcrDiff(pcr, ps.accPCR)) / float64(pos-ps.accPos)
		if ps.cbr == 0 && pcrSeconds(pcrDiff(pcr, ps.cbrStart)) >= 1 {
			ps.cbr = 1 // a second of PCRs on a constant rate
		}
	case ps.cbr == 0:
		ps.cbr = 2 // off while learning: a variable-rate stream
	case ps.suspect && off(ps.susPCR, ps.susPos) <= lim+eps:
		ps.accPCR, ps.accPos, ps.suspect = ps.susPCR, ps.susPos, false
	default:
		a.err(PCRAccuracy, pid, t, 1)
		ps.suspect, ps.susPCR, ps.susPos = true, pcr, pos
	}
}

// sweep runs the timers that fire on absence (PAT, PMT, PID, PTS) up to t;
// each also runs when its event arrives.
func (a *Analyzer) sweep(t float64) {
	if n, due := a.pat.overdue(t, a.lim.PAT); n > 0 {
		a.err(PATError, 0, due, n)
	}
	for i := range a.pmts {
		if n, due := a.pmts[i].timer.overdue(t, a.lim.PMT); n > 0 {
			a.err(PMTError, a.pmts[i].pid, due, n)
		}
	}
	for _, pid := range a.es {
		es := &a.ess[a.pids[pid].esIdx-1]
		if n, due := es.seen.overdue(t, a.lim.PID); n > 0 {
			a.err(PIDError, pid, due, n)
		}
		if n, due := es.pts.overdue(t, a.lim.PTS); n > 0 {
			a.err(PTSError, pid, due, n)
		}
	}
	if a.rep != nil {
		a.lastT = max(a.offset+t, a.lastT)
		a.rep.TransportTime(a.lastT)
	}
}

func (a *Analyzer) resetSection(st *pidState) {
	if st.sec > 0 {
		a.psi[st.sec-1].n = 0
	}
}

// psiPacket feeds a PSI packet's payload to its PID's section buffer.
func (a *Analyzer) psiPacket(st *pidState, pid uint16, payload []byte, pusi bool, t float64) {
	if len(payload) == 0 {
		return
	}
	if st.sec == 0 {
		return // no buffer: more PMTs than maxPSIPIDs
	}
	sec := a.psi[st.sec-1]
	if !pusi {
		if sec.n > 0 {
			a.sectionBytes(sec, st, pid, payload, t)
		}
		return
	}
	ptr := int(payload[0])
	data := payload[1:]
	if ptr > len(data) {
		sec.n = 0 // pointer beyond the packet: malformed
		return
	}
	if sec.n > 0 {
		a.sectionBytes(sec, st, pid, data[:ptr], t)
	}
	sec.n = 0
	a.sectionBytes(sec, st, pid, data[ptr:], t)
}

// sectionBytes appends to a section buffer and handles every section it completes.
func (a *Analyzer) sectionBytes(sec *section, st *pidState, pid uint16, data []byte, t float64) {
	for {
		if sec.n > 0 && sec.buf[0] == 0xFF {
			sec.n = 0 // stuffing to the end of the packet
			return
		}
		if sec.n >= 3 {
			l := 3 + (int(sec.buf[1]&0x0F)<<8 | int(sec.buf[2]))
			if l > maxSection {
				sec.n = 0
				return
			}
			if sec.n >= l {
				a.section(sec, st, pid, sec.buf[:l], t)
				sec.n = copy(sec.buf[:], sec.buf[l:sec.n])
				continue
			}
		}
		if len(data) == 0 {
			return
		}
		k := copy(sec.buf[sec.n:], data)
		sec.n += k
		data = data[k:]
	}
}

// section handles one complete PSI/SI section.
func (a *Analyzer) section(sec *section, st *pidState, pid uint16, s []byte, t float64) {
	tid := s[0]
	long := s[1]&0x80 != 0
	if long || tid == 0x73 { // every long section, and the TOT, end with a CRC_32
		if len(s) < 8 {
			return
		}
		if crc32MPEG(s) != 0 {
			a.err(CRCError, pid, t, 1)
			return
		}
	}
	switch st.kind {
	case kindPAT:
		if tid != 0x00 {
			a.err(PATError, pid, t, 1)
			return
		}
		if n, due := a.pat.overdue(t, a.lim.PAT); n > 0 {
			a.err(PATError, pid, due, n)
		}
		a.pat.start(t)
		if long && len(s) >= 12 && crcOf(s) != sec.crc {
			sec.crc = crcOf(s)
			a.parsePAT(s[8:len(s)-4], s[7] == 0, t)
		}
	case kindCAT:
		if tid != 0x01 {
			a.err(CATError, pid, t, 1)
			return
		}
		a.catSeen = true
	case kindPMT:
		if tid != 0x02 {
			return // other tables may share a PMT PID
		}
		if st.pmtIdx == 0 {
			return
		}
		tm := &a.pmts[st.pmtIdx-1].timer
		if n, due := tm.overdue(t, a.lim.PMT); n > 0 {
			a.err(PMTError, pid, due, n)
		}
		tm.start(t)
		if long && len(s) >= 16 && crcOf(s) != sec.crc {
			sec.crc = crcOf(s)
			a.parsePMT(st, s[8:len(s)-4], t)
		}
	}
}

func crcOf(s []byte) uint32 {
	n := len(s)
	return uint32(s[n-4])<<24 | uint32(s[n-3])<<16 | uint32(s[n-2])<<8 | uint32(s[n-1])
}

// parsePAT updates the set of PMT PIDs from a PAT section's program loop;
// whole: the PAT is this one section.
func (a *Analyzer) parsePAT(loop []byte, whole bool, t float64) {
	var want [maxPSIPIDs]uint16
	n := 0
	for i := 0; i+4 <= len(loop) && n < len(want); i += 4 {
		prog := uint16(loop[i])<<8 | uint16(loop[i+1])
		pid := uint16(loop[i+2]&0x1F)<<8 | uint16(loop[i+3])
		if prog == 0 || pid < 0x20 || pid == nullPID {
			continue // the NIT, or a PID that cannot be a PMT's
		}
		want[n] = pid
		n++
	}
	// Drop the PMTs no longer listed; a PAT in several sections only adds.
	kept := a.pmts[:0]
	for _, p := range a.pmts {
		found := !whole
		for _, w := range want[:n] {
			found = found || w == p.pid
		}
		if found {
			kept = append(kept, p)
			continue
		}
		a.setES(p.es, nil, t)
		if p.pcr != 0 {
			a.pids[p.pcr].isPCR = false
		}
		st := &a.pids[p.pid]
		st.kind, st.pmtIdx = kindNone, 0
	}
	a.pmts = kept
	for i := range a.pmts {
		a.pids[a.pmts[i].pid].pmtIdx = uint16(i + 1)
		if q := a.pmts[i].pcr; q != 0 {
			a.pids[q].isPCR = true
		}
	}
	for _, pid := range want[:n] {
		st := &a.pids[pid]
		if st.kind == kindPMT {
			continue
		}
		if st.kind != kindNone && !(st.kind == kindES && st.refs == 0) {
			continue // already something else
		}
		st.kind = kindPMT
		a.sectionBuffer(st)
		a.pmts = append(a.pmts, pmt{pid: pid, timer: timer{on: true, last: t}})
		st.pmtIdx = uint16(len(a.pmts))
	}
}

// parsePMT updates the elementary PIDs of one program.
func (a *Analyzer) parsePMT(st *pidState, b []byte, t float64) {
	if st.pmtIdx == 0 || len(b) < 4 {
		return
	}
	p := &a.pmts[st.pmtIdx-1]
	a.setPCRPID(p, uint16(b[0]&0x1F)<<8|uint16(b[1]))
	infoLen := int(b[2]&0x0F)<<8 | int(b[3])
	if 4+infoLen > len(b) {
		return
	}
	var es [64]uint16
	var av [64]bool
	n := 0
	for i := 4 + infoLen; i+5 <= len(b) && n < len(es); {
		stype := b[i]
		pid := uint16(b[i+1]&0x1F)<<8 | uint16(b[i+2])
		l := int(b[i+3]&0x0F)<<8 | int(b[i+4])
		end := min(i+5+l, len(b))
		if pid >= 0x20 && pid != nullPID {
			es[n], av[n] = pid, isAV(stype, b[i+5:end])
			n++
		}
		i = end
	}
	old := p.es
	p.es = append([]uint16(nil), es[:n]...)
	a.setES(old, p.es, t)
	for i := range n {
		a.pids[es[i]].av = av[i]
		if st := &a.pids[es[i]]; av[i] && st.esIdx != 0 && !a.ess[st.esIdx-1].pts.on {
			a.ess[st.esIdx-1].pts.start(t)
		}
	}
}

// setPCRPID records a program's PCR_PID and makes it the clock's reference
// if the clock runs on a PID no PMT names.
func (a *Analyzer) setPCRPID(p *pmt, pcr uint16) {
	if pcr == nullPID || pcr < 0x20 {
		pcr = 0
	}
	if p.pcr == pcr {
		return
	}
	if p.pcr != 0 {
		a.pids[p.pcr].isPCR = false
	}
	p.pcr = pcr
	for i := range a.pmts {
		if q := a.pmts[i].pcr; q != 0 {
			a.pids[q].isPCR = true
		}
	}
	if pcr == 0 {
		return
	}
	a.pcrKnown = true
	if a.clk.have && !a.pids[a.clk.ref].isPCR {
		a.clk.ref, a.clk.resync = pcr, true
	}
}

// setES moves references from the old list of a program's elementary PIDs to the new.
func (a *Analyzer) setES(old, cur []uint16, t float64) {
	for _, pid := range cur {
		st := &a.pids[pid]
		if st.kind != kindNone && st.kind != kindES {
			continue
		}
		if st.refs == 0 {
			st.kind = kindES
			if st.esIdx == 0 {
				a.ess = append(a.ess, esState{}) // when a PMT first lists it
				st.esIdx = uint16(len(a.ess))
			}
			a.ess[st.esIdx-1].seen.start(t)
		}
		if st.refs < 255 {
			st.refs++
		}
	}
	for _, pid := range old {
		st := &a.pids[pid]
		if st.kind != kindES || st.refs == 0 {
			continue
		}
		st.refs--
		if st.refs == 0 {
			a.ess[st.esIdx-1] = esState{}
			st.av = false
		}
	}
	a.es = a.es[:0]
	for i := range a.pmts {
		for _, pid := range a.pmts[i].es {
			if a.pids[pid].refs > 0 && !contains(a.es, pid) {
				a.es = append(a.es, pid)
			}
		}
	}
	for _, pid := range cur {
		if a.pids[pid].refs > 0 && !contains(a.es, pid) {
			a.es = append(a.es, pid)
		}
	}
}

func contains(s []uint16, v uint16) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// isAV reports whether a PMT entry is audio or video, whose PTS TR 101 290
// checks (subtitles and data may legitimately go quiet).
func isAV(stype uint8, desc []byte) bool {
	switch stype {
	case 0x01, 0x02, 0x10, 0x1B, 0x24, 0x42, 0xEA, // video
		0x03, 0x04, 0x0F, 0x11, 0x1C, 0x81, 0x87: // audio
		return true
	case 0x06: // DVB private PES: audio when an audio descriptor says so
		for i := 0; i+2 <= len(desc); i += 2 + int(desc[i+1]) {
			switch desc[i] {
			case 0x6A, 0x7A, 0x7B, 0x7C: // AC-3, E-AC-3, DTS, AAC
				return true
			}
		}
	}
	return false
}
