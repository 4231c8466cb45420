package firmware

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// Defaults of the block stream.
const (
	DefaultBlockTimeout = 10 * time.Second
	DefaultMaxBad       = 3
	maxBlockRequest     = 1 << 10 // bytes of a BlockRequest message
	maxStreamerError    = 200     // bytes of a streamer's error text kept
	minRequestRetry     = 10 * time.Millisecond
)

// BlockSource fetches a streamed bundle block by block: it publishes
// BlockRequests through Request and takes the blocks from Blocks, with up
// to Window requests outstanding (so that the latency of a round trip, a
// WAN's or a broker's Nagle delay, is paid once per window rather than per
// block), and writes them in order. It never gives up on silence: the agent
// may be offline for hours, and the job's deadline is the caller's ctx.
type BlockSource struct {
	// Size is the bundle's size in bytes (ref.Size).
	Size int64
	// BlockSize is the bytes asked for per request (ref.Block()); 0:
	// DefaultBlock.
	BlockSize int
	// Window is the most requests outstanding (0: DefaultWindow). Blocks
	// received out of order wait in memory: at most Window blocks.
	Window int
	// Request publishes r on .../stream/get; an error (not connected) is
	// retried after Timeout/2.
	Request func(ctx context.Context, r BlockRequest) error
	// Blocks carries the raw messages of .../stream/data for this job. The
	// MQTT handler should not block on it (drop when full; give it room
	// for 2*Window messages): a lost block is asked for again.
	Blocks <-chan []byte
	// Timeout is the wait for a block before asking for it again (0:
	// DefaultBlockTimeout).
	Timeout time.Duration
	// MaxBad is how many blocks refused for one offset (corrupt,
	// truncated, wrong length) end the copy with ErrCorrupt (0:
	// DefaultMaxBad).
	MaxBad int
	// Logger nil: discard.
	Logger *slog.Logger
}

// DefaultWindow is the requests a BlockSource keeps outstanding.
const DefaultWindow = 8

// outstanding is one block asked for and not received yet.
type outstanding struct {
	n     int
	due   time.Time // ask again then
	sent  bool      // the last Request went out (else: failed, retried at due)
	bad   int
	fails int // Request errors in a row
}

// Copy implements Source. A block is written only once its header's
// SHA-256 matched, and only in order. A message for an offset not asked
// for (a late duplicate, a block already held) is ignored; a header with
// Error set for an offset asked for is returned as an error with the
// streamer's text.
func (s *BlockSource) Copy(ctx context.Context, off int64, w io.Writer) error {
	block := s.BlockSize
	if block == 0 {
		block = DefaultBlock
	}
	window := s.Window
	if window <= 0 {
		window = DefaultWindow
	}
	switch {
	case s.Size <= 0:
		return fmt.Errorf("block stream: bundle size %d", s.Size)
	case block < 1 || block > MaxBlockSize:
		return fmt.Errorf("block stream: block size %d: want 1 to %d", block, MaxBlockSize)
	case s.Request == nil || s.Blocks == nil:
		return errors.New("block stream: no Request or no Blocks")
	case off < 0 || off > s.Size:
		return fmt.Errorf("block stream: offset %d outside the bundle's %d bytes", off, s.Size)
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultBlockTimeout
	}
	retry := max(timeout/2, minRequestRetry)
	maxBad := s.MaxBad
	if maxBad <= 0 {
		maxBad = DefaultMaxBad
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pending := map[int64]*outstanding{}
	held := map[int64][]byte{} // received ahead of off
	next := off                // the next offset to ask for
	// After a Request error (not connected) nothing is asked before
	// blocked: the other requests would fail the same way.
	var blocked time.Time
	ask := func(at int64, o *outstanding) error {
		err := s.Request(ctx, BlockRequest{Offset: at, Length: o.n})
		if err == nil {
			o.sent, o.fails, o.due = true, 0, time.Now().Add(timeout)
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("block at offset %d: %w", at, context.Cause(ctx))
		}
		blocked = time.Now().Add(retry)
		o.sent, o.due = false, blocked
		o.fails++
		level := slog.LevelDebug
		if o.fails == 1 {
			level = slog.LevelWarn
		}
		log.Log(ctx, level, "firmware: block request not sent, retrying", "offset", at, "err", err, "retry_in", retry)
		return nil
	}
	tick := time.NewTicker(max(min(timeout, retry)/4, minRequestRetry))
	defer tick.Stop()
	for off < s.Size {
		// Write what is in order, then fill the window.
		for data, ok := held[off]; ok; data, ok = held[off] {
			delete(held, off)
			if _, err := w.Write(data); err != nil {
				return fmt.Errorf("block at offset %d: %w", off, err)
			}
			off += int64(len(data))
		}
		if off >= s.Size {
			break
		}
		for len(pending)+len(held) < window && next < s.Size && !time.Now().Before(blocked) {
			o := &outstanding{n: int(min(int64(block), s.Size-next))}
			pending[next] = o
			if err := ask(next, o); err != nil {
				return err
			}
			next += int64(o.n)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("block at offset %d: %w", off, context.Cause(ctx))
		case now := <-tick.C:
			for at, o := range pending {
				if now.After(o.due) && !now.Before(blocked) {
					if o.sent {
						log.Debug("firmware: no block, asking again", "offset", at, "timeout", timeout)
					}
					if err := ask(at, o); err != nil {
						return err
					}
				}
			}
		case msg, ok := <-s.Blocks:
			if !ok {
				return fmt.Errorf("block at offset %d: the block stream was closed", off)
			}
			h, data, err := DecodeBlock(msg)
			at := h.Offset
			o := pending[at]
			if err != nil && h == (BlockHeader{}) {
				// Nothing says which request it answered: the oldest one.
				at, o = off, pending[off]
			}
			switch {
			case o == nil:
				// Not asked for (any more): a late duplicate, damaged or not.
				log.Debug("firmware: stale block ignored", "block_offset", h.Offset, "err", err)
				continue
			case err == nil && h.Error != "":
				return fmt.Errorf("block at offset %d: the streamer says %q", at, truncate(h.Error, maxStreamerError))
			case err == nil && h.Total != s.Size:
				return fmt.Errorf("block at offset %d: the streamer serves a bundle of %d bytes, want %d", at, h.Total, s.Size)
			case err == nil && len(data) != o.n:
				err = fmt.Errorf("%w: at offset %d: %d bytes, asked for %d", ErrBlock, at, len(data), o.n)
			case err == nil:
				delete(pending, at)
				held[at] = data
				continue
			}
			o.bad++
			log.Warn("firmware: block refused", "offset", at, "err", err, "refused", o.bad)
			if o.bad >= maxBad {
				return fmt.Errorf("%w: block at offset %d refused %d times, last: %v", ErrCorrupt, at, o.bad, err)
			}
			// Ask again now rather than after the timeout.
			if !time.Now().Before(blocked) {
				if err := ask(at, o); err != nil {
					return err
				}
			} else {
				o.due = blocked
			}
		}
	}
	return nil
}

// BlockServer answers block requests (the streamer side of `streamqc
// firmware push`), one at a time.
type BlockServer struct {
	// Data holds the bundle, Size bytes.
	Data io.ReaderAt
	Size int64
	// MaxBlock is the largest length served (0 or over MaxBlockSize:
	// MaxBlockSize).
	MaxBlock int
	// Requests carries the raw payloads of .../stream/get.
	Requests <-chan []byte
	// Publish sends one message on .../stream/data; an error is logged and
	// the request dropped (the agent asks again).
	Publish func(ctx context.Context, msg []byte) error
	// Served, when set, is called after each block is published (progress
	// of a push; tests count the bytes served).
	Served func(off int64, n int)
	// Logger nil: discard.
	Logger *slog.Logger
}

// ServeBlocks answers block requests from reqs with blocks of r through
// publish until ctx is done (returning its error) or reqs is closed
// (returning nil); see BlockServer.
func ServeBlocks(ctx context.Context, r io.ReaderAt, size int64, maxBlock int, reqs <-chan []byte, publish func(ctx context.Context, msg []byte) error, logger *slog.Logger) error {
	s := &BlockServer{Data: r, Size: size, MaxBlock: maxBlock, Requests: reqs, Publish: publish, Logger: logger}
	return s.Serve(ctx)
}

// Serve answers requests until ctx is done (returning its error) or
// Requests is closed (returning nil). A request that does not decode gets
// a block with Error set and offset -1 (the agent ignores it, as not the
// answer to its request); one for an offset outside [0, Size) or a length
// outside [1, MaxBlock] gets one with Error set and the offset asked. A
// length past the end is served up to the end.
func (s *BlockServer) Serve(ctx context.Context) error {
	switch {
	case s.Data == nil || s.Publish == nil || s.Requests == nil:
		return errors.New("firmware: serve blocks: no Data, Publish or Requests")
	case s.Size <= 0:
		return fmt.Errorf("firmware: serve blocks: size %d", s.Size)
	}
	maxBlock := s.MaxBlock
	if maxBlock <= 0 || maxBlock > MaxBlockSize {
		maxBlock = MaxBlockSize
	}
	log := s.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var buf []byte
	for {
		var raw []byte
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-s.Requests:
			if !ok {
				return nil
			}
			raw = m
		}
		req, reason := parseBlockRequest(raw, s.Size, maxBlock)
		var msg []byte
		n := 0
		if reason != "" {
			log.Warn("firmware: block request refused", "offset", req.Offset, "length", req.Length, "reason", reason)
			msg = EncodeBlock(BlockHeader{Offset: req.Offset, Total: s.Size, Error: reason}, nil)
		} else {
			n = int(min(int64(req.Length), s.Size-req.Offset))
			if cap(buf) < n {
				buf = make([]byte, n)
			}
			got, err := s.Data.ReadAt(buf[:n], req.Offset)
			if got < n {
				log.Error("firmware: cannot read block", "offset", req.Offset, "length", n, "err", err)
				n = 0
				msg = EncodeBlock(BlockHeader{Offset: req.Offset, Total: s.Size, Error: "streamer cannot read the bundle"}, nil)
			} else {
				msg = EncodeBlock(BlockHeader{Offset: req.Offset, Total: s.Size}, buf[:n])
			}
		}
		if err := s.Publish(ctx, msg); err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			log.Warn("firmware: block not published", "offset", req.Offset, "err", err)
			continue
		}
		if n > 0 && s.Served != nil {
			s.Served(req.Offset, n)
		}
	}
}

// parseBlockRequest decodes a request strictly; reason says why it is
// refused (Offset is then -1 when it did not decode).
func parseBlockRequest(raw []byte, size int64, maxBlock int) (BlockRequest, string) {
	bad := BlockRequest{Offset: -1}
	if len(raw) > maxBlockRequest {
		return bad, fmt.Sprintf("bad request: %d bytes, at most %d", len(raw), maxBlockRequest)
	}
	var r BlockRequest
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return bad, truncate("bad request: "+err.Error(), maxStreamerError)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return bad, "bad request: trailing data after the JSON object"
	}
	switch {
	case r.Offset < 0 || r.Offset >= size:
		return r, fmt.Sprintf("offset %d beyond the end (%d bytes)", r.Offset, size)
	case r.Length < 1 || r.Length > maxBlock:
		return r, fmt.Sprintf("length %d: want 1 to %d", r.Length, maxBlock)
	}
	return r, ""
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
