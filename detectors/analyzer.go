package detectors

import (
	"errors"
	"fmt"

	"github.com/streamqc/streamqc/transport"
)

// Config is every detector's settings for one stream.
type Config struct {
	Black       BlackConfig       `json:"black"`
	Freeze      FreezeConfig      `json:"freeze"`
	Blockiness  BlockinessConfig  `json:"blockiness"`
	Silence     SilenceConfig     `json:"silence"`
	Clipping    ClippingConfig    `json:"clipping"`
	Loudness    LoudnessConfig    `json:"loudness"`
	AVSync      AVSyncConfig      `json:"av_sync"`
	SignalLoss  SignalLossConfig  `json:"signal_loss"`
	DecodeError DecodeErrorConfig `json:"decode_error"`
	TR101290    TR101290Config    `json:"tr101290"`
	DetailLoss  DetailLossConfig  `json:"detail_loss"`
	Sampling    Sampling          `json:"sampling"`
}

// Sampling sets how densely the video features look at each picture. The
// CPU cost of detection is proportional to it. 0 means automatic: about
// the same number of samples at any resolution (some 100,000 luma samples
// for black and freeze), so that detection costs a shrinking share of
// decoding as pictures grow, while its statistics stay the same.
type Sampling struct {
	// RowStep: black and freeze features read every RowStep-th luma row
	// (automatic: height/90, so 8 at 720p and 12 at 1080p).
	RowStep int `json:"row_step"`
	// BlockRowStep and BlockColStep: rows inspected for vertical block edges
	// (automatic: 8, or 16 from 700 lines up: one row per macroblock row),
	// columns for horizontal ones (automatic: 8, in every other 64-byte
	// cache line from 1200 pixels wide up). 720p is sampled as 1080p: its
	// events on every tune clip of the quality corpus are the same either
	// way, and the blockiness pass costs half as much.
	BlockRowStep int `json:"block_row_step"`
	BlockColStep int `json:"block_col_step"`
}

// steps resolves automatic values for a picture size.
func (s Sampling) steps(width, height int) (row, blockRow, blockCol int, sparse bool) {
	row, blockRow, blockCol = s.RowStep, s.BlockRowStep, s.BlockColStep
	if row == 0 {
		row = max(1, height/90)
	}
	if blockRow == 0 {
		blockRow = 8
		if height >= 700 {
			blockRow = 16
		}
	}
	if blockCol == 0 {
		blockCol, sparse = 8, width >= 1200
	}
	return row, blockRow, blockCol, sparse
}

// DefaultConfig returns the documented defaults of every detector.
func DefaultConfig() Config {
	return Config{
		Black:       DefaultBlackConfig(),
		Freeze:      DefaultFreezeConfig(),
		Blockiness:  DefaultBlockinessConfig(),
		Silence:     DefaultSilenceConfig(),
		Clipping:    DefaultClippingConfig(),
		Loudness:    DefaultLoudnessConfig(),
		AVSync:      DefaultAVSyncConfig(),
		SignalLoss:  DefaultSignalLossConfig(),
		DecodeError: DefaultDecodeErrorConfig(),
		TR101290:    DefaultTR101290Config(),
		DetailLoss:  DefaultDetailLossConfig(),
		Sampling:    Sampling{}, // automatic
	}
}

// Validate names the first field that makes no sense.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, field, msg string) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: %s", field, msg))
		}
	}
	check(c.Black.PixelThreshold >= 0 && c.Black.PixelThreshold < 1, "black.pixel_threshold", "must be in [0, 1)")
	check(c.Black.PictureThreshold > 0 && c.Black.PictureThreshold <= 1, "black.picture_threshold", "must be in (0, 1]")
	check(c.Black.MaxCentreBright >= 0 && c.Black.MaxCentreBright <= 1, "black.max_centre_bright", "must be in [0, 1]")
	check(c.Freeze.Noise >= 0 && c.Freeze.Noise < 1, "freeze.noise", "must be in [0, 1)")
	check(c.Freeze.KeyFrameNoise >= c.Freeze.Noise, "freeze.keyframe_noise", "must be at least freeze.noise")
	check(c.Freeze.MaxMoved >= 0 && c.Freeze.MaxMoved < 1, "freeze.max_moved", "must be in [0, 1)")
	check(c.Freeze.MinMotion > c.Freeze.MaxMoved && c.Freeze.MinMotion <= 1, "freeze.min_motion", "must be in (freeze.max_moved, 1]")
	check(c.Freeze.GrainNoise >= 0 && c.Freeze.GrainNoise < 1, "freeze.grain_noise", "must be in [0, 1)")
	check(c.Freeze.CellFloor >= 0 && c.Freeze.CellFloor < 1, "freeze.cell_floor", "must be in [0, 1)")
	check(c.Blockiness.Threshold > 0 && c.Blockiness.Threshold <= 1, "blockiness.threshold", "must be in (0, 1]")
	check(c.Blockiness.MinStep >= 1, "blockiness.min_step", "must be at least 1")
	check(c.Blockiness.PictureThreshold > 0 && c.Blockiness.PictureThreshold <= 1, "blockiness.picture_threshold", "must be in (0, 1]")
	check(c.Blockiness.PictureMinStep >= 1, "blockiness.picture_min_step", "must be at least 1")
	check(c.DetailLoss.Factor > 1, "detail_loss.factor", "must be above 1")
	check(c.DetailLoss.MinRatio >= 1, "detail_loss.min_ratio", "must be at least 1")
	check(c.DetailLoss.Window > 0 && c.DetailLoss.Window <= 3600, "detail_loss.window", "must be in (0, 3600] seconds")
	check(c.DetailLoss.ClearAfter >= 0, "detail_loss.clear_after", "must not be negative")
	check(c.DetailLoss.Drop > 1, "detail_loss.drop", "must be above 1")
	check(c.DetailLoss.SlowDrop > 1, "detail_loss.slow_drop", "must be above 1")
	check(c.DetailLoss.SlowFactor >= 1, "detail_loss.slow_factor", "must be at least 1")
	check(c.DetailLoss.DropWindow > 0 && c.DetailLoss.DropWindow <= 60, "detail_loss.drop_window", "must be in (0, 60] seconds")
	check(c.DetailLoss.Collapse > 1, "detail_loss.collapse", "must be above 1")
	check(c.DetailLoss.CollapseWindow > 0 && c.DetailLoss.CollapseWindow <= 60, "detail_loss.collapse_window", "must be in (0, 60] seconds")
	check(c.DetailLoss.QuantJump > 0, "detail_loss.quant_jump", "must be above 0")
	check(c.DetailLoss.QuantWindow > 0 && c.DetailLoss.QuantWindow <= 4, "detail_loss.quant_window", "must be in (0, 4] seconds")
	check(c.DetailLoss.QuantHold >= 0 && c.DetailLoss.QuantHold <= 10, "detail_loss.quant_hold", "must be in [0, 10] seconds")
	check(c.Silence.Threshold < 0, "silence.threshold_db", "must be below 0 dBFS")
	check(c.Clipping.Level > 0 && c.Clipping.Level <= 1, "clipping.level", "must be in (0, 1]")
	check(c.Clipping.MinRun >= 2, "clipping.min_run", "must be at least 2")
	check(c.Clipping.NearLevel > 0 && c.Clipping.NearLevel <= 1, "clipping.near_level", "must be in (0, 1]")
	check(c.Clipping.NearShare > 0 && c.Clipping.NearShare <= 1, "clipping.near_share", "must be in (0, 1]")
	check(c.Clipping.MinRipple >= 1, "clipping.min_ripple", "must be at least 1")
	check(c.Clipping.MaxGap > 0, "clipping.max_gap", "must be positive")
	check(c.Clipping.NearGap > 0, "clipping.near_gap", "must be positive")
	check(c.Clipping.Lookback >= 0 && c.Clipping.Lookback <= 10, "clipping.lookback", "must be in [0, 10] seconds")
	check(c.Loudness.MinShortTerm < c.Loudness.MaxShortTerm, "loudness.min_short_term", "must be below loudness.max_short_term")
	check(c.AVSync.MaxEarlyMs >= 0 && c.AVSync.MaxLateMs >= 0, "av_sync.max_early_ms", "limits must not be negative")
	check(c.AVSync.MaxSkew > 0, "av_sync.max_skew", "must be positive")
	check(c.SignalLoss.Timeout > 0, "signal_loss.timeout", "must be positive")
	check(c.DecodeError.ClearAfter >= 0, "decode_error.clear_after", "must not be negative")
	c.TR101290.validate(check)
	for name, d := range map[string]float64{
		"black.min_duration": c.Black.MinDuration, "freeze.min_duration": c.Freeze.MinDuration,
		"blockiness.min_duration": c.Blockiness.MinDuration, "silence.min_duration": c.Silence.MinDuration,
		"clipping.min_duration": c.Clipping.MinDuration, "loudness.min_duration": c.Loudness.MinDuration,
		"av_sync.min_duration": c.AVSync.MinDuration, "detail_loss.min_duration": c.DetailLoss.MinDuration,
	} {
		check(d >= 0 && d <= 86400, name, "must be in [0, 86400] seconds")
	}
	s := c.Sampling
	check(s.RowStep >= 0 && s.RowStep <= 64, "sampling.row_step", "must be in [0, 64] (0: automatic)")
	check(s.BlockRowStep >= 0 && s.BlockRowStep <= 64, "sampling.block_row_step", "must be in [0, 64] (0: automatic)")
	check(s.BlockColStep >= 0 && s.BlockColStep <= 64, "sampling.block_col_step", "must be in [0, 64] (0: automatic)")
	return errors.Join(errs...)
}

// VideoFeatures are all per-frame video measurements. The CPU backend below
// is the reference; the GPU backend computes the same struct on the device.
type VideoFeatures struct {
	Black  BlackFeature
	Freeze FreezeFeature
	Block  BlockFeature
}

// VideoBackend computes the video features of a frame; ref is the freeze
// reference (the last picture that changed, nil for the first frame).
type VideoBackend interface {
	Measure(cur, ref *VideoFrame, out *VideoFeatures)
}

// CPUBackend computes video features in Go.
type CPUBackend struct {
	Config Config
}

// Measure implements VideoBackend.
func (c CPUBackend) Measure(cur, ref *VideoFrame, out *VideoFeatures) {
	if cur.Y == nil { // a frame on the device: not for this backend
		*out = VideoFeatures{Block: BlockFeature{Band: -1}}
		return
	}
	if ref != nil && ref.Y == nil {
		ref = nil
	}
	row, blockRow, blockCol, sparse := c.Config.Sampling.steps(cur.Width, cur.Height)
	if c.Config.Black.Enabled || c.Config.AVSync.Enabled || c.Config.DetailLoss.Enabled {
		MeasureBlack(cur, c.Config.Black.PixelThreshold, row, &out.Black)
	}
	if c.Config.Freeze.Enabled {
		MeasureFreeze(cur, ref, row, c.Config.Freeze.CellFloor, &out.Freeze)
	}
	if c.Config.Blockiness.Enabled || c.Config.DetailLoss.Enabled {
		b := c.Config.Blockiness
		MeasureBlockiness(cur, b.MinStep, b.PictureMinStep, blockRow, blockCol, sparse, &out.Block)
	}
}

// Track identifies the video or the audio track of a stream.
type Track int

const (
	VideoTrack Track = iota
	AudioTrack
)

func (t Track) String() string {
	if t == VideoTrack {
		return "video"
	}
	return "audio"
}

// Analyzer runs every enabled detector of one stream: frames and audio go in,
// events come out through emit. It is not safe for concurrent use: one
// pipeline goroutine feeds it.
type Analyzer struct {
	cfg            Config
	backend        VideoBackend
	feat           VideoFeatures
	black          *BlackDetector
	freeze         *FreezeDetector
	block          *BlockinessDetector
	detail         *DetailLossDetector
	silence        *SilenceDetector
	clipping       *ClippingDetector
	loudness       *LoudnessDetector
	avsync         *AVSyncDetector
	loss           *SignalLossDetector
	decode         *DecodeErrorDetector
	tr             *TR101290Detector
	frames         int
	blocks         int
	corruptPackets int
	end            float64
}

// NewAnalyzer builds the detectors of cfg; backend nil means the CPU.
func NewAnalyzer(cfg Config, backend VideoBackend, emit Emit) (*Analyzer, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("detector config: %w", err)
	}
	if backend == nil {
		backend = CPUBackend{Config: cfg}
	}
	a := &Analyzer{cfg: cfg, backend: backend}
	if cfg.Black.Enabled {
		a.black = NewBlackDetector(cfg.Black, emit)
	}
	if cfg.Freeze.Enabled {
		a.freeze = NewFreezeDetector(cfg.Freeze, emit)
	}
	if cfg.Blockiness.Enabled {
		a.block = NewBlockinessDetector(cfg.Blockiness, emit)
	}
	if cfg.DetailLoss.Enabled {
		a.detail = NewDetailLossDetector(cfg.DetailLoss, emit)
	}
	if cfg.Silence.Enabled {
		a.silence = NewSilenceDetector(cfg.Silence, emit)
	}
	if cfg.Clipping.Enabled {
		a.clipping = NewClippingDetector(cfg.Clipping, emit)
	}
	if cfg.Loudness.Enabled {
		a.loudness = NewLoudnessDetector(cfg.Loudness, emit)
	}
	if cfg.AVSync.Enabled {
		a.avsync = NewAVSyncDetector(cfg.AVSync, emit)
	}
	if cfg.SignalLoss.Enabled {
		a.loss = NewSignalLossDetector(cfg.SignalLoss, emit)
	}
	if cfg.DecodeError.Enabled {
		a.decode = NewDecodeErrorDetector(cfg.DecodeError, emit)
	}
	if cfg.TR101290.Enabled {
		a.tr = NewTR101290Detector(cfg.TR101290, emit)
	}
	return a, nil
}

// Tracks reports which tracks the input carries, at its start (time t).
func (a *Analyzer) Tracks(t float64, hasVideo, hasAudio bool) {
	if a.loss != nil {
		a.loss.Tracks(t, hasVideo, hasAudio)
	}
}

// Video analyzes one decoded picture. ref is the freeze reference: the
// picture the caller kept because Video last returned true, or nil. Like
// FFmpeg's freezedetect, a freeze is measured against the first picture of
// the still run, so a slow fade never passes for a freeze. Video returns
// whether the caller should keep ref (true) or keep cur as the next reference.
func (a *Analyzer) Video(cur, ref *VideoFrame) (keepRef bool) {
	a.frames++
	t, dur := cur.PTS, cur.Duration
	a.end = max(a.end, t+dur)
	a.backend.Measure(cur, ref, &a.feat)
	black := false
	if a.black != nil {
		black = a.black.Video(t, dur, &a.feat.Black)
	}
	if black {
		// A black picture is still by nature: black is the alarm, not freeze.
		a.freeze.Suppress(t, dur)
	} else if a.freeze != nil {
		lo, hi := cur.LumaRange()
		levels := (hi - lo) >> uint(max(cur.BitDepth-8, 0))
		refT := t
		if ref != nil {
			refT = ref.PTS
		}
		keepRef = a.freeze.Video(t, dur, refT, cur.KeyFrame, levels, &a.feat.Freeze)
	}
	if a.block != nil {
		a.block.Video(t, dur, &a.feat.Block)
	}
	if a.detail != nil {
		motion := 0.0
		if fz := &a.feat.Freeze; a.freeze != nil && fz.Valid && fz.Pixels > 0 {
			motion = float64(fz.SAD) / float64(fz.Pixels)
		}
		a.detail.Video(t, dur, a.feat.Black.MeanLuma, motion, cur.Quant, cur.HasQuant, cur.QuantSlice, &a.feat.Block, a.block != nil && a.block.Raised())
	}
	if a.avsync != nil {
		a.avsync.Video(t, dur, a.feat.Black.MeanLuma)
	}
	if a.decode != nil {
		a.decode.Frame(t, dur, cur.Corrupt)
	}
	if a.loss != nil {
		a.loss.Frame(int(VideoTrack), t, t+dur)
	}
	return keepRef
}

// Features returns the features of the last video frame (for tools and tests).
func (a *Analyzer) Features() *VideoFeatures { return &a.feat }

// Audio analyzes one block of decoded audio.
func (a *Analyzer) Audio(b *AudioBlock) {
	if b.Len() == 0 || b.SampleRate <= 0 {
		return
	}
	a.blocks++
	a.end = max(a.end, b.End())
	if a.silence != nil {
		a.silence.Audio(b)
	}
	if a.clipping != nil {
		a.clipping.Audio(b)
	}
	if a.loudness != nil {
		a.loudness.Audio(b)
	}
	if a.avsync != nil {
		a.avsync.Audio(b)
	}
	if a.loss != nil {
		a.loss.Frame(int(AudioTrack), b.PTS, b.End())
	}
}

// Packet reports a demuxed packet of track at media time t. A packet the
// demuxer flags corrupt (a continuity or PES length error) is counted, not
// alarmed on: captures with such flags often decode cleanly, and damage that
// matters shows in what the decoder reports.
func (a *Analyzer) Packet(track Track, t float64, corrupt bool) {
	if a.avsync != nil {
		a.avsync.Packet(track == VideoTrack, t)
	}
	if corrupt {
		a.corruptPackets++
	}
}

// DecodeError reports an error of the decoder at media time t.
func (a *Analyzer) DecodeError(t float64, reason string) {
	if a.decode != nil {
		a.decode.Error(t, reason)
	}
}

// TransportLimits returns the TR 101 290 timings, and whether the checks run
// (media.TransportSink).
func (a *Analyzer) TransportLimits() (transport.Limits, bool) {
	return a.cfg.TR101290.Limits(), a.tr != nil
}

// TransportError reports n transport errors of an indicator, the last at t.
func (a *Analyzer) TransportError(ind transport.Indicator, pid uint16, t float64, n int64) {
	if a.tr != nil {
		a.tr.Error(ind, pid, t, n)
	}
}

// TransportTime reports that the transport's clock reached t.
func (a *Analyzer) TransportTime(t float64) {
	if a.tr != nil {
		a.tr.Time(t)
	}
}

// Stall reports that a live input delivered nothing since media time t.
func (a *Analyzer) Stall(t float64) {
	if a.loss != nil {
		a.loss.Stall(t)
	}
}

// Resume reports that data flows again from media time t.
func (a *Analyzer) Resume(t float64) {
	if a.loss != nil {
		a.loss.Resume(t)
	}
}

// Flush ends the input at media time t (or at the end of the last frame or
// block when t is smaller): alarms still raised are cleared there.
func (a *Analyzer) Flush(t float64) {
	t = max(t, a.end)
	if a.black != nil {
		a.black.Flush(t)
	}
	if a.freeze != nil {
		a.freeze.Flush(t)
	}
	if a.block != nil {
		a.block.Flush(t)
	}
	if a.detail != nil {
		a.detail.Flush(t)
	}
	if a.silence != nil {
		a.silence.Flush(t)
	}
	if a.clipping != nil {
		a.clipping.Flush(t)
	}
	if a.loudness != nil {
		a.loudness.Flush(t)
	}
	if a.avsync != nil {
		a.avsync.Flush(t)
	}
	if a.loss != nil {
		a.loss.Flush(t)
	}
	if a.decode != nil {
		a.decode.Flush(t)
	}
	if a.tr != nil {
		a.tr.Flush(t)
	}
}

// Stats are a stream's running totals.
type Stats struct {
	Frames       int
	AudioBlocks  int
	End          float64
	DecodeErrors int
	// CorruptPackets counts packets the demuxer flagged corrupt.
	CorruptPackets int
	// Loudness is integrated loudness (LUFS) and LRA (LU); NaN without audio.
	Integrated, LRA float64
	// TR101290 counts the transport errors of each indicator (MPEG-TS inputs).
	TR101290 transport.Counts
}

// Loudness returns the latest momentary and short-term loudness (LUFS), NaN
// when loudness is not measured or no audio arrived yet.
func (a *Analyzer) Loudness() (momentary, shortTerm float64) {
	if a.loudness == nil || a.blocks == 0 {
		return nan(), nan()
	}
	return a.loudness.Meter().Momentary(), a.loudness.Meter().ShortTerm()
}

// Stats returns the running totals.
func (a *Analyzer) Stats() Stats {
	s := Stats{Frames: a.frames, AudioBlocks: a.blocks, End: a.end, CorruptPackets: a.corruptPackets, Integrated: nan(), LRA: nan()}
	if a.decode != nil {
		s.DecodeErrors = a.decode.Total()
	}
	if a.tr != nil {
		s.TR101290 = a.tr.Counts()
	}
	if a.loudness != nil && a.blocks > 0 {
		s.Integrated, s.LRA = a.loudness.Meter().Integrated(), a.loudness.Meter().Range()
	}
	return s
}
