package firmware

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"
)

// An update job (issue 6, item 2): an operator publishes a Job, retained,
// on streamqc/v1/{fleet}/{agent}/jobs/{job_id}; the agent answers with
// JobStatus documents on .../jobs/{job_id}/status as it goes. The job names
// the bundle by an https URL or as a stream of blocks over MQTT that the
// agent asks for by offset. The job itself is not signed: the bundle is,
// so a job can at most ask for a signed release, and a downgrade only when
// the job allows it and the agent's file does not forbid it.

// JobType is the only job type of version 1.
const JobType = "firmware_update"

// Bounds of a job's fields.
const (
	MaxJobSize      = 16 << 10 // bytes of a job document
	MinBlockSize    = 1 << 10
	MaxBlockSize    = 1 << 20
	DefaultBlock    = 120 << 10 // with its header, under AWS IoT Core's 128 KB message limit
	maxJobIDLen     = 64
	maxURLLen       = 2048
	minHealthWindow = 5 * time.Second
	maxHealthWindow = 24 * time.Hour
)

// Job is an update job document.
type Job struct {
	JobID   string    `json:"job_id"`
	Type    string    `json:"type"`
	Created time.Time `json:"created"`
	Bundle  BundleRef `json:"bundle"`
	// AllowDowngrade accepts an older (or the same) version.
	AllowDowngrade bool `json:"allow_downgrade,omitempty"`
	// HealthDeadline (seconds) overrides the agent's health-check deadline.
	HealthDeadline float64 `json:"health_deadline,omitempty"`
}

// BundleRef says where the bundle is and what it must be.
type BundleRef struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	// URL is an https URL; empty: the bundle is streamed over MQTT in
	// blocks of BlockSize bytes (DefaultBlock when 0).
	URL       string `json:"url,omitempty"`
	BlockSize int    `json:"block_size,omitempty"`
}

// Streamed reports whether the bundle comes as MQTT blocks.
func (b BundleRef) Streamed() bool { return b.URL == "" }

// Block returns the block size of a streamed bundle.
func (b BundleRef) Block() int {
	if b.BlockSize == 0 {
		return DefaultBlock
	}
	return b.BlockSize
}

// ErrJob wraps every reason a job document is refused before anything is
// fetched.
var ErrJob = errors.New("invalid job")

// ParseJob decodes a job strictly (unknown fields, trailing data and bad
// values are refused) and checks that it was published on its own topic.
func ParseJob(b []byte, topicID string) (Job, error) {
	var j Job
	if len(b) > MaxJobSize {
		return j, fmt.Errorf("%w: %d bytes, at most %d", ErrJob, len(b), MaxJobSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return Job{}, fmt.Errorf("%w: %v", ErrJob, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Job{}, fmt.Errorf("%w: trailing data after the JSON object", ErrJob)
	}
	if err := j.Validate(); err != nil {
		return Job{}, err
	}
	if topicID != "" && j.JobID != topicID {
		return Job{}, fmt.Errorf("%w: job_id %q published on the topic of job %q", ErrJob, j.JobID, topicID)
	}
	return j, nil
}

// ValidJobID accepts 1 to 64 of [A-Za-z0-9._-], not starting with a dot:
// an id is a topic level and a file name.
func ValidJobID(id string) bool {
	if id == "" || len(id) > maxJobIDLen || id[0] == '.' {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// Validate checks every field.
func (j Job) Validate() error {
	switch {
	case !ValidJobID(j.JobID):
		return fmt.Errorf("%w: job_id %q: want 1 to %d of A-Z a-z 0-9 . _ -", ErrJob, j.JobID, maxJobIDLen)
	case j.Type != JobType:
		return fmt.Errorf("%w: type %q, want %q", ErrJob, j.Type, JobType)
	case j.Created.IsZero():
		return fmt.Errorf("%w: created is missing", ErrJob)
	case j.Bundle.Size <= 0:
		return fmt.Errorf("%w: bundle.size %d: want the bundle's size in bytes", ErrJob, j.Bundle.Size)
	case len(j.Bundle.SHA256) != 64 || !isLowerHex(j.Bundle.SHA256):
		return fmt.Errorf("%w: bundle.sha256: want 64 lower-case hex digits", ErrJob)
	case j.HealthDeadline != 0 && (j.HealthDeadline < minHealthWindow.Seconds() || j.HealthDeadline > maxHealthWindow.Seconds()):
		return fmt.Errorf("%w: health_deadline %g s: want 0 (the agent's) or %g to %g", ErrJob, j.HealthDeadline,
			minHealthWindow.Seconds(), maxHealthWindow.Seconds())
	}
	if j.Bundle.URL == "" {
		if b := j.Bundle.BlockSize; b != 0 && (b < MinBlockSize || b > MaxBlockSize) {
			return fmt.Errorf("%w: bundle.block_size %d: want %d to %d", ErrJob, b, MinBlockSize, MaxBlockSize)
		}
		return nil
	}
	if j.Bundle.BlockSize != 0 {
		return fmt.Errorf("%w: bundle.block_size is for streamed bundles, not URLs", ErrJob)
	}
	if len(j.Bundle.URL) > maxURLLen {
		return fmt.Errorf("%w: bundle.url longer than %d", ErrJob, maxURLLen)
	}
	u, err := url.Parse(j.Bundle.URL)
	if err != nil {
		return fmt.Errorf("%w: bundle.url: %v", ErrJob, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("%w: bundle.url %q: want https://host/path (no credentials, no fragment)", ErrJob, redactURL(u))
	}
	return nil
}

// HealthDeadlineOr returns the job's health deadline, or def.
func (j Job) HealthDeadlineOr(def time.Duration) time.Duration {
	if j.HealthDeadline > 0 {
		return time.Duration(j.HealthDeadline * float64(time.Second))
	}
	return def
}

func redactURL(u *url.URL) string {
	c := *u
	c.User, c.RawQuery, c.Fragment = nil, "", ""
	return c.String()
}

// JobState is where a job is.
type JobState string

// States of a job, in order; the last three end it.
const (
	JobQueued      JobState = "queued"
	JobDownloading JobState = "downloading"
	JobVerifying   JobState = "verifying"
	JobInstalling  JobState = "installing"
	JobHealthCheck JobState = "health-check"
	JobSucceeded   JobState = "succeeded"
	JobFailed      JobState = "failed"
	JobRolledBack  JobState = "rolled-back"
)

// Terminal reports whether a job in state s is over.
func (s JobState) Terminal() bool {
	return s == JobSucceeded || s == JobFailed || s == JobRolledBack
}

// JobStatus is what the agent publishes, retained, on .../jobs/{id}/status.
type JobStatus struct {
	JobID string   `json:"job_id"`
	State JobState `json:"state"`
	// Percent of the download (downloading), else 100 once downloaded.
	Percent int   `json:"percent"`
	Bytes   int64 `json:"bytes"`
	Total   int64 `json:"total"`
	// Reason says why a job failed or rolled back, and what is going on.
	Reason string `json:"reason,omitempty"`
	// FromVersion is the version running when the job arrived, Version
	// the bundle's (once verified).
	FromVersion string `json:"from_version,omitempty"`
	Version     string `json:"version,omitempty"`
	// Running is the version of the agent that published this status.
	Running string `json:"running"`
	Agent   string `json:"agent"`
	Fleet   string `json:"fleet"`
	Time    string `json:"time"`
}

// BlockRequest is what the agent publishes on .../jobs/{id}/stream/get.
type BlockRequest struct {
	Offset int64 `json:"offset"`
	Length int   `json:"length"`
}

// A block on .../jobs/{id}/stream/data is binary: a 4-byte big-endian
// header length, a JSON BlockHeader, then the block's bytes. The header's
// SHA-256 covers the bytes, so a block damaged on the way is refused (and
// asked for again) before it is written; the bundle's own SHA-256 and
// signature are checked once it is complete.

// BlockHeader describes one block, or why there is none (Error).
type BlockHeader struct {
	Offset int64  `json:"offset"`
	Length int    `json:"length"`
	SHA256 string `json:"sha256"`
	Total  int64  `json:"total"`
	Error  string `json:"error,omitempty"`
}

// ErrBlock wraps every reason a block is refused.
var ErrBlock = errors.New("bad block")

const maxBlockHeader = 1 << 10

// MaxBlockMessage bounds a block message: anything longer is not a block.
const MaxBlockMessage = 4 + maxBlockHeader + MaxBlockSize

// EncodeBlock makes the message of one block (data may be empty with an
// Error in h).
func EncodeBlock(h BlockHeader, data []byte) []byte {
	if h.Error == "" {
		sum := sha256.Sum256(data)
		h.SHA256 = hex.EncodeToString(sum[:])
		h.Length = len(data)
	}
	hb, _ := json.Marshal(h)
	out := make([]byte, 4, 4+len(hb)+len(data))
	binary.BigEndian.PutUint32(out, uint32(len(hb)))
	out = append(out, hb...)
	return append(out, data...)
}

// DecodeBlock parses a block message and checks its length and SHA-256.
// The returned data aliases msg.
func DecodeBlock(msg []byte) (BlockHeader, []byte, error) {
	var h BlockHeader
	if len(msg) < 4 {
		return h, nil, fmt.Errorf("%w: %d bytes, shorter than its header", ErrBlock, len(msg))
	}
	n := binary.BigEndian.Uint32(msg)
	if n == 0 || n > maxBlockHeader || int(n) > len(msg)-4 {
		return h, nil, fmt.Errorf("%w: header length %d in a %d-byte message", ErrBlock, n, len(msg))
	}
	dec := json.NewDecoder(bytes.NewReader(msg[4 : 4+n]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&h); err != nil {
		return BlockHeader{}, nil, fmt.Errorf("%w: header: %v", ErrBlock, err)
	}
	data := msg[4+n:]
	if h.Error != "" {
		return h, nil, nil
	}
	if h.Offset < 0 || h.Length != len(data) {
		return h, nil, fmt.Errorf("%w: at offset %d: %d bytes, the header says %d (truncated)", ErrBlock, h.Offset, len(data), h.Length)
	}
	sum := sha256.Sum256(data)
	if !strings.EqualFold(hex.EncodeToString(sum[:]), h.SHA256) {
		return h, nil, fmt.Errorf("%w: at offset %d: SHA-256 mismatch (corrupt)", ErrBlock, h.Offset)
	}
	return h, data, nil
}
