package agent

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/streamqc/streamqc/agent/fleet"
	"github.com/streamqc/streamqc/agent/mqtt"
	"github.com/streamqc/streamqc/agent/supervisor"
	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/internal/atomicfile"
)

// Over-the-air update jobs (issue 6). A job arrives, retained, on
// .../jobs/{id}; the updater records it (so a duplicate or a replay is
// recognised), downloads the bundle into <state>/firmware/downloads
// (resumable), verifies it, installs it into the inactive A/B slot and asks
// for a restart, which the launcher turns into the new version on trial.
// That version runs the health check and commits, or rolls back. Every step
// is written to the job's record before it is published, so whichever
// version runs next can finish the report.

const (
	jobsDir      = "jobs"
	downloadsDir = "downloads"
	// keptJobs bounds the job records kept for duplicate detection.
	keptJobs = 200
	// healthyFor is how long the health check must hold before a commit.
	healthyFor = 3 * time.Second
	// settleAfterConnect lets a retained desired config arrive and apply
	// before "config applied" is believed.
	settleAfterConnect = 2 * time.Second
	// maxQueued bounds the jobs waiting behind the one that runs.
	maxQueued = 16
	// maxSeen bounds the message hashes a record remembers.
	maxSeen = 8
	// maxRetryWait caps the wait between two tries of an https download.
	maxRetryWait = time.Minute
)

// errStalled ends a download that made no progress for stall_timeout.
var errStalled = errors.New("no progress")

// jobRecord is one job as the agent remembers it: <state>/firmware/jobs/{id}.json.
type jobRecord struct {
	Job firmware.Job `json:"job"`
	// Seen are the SHA-256 of the messages received on the job's topic:
	// the retained one arriving again is recognised by it.
	Seen     []string           `json:"seen"`
	Status   firmware.JobStatus `json:"status"`
	Received time.Time          `json:"received"`
	// Installed is when the bundle was switched in (installing onward).
	Installed time.Time `json:"installed,omitzero"`
	// Published is false while the latest status has not reached the broker.
	Published bool `json:"published"`

	saveMu sync.Mutex // orders the writes of the record
	pubMu  sync.Mutex // orders the publications of its status
}

type jobMsg struct {
	id       string
	payload  []byte // nil when larger than firmware.MaxJobSize
	size     int
	sum      string // SHA-256 of the payload
	retained bool
}

type updater struct {
	a       *Agent
	log     *slog.Logger
	slots   *firmware.Slots
	keys    *firmware.Keyring
	keysErr error
	dir     string // records
	dlDir   string // part files
	client  *http.Client

	incoming chan jobMsg
	doneCh   chan string   // a worker finished the job with this id
	closed   chan struct{} // run returned
	workers  sync.WaitGroup

	mu      sync.Mutex
	records map[string]*jobRecord
	queue   []string // ids waiting, oldest first
	active  string   // the job a worker runs
	cancel  context.CancelFunc
	blocks  chan []byte // blocks of the active job
	trial   *trial

	connectedAt time.Time // the health check's: since when connected
}

// trial is this process on trial after an update.
type trial struct {
	slot, version string
	deadline      time.Time
	job           string // the job that installed it ("" if none is known)
}

func newUpdater(a *Agent) *updater {
	base := filepath.Join(a.cfg.StateDir, "firmware")
	u := &updater{
		a: a, log: a.log.With("part", "firmware"),
		slots:    &firmware.Slots{Dir: base},
		dir:      filepath.Join(base, jobsDir),
		dlDir:    filepath.Join(base, downloadsDir),
		incoming: make(chan jobMsg, 16),
		doneCh:   make(chan string, 1),
		closed:   make(chan struct{}),
		records:  map[string]*jobRecord{},
	}
	fw := a.cfg.Firmware
	if len(fw.TrustedKeys) == 0 {
		u.keysErr = errors.New("firmware updates are off on this agent: no firmware.trusted_keys in its file")
	} else if kr, err := firmware.LoadTrusted(fw.TrustedKeys); err != nil {
		u.keysErr = fmt.Errorf("firmware updates are off on this agent: trusted keys: %w", err)
	} else {
		u.keys = kr
	}
	var roots *x509.CertPool
	if fw.CAFile != "" {
		var err error
		if roots, err = mqtt.LoadCA(fw.CAFile); err != nil {
			u.keysErr = fmt.Errorf("firmware updates are off on this agent: firmware.ca_file: %w", err)
		}
	}
	var check func(net.IP) error
	if !a.cfg.AllowLocalHosts {
		check = func(ip net.IP) error {
			if fleet.LocalIP(ip) || ownAddress(ip) {
				return fmt.Errorf("address %s is this machine or its link: refused unless allow_local_hosts is set", ip)
			}
			return nil
		}
	}
	u.client = firmware.NewHTTPClient(roots, check)
	if u.keysErr != nil {
		u.log.Info("over-the-air updates disabled", "why", u.keysErr)
	}
	return u
}

// subscribe adds the job subscriptions (before the client starts).
func (u *updater) subscribe(c *mqtt.Client) {
	c.Subscribe(u.a.topics.Jobs, 1, func(m mqtt.Message) {
		id := u.a.topics.JobID(m.Topic)
		if !firmware.ValidJobID(id) {
			// Not a job's topic: no record, no status (its name would be a
			// file name), only this line.
			u.log.Warn("message on a topic that is no job's ignored", "topic", m.Topic, "bytes", len(m.Payload))
			return
		}
		sum := sha256.Sum256(m.Payload)
		msg := jobMsg{id: id, payload: m.Payload, size: len(m.Payload), sum: hex.EncodeToString(sum[:]), retained: m.Retained}
		if len(m.Payload) > firmware.MaxJobSize {
			msg.payload = nil // refused by its size; not kept
		}
		// Waiting here holds back only job messages (each subscription
		// has its own dispatch); a job is never dropped.
		select {
		case u.incoming <- msg:
		case <-u.closed:
		}
	})
	c.Subscribe(u.a.topics.Job("+").StreamData, 1, func(m mqtt.Message) {
		if len(m.Payload) > firmware.MaxBlockMessage {
			return // not a block; the source asks again
		}
		id := u.a.topics.JobID(strings.TrimSuffix(m.Topic, "/stream/data"))
		u.mu.Lock()
		ch := u.blocks
		active := u.active
		u.mu.Unlock()
		if id != active || ch == nil {
			return
		}
		select {
		case ch <- m.Payload:
		default: // the source asks again after its timeout
		}
	})
}

// onConnect publishes what did not reach the broker yet.
func (u *updater) onConnect(ctx context.Context) {
	u.mu.Lock()
	var todo []*jobRecord
	for _, r := range u.records {
		if !r.Published {
			todo = append(todo, r)
		}
	}
	u.mu.Unlock()
	for _, r := range todo {
		u.publish(ctx, r)
	}
}

// start loads the records and settles the jobs a restart interrupted; it
// runs before the streams start, so a trial is known to the health check.
func (u *updater) start() {
	if err := os.MkdirAll(u.dir, 0o750); err != nil {
		u.log.Error("job records unavailable", "err", err)
	}
	ents, _ := os.ReadDir(u.dir)
	for _, e := range ents {
		name := e.Name()
		if !strings.HasSuffix(name, ".json") || strings.HasPrefix(name, ".") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(u.dir, name))
		var r jobRecord
		if err == nil {
			err = json.Unmarshal(b, &r)
		}
		if err != nil || r.Job.JobID+".json" != name {
			u.log.Error("job record unreadable; ignored", "file", name, "err", err)
			continue
		}
		u.records[r.Job.JobID] = &r
	}
	st, err := u.slots.Status()
	if err != nil {
		u.log.Error("firmware slots unreadable", "err", err)
	}
	if slot := os.Getenv(firmware.EnvSlot); err == nil && st.Pending != "" && slot == st.Pending {
		u.trial = &trial{slot: slot, version: st.Versions[slot], deadline: st.TrialDeadline}
	}
	var waiting []*jobRecord
	for _, r := range u.records {
		switch r.Status.State {
		case firmware.JobQueued, firmware.JobDownloading, firmware.JobVerifying:
			waiting = append(waiting, r)
		case firmware.JobInstalling, firmware.JobHealthCheck:
			u.settle(r, st)
		}
	}
	slices.SortFunc(waiting, func(x, y *jobRecord) int { return x.Received.Compare(y.Received) })
	// Part files of jobs that will not resume (ended, forgotten, debris).
	keep := map[string]bool{}
	for _, r := range waiting {
		keep[r.Job.JobID+".part"] = true
	}
	parts, _ := os.ReadDir(u.dlDir)
	for _, e := range parts {
		if !keep[e.Name()] {
			os.Remove(filepath.Join(u.dlDir, e.Name()))
		}
	}
	for _, r := range waiting {
		if u.trial != nil {
			// A queued job waits for the trial's outcome: Install refuses
			// while an update is on trial anyway.
			u.log.Info("queued job waits for the update on trial", "job", r.Job.JobID)
		}
		u.queue = append(u.queue, r.Job.JobID)
	}
}

// settle decides the outcome of a job that was installing when the agent
// restarted, from what the slots say now.
func (u *updater) settle(r *jobRecord, st firmware.State) {
	v := r.Status.Version
	lr := st.LastRollback
	switch {
	case u.trial != nil && u.trial.version == v:
		u.trial.job = r.Job.JobID
		r.Status.State, r.Status.Percent = firmware.JobHealthCheck, 100
		r.Status.Reason = fmt.Sprintf("version %s running on trial; health check until %s", v, u.trial.deadline.UTC().Format(time.RFC3339))
	case lr != nil && lr.FromVersion == v && !lr.At.Before(r.Installed.Add(-time.Second)):
		r.Status.State, r.Status.Reason = firmware.JobRolledBack, lr.Reason
	case st.Pending == "" && st.Current != "" && st.Versions[st.Current] == v && semver(u.a.version) == v:
		r.Status.State, r.Status.Reason = firmware.JobSucceeded, ""
	default:
		r.Status.State = firmware.JobFailed
		r.Status.Reason = fmt.Sprintf("interrupted: version %s never ran its health check (running %s)", v, u.a.version)
	}
	os.Remove(filepath.Join(u.dlDir, r.Job.JobID+".part"))
	u.save(r)
}

// run is the job loop: it takes job messages, queues them, and runs one
// worker at a time.
func (u *updater) run(ctx context.Context) {
	defer close(u.closed)
	if u.trial != nil {
		u.workers.Add(1)
		go func() { defer u.workers.Done(); u.watchTrial(ctx) }()
	}
	for {
		u.next(ctx)
		select {
		case <-ctx.Done():
			u.mu.Lock()
			if u.cancel != nil {
				u.cancel()
			}
			u.mu.Unlock()
			// A worker in the middle of an install finishes it (a power cut
			// there is safe too, but a clean stop should not be one).
			u.workers.Wait()
			return
		case m := <-u.incoming:
			u.handle(ctx, m)
		case id := <-u.doneCh:
			u.mu.Lock()
			if u.active == id {
				u.active, u.cancel, u.blocks = "", nil, nil
			}
			u.mu.Unlock()
		}
	}
}

// next starts a worker for the oldest queued job, if none runs.
func (u *updater) next(ctx context.Context) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.active != "" || len(u.queue) == 0 || u.trial != nil || u.a.stopping.Load() {
		return
	}
	id := u.queue[0]
	u.queue = u.queue[1:]
	r := u.records[id]
	if r == nil || r.Status.State.Terminal() {
		return
	}
	wctx, cancel := context.WithCancel(ctx)
	u.active, u.cancel, u.blocks = id, cancel, make(chan []byte, 2*firmware.DefaultWindow)
	blocks := u.blocks
	u.workers.Add(1)
	go func() {
		defer u.workers.Done()
		u.work(wctx, r, blocks)
		cancel()
		select {
		case u.doneCh <- id:
		case <-ctx.Done():
		}
	}()
}

// handle takes one job message off the broker.
func (u *updater) handle(ctx context.Context, m jobMsg) {
	u.mu.Lock()
	r := u.records[m.id]
	u.mu.Unlock()
	if m.payload != nil && len(bytes.TrimSpace(m.payload)) == 0 {
		// Withdrawn (or cleared after it ended): a job not installed yet stops.
		if r != nil {
			u.withdraw(ctx, r)
		}
		return
	}
	if r != nil {
		u.mu.Lock()
		seen := slices.Contains(r.Seen, m.sum)
		u.mu.Unlock()
		if seen && m.retained {
			return // the retained job again, after a reconnect or restart
		}
		// The same id published again: a replay, or a mistake. The job ran
		// (or runs) once; its status says so, with what was refused (one
		// note, the latest).
		u.mu.Lock()
		state := r.Status.State
		if !seen {
			r.Seen = append(r.Seen, m.sum)
			if len(r.Seen) > maxSeen {
				r.Seen = r.Seen[len(r.Seen)-maxSeen:]
			}
		}
		reason, _, _ := strings.Cut(r.Status.Reason, " [a duplicate of this job")
		if strings.HasPrefix(r.Status.Reason, "[a duplicate of this job") {
			reason = ""
		}
		r.Status.Reason = strings.TrimSpace(reason + fmt.Sprintf(" [a duplicate of this job was refused at %s: job ids run once]",
			time.Now().UTC().Format(time.RFC3339)))
		u.mu.Unlock()
		u.log.Warn("job refused: this job id was already received", "job", m.id, "state", state, "retained", m.retained)
		u.save(r)
		u.publish(ctx, r)
		return
	}
	r = &jobRecord{Seen: []string{m.sum}, Received: time.Now().UTC()}
	r.Status = firmware.JobStatus{JobID: m.id, FromVersion: u.a.version}
	j, err := u.check(m)
	r.Job = j
	r.Job.JobID = m.id
	if err == nil {
		u.mu.Lock()
		if len(u.queue) >= maxQueued {
			err = fmt.Errorf("%d jobs are queued on this agent already; publish it again once they ran", len(u.queue))
		}
		u.mu.Unlock()
	}
	if err != nil {
		r.Status.State, r.Status.Reason = firmware.JobFailed, err.Error()
		u.log.Warn("job refused", "job", m.id, "err", err)
	} else {
		r.Status.State, r.Status.Total = firmware.JobQueued, j.Bundle.Size
		u.log.Info("job queued", "job", m.id, "size", j.Bundle.Size, "streamed", j.Bundle.Streamed())
	}
	// On disk before anyone (onConnect too) can publish it.
	u.save(r)
	u.mu.Lock()
	u.records[m.id] = r
	if err == nil {
		u.queue = append(u.queue, m.id)
	}
	u.mu.Unlock()
	u.publish(ctx, r)
	u.prune()
}

// check refuses a job before anything is fetched.
func (u *updater) check(m jobMsg) (firmware.Job, error) {
	if m.payload == nil {
		return firmware.Job{}, fmt.Errorf("%w: a job message of %d bytes; at most %d", firmware.ErrJob, m.size, firmware.MaxJobSize)
	}
	if err := u.a.schemas.Validate("job", m.payload); err != nil {
		return firmware.Job{}, fmt.Errorf("%w: %v", firmware.ErrJob, err)
	}
	j, err := firmware.ParseJob(m.payload, m.id)
	if err != nil {
		return j, err
	}
	if mark := u.watermark(); !mark.IsZero() && j.Created.Before(mark) {
		return j, fmt.Errorf("created %s, before %s: older than the jobs this agent remembers, so possibly one it ran (a replay); publish it again with a new created time",
			j.Created.UTC().Format(time.RFC3339), mark.Format(time.RFC3339))
	}
	if u.keysErr != nil {
		return j, u.keysErr
	}
	if runtime.GOOS == "windows" {
		return j, errors.New("over-the-air updates need Linux (A/B slots switch a symlink); update Windows boxes with their installer")
	}
	if limit := u.a.cfg.Firmware.MaxBundleBytes; j.Bundle.Size > limit {
		return j, fmt.Errorf("%w: bundle of %d bytes, this agent takes at most %d (firmware.max_bundle_bytes)", firmware.ErrTooLarge, j.Bundle.Size, limit)
	}
	if j.AllowDowngrade && u.a.cfg.Firmware.Downgrades == "never" {
		return j, errors.New("the job allows a downgrade, and this agent's file says firmware.downgrades: never")
	}
	return j, nil
}

// withdraw ends a job whose retained message was deleted, unless it is
// installed already (or over): the check and the end are one step, so a
// worker cannot move it to installing in between.
func (u *updater) withdraw(ctx context.Context, r *jobRecord) {
	u.mu.Lock()
	switch r.Status.State {
	case firmware.JobInstalling, firmware.JobHealthCheck:
		u.mu.Unlock()
		u.log.Info("job deleted on the broker after it was installed; it goes on", "job", r.Job.JobID)
		return
	}
	if r.Status.State.Terminal() {
		u.mu.Unlock()
		return // cleared after it ended (firmware push does so)
	}
	u.queue = slices.DeleteFunc(u.queue, func(id string) bool { return id == r.Job.JobID })
	if u.active == r.Job.JobID && u.cancel != nil {
		u.cancel()
	}
	r.Status.State, r.Status.Reason = firmware.JobFailed, "withdrawn: the job was deleted on the broker before it was installed"
	u.mu.Unlock()
	u.ended(ctx, r)
}

// work runs one job: download, verify, install, restart.
func (u *updater) work(ctx context.Context, r *jobRecord, blocks chan []byte) {
	j := r.Job
	part := filepath.Join(u.dlDir, j.JobID+".part")
	if err := os.MkdirAll(u.dlDir, 0o750); err != nil {
		u.finish(ctx, r, firmware.JobFailed, fmt.Sprintf("download directory: %v", err))
		return
	}
	u.mu.Lock()
	r.Status.FromVersion = u.a.version // the version that runs the job
	u.mu.Unlock()
	if !u.progress(ctx, r, firmware.JobDownloading, -1, "") {
		return
	}
	// A download that makes no progress for stall_timeout fails, so that
	// a streamer gone for good does not hold the jobs behind it forever.
	stall := time.Duration(u.a.cfg.Firmware.StallTimeout)
	dctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	timer := time.AfterFunc(stall, func() { stop(errStalled) })
	defer timer.Stop()
	var lastPub time.Time
	progress := func(have int64) {
		timer.Reset(stall)
		if time.Since(lastPub) >= time.Second || have == j.Bundle.Size {
			lastPub = time.Now()
			u.progress(ctx, r, firmware.JobDownloading, have, "")
		}
	}
	var err error
	fromZero := false // after a power cut the part file may end in bytes never synced
	for attempt := 1; ; attempt++ {
		err = firmware.Download(dctx, u.source(j, blocks), j.Bundle, part,
			firmware.DownloadOptions{Limit: u.a.cfg.Firmware.MaxBundleBytes, Progress: progress})
		if errors.Is(err, firmware.ErrCorrupt) && !fromZero && dctx.Err() == nil {
			fromZero = true // Download removed the part file
			u.log.Warn("download corrupt; starting it over once", "job", j.JobID, "err", err)
			u.progress(ctx, r, firmware.JobDownloading, 0, fmt.Sprintf("%v; starting over", err))
			continue
		}
		var se *firmware.HTTPStatusError
		if err == nil || dctx.Err() != nil || errors.Is(err, firmware.ErrCorrupt) || errors.Is(err, firmware.ErrTooLarge) ||
			(errors.As(err, &se) && se.Permanent()) {
			break
		}
		// Offline, refused, cut: the part file stays, the next try resumes.
		wait := min(time.Duration(1<<min(attempt, 6))*time.Second, maxRetryWait)
		u.log.Warn("download failed; trying again", "job", j.JobID, "attempt", attempt, "in", wait, "err", err)
		u.progress(ctx, r, firmware.JobDownloading, -1, fmt.Sprintf("attempt %d failed: %v; again in %s", attempt, err, wait))
		select {
		case <-dctx.Done():
		case <-time.After(wait):
		}
	}
	if ctx.Err() != nil {
		if u.isOver(r) {
			os.Remove(part) // withdrawn: Download may have made it again
		}
		return // stopping (resumed at the next start) or withdrawn (reported)
	}
	if errors.Is(context.Cause(dctx), errStalled) {
		err = fmt.Errorf("no progress for %s (firmware.stall_timeout): %v", stall, err)
	}
	if err != nil {
		os.Remove(part)
		u.finish(ctx, r, firmware.JobFailed, fmt.Sprintf("download: %v", err))
		return
	}
	if !u.progress(ctx, r, firmware.JobVerifying, j.Bundle.Size, "") {
		return
	}
	target, m, err := u.verify(part, j)
	if err != nil {
		os.Remove(part)
		u.finish(ctx, r, firmware.JobFailed, err.Error())
		return
	}
	u.mu.Lock()
	r.Status.Version = m.Version
	r.Installed = time.Now().UTC()
	u.mu.Unlock()
	deadline := j.HealthDeadlineOr(time.Duration(u.a.cfg.Firmware.HealthDeadline))
	if ctx.Err() != nil || !u.progress(ctx, r, firmware.JobInstalling, j.Bundle.Size, fmt.Sprintf("installing version %s; then restarting", m.Version)) {
		return // stopping, or withdrawn while verifying
	}
	f, err := os.Open(part)
	if err == nil {
		_, err = u.slots.Install(f, u.keys, target, u.a.cfg.Firmware.MaxBundleBytes, deadline)
		f.Close()
	}
	os.Remove(part)
	if err != nil {
		u.finish(ctx, r, firmware.JobFailed, fmt.Sprintf("install: %v", err))
		return
	}
	u.log.Info("update installed; restarting into it", "job", j.JobID, "version", m.Version, "health_deadline", deadline)
	u.a.requestRestart(fmt.Sprintf("update to %s (job %s)", m.Version, j.JobID))
}

// source is where the bundle's bytes come from.
func (u *updater) source(j firmware.Job, blocks <-chan []byte) firmware.Source {
	if !j.Bundle.Streamed() {
		return &firmware.HTTPSource{URL: j.Bundle.URL, Size: j.Bundle.Size, Client: u.client}
	}
	t := u.a.topics.Job(j.JobID)
	return &firmware.BlockSource{
		Size: j.Bundle.Size, BlockSize: j.Bundle.Block(), Blocks: blocks, Logger: u.log,
		Request: func(ctx context.Context, req firmware.BlockRequest) error {
			b, _ := json.Marshal(req)
			return u.a.client.Publish(ctx, mqtt.Message{Topic: t.StreamGet, Payload: b, QoS: 1})
		},
	}
}

// verify checks the downloaded bundle: signature, target, version, files,
// the binary in it, the config version it needs.
func (u *updater) verify(part string, j firmware.Job) (firmware.Target, *firmware.Manifest, error) {
	target := firmware.Target{
		OS: runtime.GOOS, Arch: runtime.GOARCH, Flavor: u.a.cfg.Firmware.Flavor,
		CurrentVersion: semver(u.a.version), AllowDowngrade: j.AllowDowngrade && u.a.cfg.Firmware.Downgrades == "job",
	}
	f, err := os.Open(part)
	if err != nil {
		return target, nil, fmt.Errorf("verify: %w", err)
	}
	defer f.Close()
	m, err := firmware.Verify(f, u.keys, target, u.a.cfg.Firmware.MaxBundleBytes)
	if err != nil {
		return target, nil, fmt.Errorf("refused: %w", err)
	}
	ok := false
	for _, fl := range m.Files {
		if fl.Path == firmware.Binary {
			p, _ := fl.Perm()
			ok = p&0o100 != 0
		}
	}
	if !ok {
		return target, m, fmt.Errorf("refused: the bundle has no executable %q", firmware.Binary)
	}
	u.a.mu.Lock()
	applied := u.a.agentDoc.Version
	u.a.mu.Unlock()
	if m.MinConfigVersion > applied {
		return target, m, fmt.Errorf("refused: version %s needs config version %d or later; version %d is applied", m.Version, m.MinConfigVersion, applied)
	}
	return target, m, nil
}

// semver is the agent's version as a semantic version ("" when it is not one,
// like a development build: then the slots' own versions are compared).
func semver(v string) string {
	v = strings.TrimPrefix(v, "v")
	if _, err := firmware.ParseVersion(v); err != nil {
		return ""
	}
	return v
}

// progress records and publishes a non-terminal state; have < 0 keeps the
// byte count. A job that ended meanwhile (withdrawn) is left as it is:
// false.
func (u *updater) progress(ctx context.Context, r *jobRecord, s firmware.JobState, have int64, reason string) bool {
	u.mu.Lock()
	if r.Status.State.Terminal() {
		u.mu.Unlock()
		return false
	}
	r.Status.State, r.Status.Reason = s, reason
	if have >= 0 {
		r.Status.Bytes = have
	}
	r.Status.Total = r.Job.Bundle.Size
	if r.Status.Total > 0 {
		r.Status.Percent = int(r.Status.Bytes * 100 / r.Status.Total)
	}
	u.mu.Unlock()
	u.save(r)
	u.publish(ctx, r)
	return true
}

// finish ends a job, unless it ended already (an end is final).
func (u *updater) finish(ctx context.Context, r *jobRecord, s firmware.JobState, reason string) {
	u.mu.Lock()
	if r.Status.State.Terminal() {
		u.mu.Unlock()
		return
	}
	r.Status.State, r.Status.Reason = s, reason
	u.mu.Unlock()
	u.ended(ctx, r)
}

// isOver reports whether the job ended.
func (u *updater) isOver(r *jobRecord) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	return r.Status.State.Terminal()
}

// ended logs, cleans up, records and publishes a job that just ended.
func (u *updater) ended(ctx context.Context, r *jobRecord) {
	u.mu.Lock()
	s, reason := r.Status.State, r.Status.Reason
	u.mu.Unlock()
	if s == firmware.JobFailed {
		u.log.Warn("job failed", "job", r.Job.JobID, "reason", reason)
	} else {
		u.log.Info("job ended", "job", r.Job.JobID, "state", s, "reason", reason)
	}
	os.Remove(filepath.Join(u.dlDir, r.Job.JobID+".part"))
	u.save(r)
	if ctx.Err() != nil {
		ctx = context.Background() // a withdrawn job's status still goes out
	}
	u.publish(ctx, r)
}

// save writes the record durably before its status is published (which
// is then pending again).
func (u *updater) save(r *jobRecord) {
	u.mu.Lock()
	r.Published = false
	u.mu.Unlock()
	u.write(r)
}

func (u *updater) write(r *jobRecord) {
	r.saveMu.Lock()
	defer r.saveMu.Unlock()
	u.mu.Lock()
	b, err := json.Marshal(r)
	u.mu.Unlock()
	if err == nil {
		err = atomicfile.WriteBytes(filepath.Join(u.dir, r.Job.JobID+".json"), 0o640, b)
	}
	if err != nil {
		u.log.Error("job record not saved", "job", r.Job.JobID, "err", err)
	}
}

// publish sends the record's status (retained); without a broker it waits
// for the next connect.
func (u *updater) publish(ctx context.Context, r *jobRecord) {
	r.pubMu.Lock() // the latest copy goes out last
	defer r.pubMu.Unlock()
	u.mu.Lock()
	st := r.Status
	u.mu.Unlock()
	st.Running, st.Agent, st.Fleet = u.a.version, u.a.cfg.ID, u.a.cfg.Fleet
	st.Time = time.Now().UTC().Format(time.RFC3339Nano)
	b, _ := json.Marshal(st)
	if !u.a.client.Connected() {
		return
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := u.a.client.Publish(pctx, mqtt.Message{Topic: u.a.topics.Job(st.JobID).Status, Payload: b, QoS: 1, Retained: true}); err != nil {
		u.log.Warn("job status not published", "job", st.JobID, "err", err)
		return
	}
	u.mu.Lock()
	current := r.Status.State == st.State && r.Status.Reason == st.Reason && r.Status.Bytes == st.Bytes
	if current {
		r.Published = true
	}
	u.mu.Unlock()
	if current && st.State.Terminal() {
		// Remembered across restarts, so the next version does not publish
		// the end again as its own.
		u.write(r)
	}
}

// ownAddress reports whether ip is one of this machine's interface addresses.
func ownAddress(ip net.IP) bool {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
			return true
		}
	}
	return false
}

// watermarkFile keeps, across restarts, the receive time of the newest job
// record pruned: a job created before it may be one the agent forgot.
const watermarkFile = ".watermark"

func (u *updater) watermark() time.Time {
	b, err := os.ReadFile(filepath.Join(u.dir, watermarkFile))
	if err != nil {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339Nano, strings.TrimSpace(string(b)))
	return t
}

// prune forgets the oldest ended jobs beyond keptJobs, raising the
// watermark below which jobs are refused as possible replays.
func (u *updater) prune() {
	u.mu.Lock()
	var ended []*jobRecord
	for _, r := range u.records {
		if r.Status.State.Terminal() {
			ended = append(ended, r)
		}
	}
	if len(ended) <= keptJobs {
		u.mu.Unlock()
		return
	}
	slices.SortFunc(ended, func(x, y *jobRecord) int { return x.Received.Compare(y.Received) })
	drop := ended[:len(ended)-keptJobs]
	u.mu.Unlock()
	mark := drop[len(drop)-1].Received.UTC().Format(time.RFC3339Nano)
	if err := atomicfile.WriteBytes(filepath.Join(u.dir, watermarkFile), 0o640, []byte(mark+"\n")); err != nil {
		u.log.Error("job watermark not saved; keeping the old records", "err", err)
		return
	}
	u.mu.Lock()
	for _, r := range drop {
		delete(u.records, r.Job.JobID)
	}
	u.mu.Unlock()
	for _, r := range drop {
		os.Remove(filepath.Join(u.dir, r.Job.JobID+".json"))
	}
}

// watchTrial is the health check of a new version on trial: connected to
// the broker, config applied, every configured stream decoding, held for
// healthyFor; then Commit. Past the deadline it rolls back and restarts.
func (u *updater) watchTrial(ctx context.Context) {
	t := u.trial
	u.log.Info("new version on trial: health check", "version", t.version, "deadline", t.deadline.UTC().Format(time.RFC3339))
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	var since time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		why := u.unhealthy()
		now := time.Now()
		if why == "" {
			if since.IsZero() {
				since = now
			}
			if now.Sub(since) >= healthyFor {
				u.commit(ctx)
				return
			}
			continue
		}
		since = time.Time{}
		if now.After(t.deadline) {
			u.rollback(ctx, "health check failed by the deadline: "+why)
			return
		}
	}
}

// unhealthy says what the health check misses ("" when healthy).
func (u *updater) unhealthy() string {
	a := u.a
	var miss []string
	connected := a.client.Connected()
	if !connected {
		miss = append(miss, "not connected to the broker")
		u.connectedAt = time.Time{}
	} else if u.connectedAt.IsZero() {
		u.connectedAt = time.Now()
	}
	a.mu.Lock()
	var problems []string
	for _, scope := range []string{"agent", "fleet"} {
		if p := a.cfgProblem[scope]; p != "" {
			problems = append(problems, scope+" config "+p)
		}
	}
	a.mu.Unlock()
	switch {
	case len(problems) > 0:
		miss = append(miss, "config not applied: "+strings.Join(problems, "; "))
	case connected && (time.Since(u.connectedAt) < settleAfterConnect || len(a.desired) > 0):
		miss = append(miss, "config not settled yet")
	}
	for _, s := range a.sup.Status() {
		decoding := s.Frames+s.AudioBlocks > 0 && (s.State == supervisor.Running || s.State == supervisor.Ended)
		if !decoding {
			miss = append(miss, fmt.Sprintf("stream %s not decoding (%s)", s.ID, s.State))
		}
	}
	return strings.Join(miss, "; ")
}

func (u *updater) trialRecord() *jobRecord {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.trial == nil || u.trial.job == "" {
		return nil
	}
	return u.records[u.trial.job]
}

func (u *updater) commit(ctx context.Context) {
	r := u.trialRecord()
	if err := u.slots.Commit(); err != nil {
		u.log.Error("commit of the new version failed", "err", err)
		return
	}
	u.mu.Lock()
	version := u.trial.version
	u.trial = nil
	u.mu.Unlock()
	u.log.Info("new version passed its health check: committed", "version", version)
	if r != nil {
		u.finish(ctx, r, firmware.JobSucceeded, "")
	}
	select {
	case u.doneCh <- "": // wakes the job loop for what queued meanwhile
	default:
	}
}

func (u *updater) rollback(ctx context.Context, reason string) {
	r := u.trialRecord()
	if err := u.slots.Rollback(reason); err != nil {
		u.log.Error("rollback failed", "err", err)
		return
	}
	u.log.Error("new version rolled back", "version", u.trial.version, "reason", reason)
	if r != nil {
		u.finish(ctx, r, firmware.JobRolledBack, reason)
	}
	u.a.requestRestart("rolled back: " + reason)
}
