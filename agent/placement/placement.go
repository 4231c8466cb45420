// Package placement decides where each stream of the box decodes, on a GPU's
// NVDEC engines or on the CPU, and with how many CPU decoder threads. It is
// pure logic: the box's load comes from a Probe, the streams' lag from the
// caller, and the decisions go back to the supervisor, which restarts a
// stream whose decision changed.
package placement

import (
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"time"
)

// Request is one stream as configured.
type Request struct {
	ID string
	// HWAccel as configured: auto (placed here), none ("" too), cuda, vaapi
	// or qsv (obeyed).
	HWAccel  string
	HWDevice string
	// Threads is the configured decoder thread count; 0: chosen here.
	Threads int
	// Lag is how far the running stream's decoding trails real time, in
	// seconds; NaN when unknown (not running, or a file read at full speed).
	Lag float64
}

// GPU is one NVDEC-capable device.
type GPU struct {
	// Index is the device as FFmpeg's CUDA hwaccel names it ("0", "1").
	Index int
	// DecoderUtil is the NVDEC load in percent; NaN when unknown (then the
	// streams' lag alone says when the GPU falls behind).
	DecoderUtil float64
}

// Load is the box at one moment.
type Load struct {
	GPUs []GPU
	// NoGPU says why GPUs is empty (for the one warning per stream).
	NoGPU string
	// CPUPercent is this process's CPU time, in percent of one core.
	CPUPercent float64
	Cores      int
}

// Probe measures the box; the agent's reads NVML and the process CPU time.
type Probe interface {
	Load() Load
}

// Decision is where one stream decodes.
type Decision struct {
	// Decoder says it for metrics: "cpu", "nvdec:0", "vaapi", "qsv".
	Decoder  string
	HWAccel  string // media.Options.HWAccel
	HWDevice string
	Threads  int
}

// Config tunes the Placer; zero values take the defaults.
type Config struct {
	// Full: a side (one GPU's decoders, or the CPU) at or above this load,
	// in percent, has fallen behind. Default 90.
	Full float64
	// Headroom: a side takes a new or moved stream only while its load plus
	// the stream's estimated cost stays at or below this. Default 80.
	Headroom float64
	// MaxLag: a stream whose decoding trails real time by more than this
	// many seconds is behind. Default 2.
	MaxLag float64
	// Dwell is the least time a stream stays where it was put before it
	// may move. Default 2 minutes.
	Dwell time.Duration
	// Settle is the least time between two moves, so that the load
	// measured reflects the previous one. Default 15 s.
	Settle time.Duration
	// Confirm is how many rounds in a row a side must be behind before a
	// stream moves off it: one NVML sample of a busy moment moves nothing.
	// Default 2.
	Confirm int
	// GPUCost is the NVDEC load in percent assumed for a stream until the
	// GPU's streams can be measured. Default 3 (an H200 decodes about 43
	// streams of 1080p30 H.264).
	GPUCost float64
	// CPUCost is the cores a stream's software decoding is assumed to take
	// until CPU-decoded streams can be measured. Default 0.4 (1080p30 H.264).
	CPUCost float64
	// MaxThreads caps the decoder threads of a CPU-decoded stream. Default
	// 1: each frame thread holds its own frames (2 threads: 39 to 43 MB a
	// 1080p stream, over the 40 MB budget; 1: 28 to 31 MB), one thread
	// decodes 1080p30 H.264 several times over real time, and many streams
	// keep every core busy anyway. A stream's own threads setting is obeyed.
	MaxThreads int
	Logger     *slog.Logger
}

// Placer keeps where each stream runs and since when. Not safe for
// concurrent use: the supervisor calls it under its apply lock.
type Placer struct {
	cfg      Config
	probe    Probe
	streams  map[string]*placed
	capacity map[int]int    // streams a GPU of unknown load held when its lag said it was behind
	streak   map[string]int // rounds in a row each side has been behind
	lastMove time.Time
}

type placed struct {
	d        Decision
	since    time.Time
	warned   bool
	explicit bool // its hwaccel is configured, not placed here
}

// New makes a Placer.
func New(probe Probe, cfg Config) *Placer {
	def := func(v *float64, d float64) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Full, 90)
	def(&cfg.Headroom, 80)
	def(&cfg.MaxLag, 2)
	def(&cfg.GPUCost, 3)
	def(&cfg.CPUCost, 0.4)
	if cfg.Dwell <= 0 {
		cfg.Dwell = 2 * time.Minute
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 15 * time.Second
	}
	if cfg.Confirm <= 0 {
		cfg.Confirm = 2
	}
	if cfg.MaxThreads <= 0 {
		cfg.MaxThreads = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Placer{cfg: cfg, probe: probe, streams: map[string]*placed{}, capacity: map[int]int{}, streak: map[string]int{}}
}

const cpu = "cpu"

func nvdec(i int) string { return "nvdec:" + strconv.Itoa(i) }

// side is one place streams decode: a GPU or the CPU.
type side struct {
	name    string
	gpu     int     // -1: the CPU
	load    float64 // percent (of the GPU's decoders, or of all cores); NaN unknown
	n       int     // streams there, measured in load
	fresh   int     // streams put there in this round, not yet in load
	lagging int     // of which behind real time
	known   int     // of which with a known lag
	added   float64 // load assumed for streams put there in this round
}

// behind: at or above Full, or half of its streams (that say) trail real
// time; one lagging stream alone is its input's problem, not the side's.
func (s *side) behind(full float64) bool {
	return s.load >= full || (s.lagging > 0 && 2*s.lagging >= s.known)
}

func (s *side) cost(c Config, cores int) float64 {
	switch {
	case s.n > 0 && s.load > 0:
		return s.load / float64(s.n)
	case s.gpu >= 0:
		return c.GPUCost
	default:
		return 100 * c.CPUCost / float64(max(cores, 1))
	}
}

// takes says whether the side has room for one more stream.
func (p *Placer) takes(s *side, cores int) bool {
	if s.behind(p.cfg.Full) {
		return false
	}
	if math.IsNaN(s.load) {
		c, ok := p.capacity[s.gpu]
		return !ok || s.n+s.fresh < c
	}
	return s.load+s.added+s.cost(p.cfg, cores) <= p.cfg.Headroom
}

// Place decides every stream of reqs: explicit hwaccels as configured, auto
// ones where there is headroom, moving at most one stream per Settle from a
// side that fell behind. It returns a decision per stream id.
func (p *Placer) Place(now time.Time, reqs []Request) map[string]Decision {
	load := p.probe.Load()
	cores := max(load.Cores, 1)
	reqs = slices.Clone(reqs)
	slices.SortFunc(reqs, func(a, b Request) int { return cmpString(a.ID, b.ID) })
	keep := map[string]bool{}
	for _, r := range reqs {
		keep[r.ID] = true
	}
	for id := range p.streams {
		if !keep[id] {
			delete(p.streams, id)
		}
	}

	sides := map[string]*side{cpu: {name: cpu, gpu: -1, load: load.CPUPercent / float64(cores)}}
	gpus := make([]*side, 0, len(load.GPUs))
	for _, g := range load.GPUs {
		s := &side{name: nvdec(g.Index), gpu: g.Index, load: g.DecoderUtil}
		sides[s.name] = s
		gpus = append(gpus, s)
	}
	out := make(map[string]Decision, len(reqs))
	var fresh []Request
	for _, r := range reqs {
		var d Decision
		switch r.HWAccel {
		case "auto":
			st, ok := p.streams[r.ID]
			if !ok || sides[st.d.Decoder] == nil || st.explicit {
				fresh = append(fresh, r) // new, or its GPU is gone
				continue
			}
			d = st.d
		default:
			d = explicit(r)
			st := p.streams[r.ID]
			if st == nil || st.d.Decoder != d.Decoder || !st.explicit {
				st = &placed{since: now, explicit: true}
				p.streams[r.ID] = st
			}
			prev := st.d.Threads // chooseThreads keeps it unless off by a factor of 2
			st.d, st.d.Threads = d, prev
		}
		out[r.ID] = d
		if s := sides[d.Decoder]; s != nil {
			s.n++
			if !math.IsNaN(r.Lag) {
				s.known++
				if r.Lag > p.cfg.MaxLag {
					s.lagging++
				}
			}
		}
	}
	for name, sd := range sides {
		if sd.behind(p.cfg.Full) {
			p.streak[name]++
		} else {
			delete(p.streak, name)
		}
	}
	for name := range p.streak {
		if sides[name] == nil {
			delete(p.streak, name) // a GPU gone
		}
	}
	for _, g := range gpus {
		if math.IsNaN(g.load) && g.behind(p.cfg.Full) {
			// Learn how many streams this GPU of unknown load can carry.
			if c, ok := p.capacity[g.gpu]; !ok || g.n-1 < c {
				p.capacity[g.gpu] = max(g.n-1, 0)
			}
		}
	}

	for _, r := range fresh {
		st := p.streams[r.ID]
		if st == nil || st.explicit {
			st = &placed{}
			p.streams[r.ID] = st
		}
		to := p.leastLoaded(gpus, "", cores)
		if to == nil {
			to = sides[cpu]
			if len(gpus) == 0 && !st.warned {
				st.warned = true
				p.cfg.Logger.Warn("hwaccel auto: no GPU, decoding on the CPU", "stream", r.ID, "why", load.NoGPU)
			}
		}
		to.added += to.cost(p.cfg, cores)
		to.fresh++
		st.d, st.since = onSide(to), now
		out[r.ID] = st.d
	}

	if now.Sub(p.lastMove) >= p.cfg.Settle {
		p.moveOne(now, reqs, out, sides, gpus, cores)
	}
	p.chooseThreads(reqs, out, cores)
	return out
}

// moveOne moves, from the first side that has been behind for Confirm
// rounds, the stream that trails most and has dwelled long enough, to a side
// that takes it.
func (p *Placer) moveOne(now time.Time, reqs []Request, out map[string]Decision, sides map[string]*side, gpus []*side, cores int) {
	order := append(slices.Clone(gpus), sides[cpu])
	for _, from := range order {
		if p.streak[from.name] < p.cfg.Confirm {
			continue
		}
		var pick *Request
		for i, r := range reqs {
			st := p.streams[r.ID]
			if r.HWAccel != "auto" || st == nil || st.d.Decoder != from.name || now.Sub(st.since) < p.cfg.Dwell {
				continue
			}
			if pick == nil || lagOf(r) > lagOf(*pick) {
				pick = &reqs[i]
			}
		}
		if pick == nil {
			continue
		}
		to := p.leastLoaded(gpus, from.name, cores)
		if to == nil && from.gpu >= 0 && p.takes(sides[cpu], cores) {
			to = sides[cpu]
		}
		if to == nil {
			continue
		}
		st := p.streams[pick.ID]
		why := fmt.Sprintf("%s load %.0f%%, %d of %d streams behind real time", from.name, from.load, from.lagging, from.known)
		p.cfg.Logger.Info("decoder moved", "stream", pick.ID, "from", from.name, "to", to.name, "why", why)
		st.d, st.since = onSide(to), now
		out[pick.ID] = st.d
		p.lastMove = now
		return
	}
}

// leastLoaded is the GPU, other than not, with the lowest load that takes a
// stream; nil when none does.
func (p *Placer) leastLoaded(gpus []*side, not string, cores int) *side {
	var best *side
	for _, g := range gpus {
		if g.name == not || !p.takes(g, cores) {
			continue
		}
		if best == nil || key(g) < key(best) {
			best = g
		}
	}
	return best
}

// key orders GPUs by load, by stream count when the load is unknown.
func key(s *side) float64 {
	if math.IsNaN(s.load) {
		return float64(s.n + s.fresh)
	}
	return s.load + s.added
}

func lagOf(r Request) float64 {
	if math.IsNaN(r.Lag) {
		return math.Inf(-1)
	}
	return r.Lag
}

func onSide(s *side) Decision {
	if s.gpu < 0 {
		return Decision{Decoder: cpu, HWAccel: "none"}
	}
	return Decision{Decoder: s.name, HWAccel: "cuda", HWDevice: strconv.Itoa(s.gpu)}
}

func explicit(r Request) Decision {
	switch r.HWAccel {
	case "", "none":
		return Decision{Decoder: cpu, HWAccel: "none"}
	case "cuda":
		dev := r.HWDevice
		if dev == "" {
			dev = "0" // FFmpeg's default CUDA device
		}
		return Decision{Decoder: "nvdec:" + dev, HWAccel: "cuda", HWDevice: r.HWDevice}
	default:
		name := r.HWAccel
		if r.HWDevice != "" {
			name += ":" + r.HWDevice
		}
		return Decision{Decoder: name, HWAccel: r.HWAccel, HWDevice: r.HWDevice}
	}
}

// Threads is the decoder thread count of each CPU-decoded stream when
// streams of them share cores: the cores shared out, at least 1, at most
// maxThreads.
func Threads(cores, streams, maxThreads int) int {
	return max(1, min(maxThreads, cores/max(streams, 1)))
}

// chooseThreads sets Threads: configured ones as configured; hardware
// decoders 1 (frame threads gain them nothing, and their count then never
// restarts them); CPU ones shared out, kept while within a factor of 2 of
// the choice so that streams coming and going restart nothing for little.
func (p *Placer) chooseThreads(reqs []Request, out map[string]Decision, cores int) {
	n := 0
	for _, d := range out {
		if d.Decoder == cpu {
			n++
		}
	}
	want := Threads(cores, n, p.cfg.MaxThreads)
	for _, r := range reqs {
		d := out[r.ID]
		switch {
		case r.Threads > 0:
			d.Threads = r.Threads
		case d.Decoder != cpu:
			d.Threads = 1
		default:
			d.Threads = want
			if st := p.streams[r.ID]; st != nil && st.d.Decoder == cpu && st.d.Threads > 0 && st.d.Threads < 2*want && want < 2*st.d.Threads {
				d.Threads = st.d.Threads
			}
		}
		if st := p.streams[r.ID]; st != nil {
			st.d.Threads = d.Threads
		}
		out[r.ID] = d
	}
}

func cmpString(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
