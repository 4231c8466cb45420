package firmware

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/streamqc/streamqc/internal/atomicfile"
)

// A/B slots (issue 6, item 3), as a library: no MQTT and no service
// manager calls. The agent runs from <state>/firmware/current/, a symlink
// to one of two slot directories; an update is extracted into the other
// slot, put on trial, and either committed after a health check or rolled
// back.
//
// Layout of Slots.Dir:
//
//	a/, b/        the two slots, each one extracted bundle payload plus the
//	              bundle's signed manifest (SlotManifest, SlotSignature)
//	current       symlink to "a" or "b" (relative); absent before the first install
//	state.json    State, replaced atomically
//
// Every change is a rename: state.json through a temporary file that is
// fsynced before the rename and the directory fsynced after; the symlink
// by creating current.tmp and renaming it over current. See the README
// ("A/B slots") for what a power cut leaves at each step.

// Slot names.
const (
	SlotA = "a"
	SlotB = "b"
)

// Names inside Slots.Dir.
const (
	CurrentLink = "current"
	StateFile   = "state.json"
	currentTmp  = "current.tmp"
)

// Names of the bundle's manifest and signature, kept in each slot by
// Install so Verify can check the slot again before it runs. validPath
// refuses '@' in a payload path, so they can never collide with a payload
// file.
const (
	SlotManifest  = "@" + ManifestName
	SlotSignature = "@" + SignatureName
)

// Crash loop: the CrashLoopStarts-th start of a slot on trial within
// CrashLoopWindow rolls it back (issue 6: "more than 2 restarts in 60 s":
// the first start and 3 restarts).
const (
	CrashLoopStarts = 4
	CrashLoopWindow = 60 * time.Second
)

// DefaultHealthDeadline is used when Install is given no deadline.
const DefaultHealthDeadline = 5 * time.Minute

// Errors of the slot operations (besides the bundle refusals of Extract).
var (
	// ErrOnTrial: Install while an update is still on trial.
	ErrOnTrial = errors.New("an update is on trial; commit or roll it back first")
	// ErrNotOnTrial: Commit with no update on trial.
	ErrNotOnTrial = errors.New("no update is on trial")
	// ErrNoPrevious: Rollback with nothing to go back to.
	ErrNoPrevious = errors.New("no previous slot to roll back to")
	// ErrInconsistent: state.json and the current symlink disagree; Boot repairs it.
	ErrInconsistent = errors.New("slot state and current symlink disagree; run Boot first")
	// ErrModified: Verify found a slot that is not what its signed bundle
	// installed (or holds no signed manifest to check it against).
	ErrModified = errors.New("slot does not match its signed manifest")
)

// Slots manages the A/B slot directories under Dir (<state>/firmware).
// Not safe for concurrent use: one agent process owns Dir.
type Slots struct {
	Dir string
	// Now is the clock (nil: time.Now).
	Now func() time.Time
}

// State is the content of state.json.
type State struct {
	// Current is the slot the current symlink points to ("" before the
	// first install, or after rolling back a first install).
	Current string `json:"current"`
	// Previous is the slot to go back to ("" when there is none).
	Previous string `json:"previous"`
	// Pending is the slot on trial ("" when none); when set it equals Current.
	Pending       string      `json:"pending"`
	PendingSince  time.Time   `json:"pending_since"`
	TrialDeadline time.Time   `json:"trial_deadline"`
	Boots         []time.Time `json:"boots"` // starts while on trial
	// Versions is the version installed in each slot.
	Versions map[string]string `json:"versions"`
	// LastRollback records the latest rollback, for the status report.
	LastRollback *RollbackEvent `json:"last_rollback,omitempty"`
}

// RollbackEvent describes a rollback.
type RollbackEvent struct {
	At          time.Time `json:"at"`
	FromSlot    string    `json:"from_slot"`
	FromVersion string    `json:"from_version"`
	ToSlot      string    `json:"to_slot"`
	ToVersion   string    `json:"to_version"`
	Reason      string    `json:"reason"`
}

// Decision is what Boot found and did.
type Decision struct {
	// Trial: the running slot is on trial; run the health check and call
	// Commit before Deadline, or Rollback.
	Trial    bool
	Deadline time.Time
	// RolledBack: current now points to the previous slot (or nothing, if
	// the update was a first install). Reason says why.
	RolledBack bool
	// Restart: current changed during Boot, so this process is not the one
	// current points to: restart through the service manager.
	Restart bool
	// Repaired: state.json was missing, unreadable or inconsistent with
	// the symlink and was rebuilt; Reason says how.
	Repaired bool
	Reason   string
}

func (s *Slots) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Slots) path(name string) string { return filepath.Join(s.Dir, name) }

func other(slot string) string {
	if slot == SlotA {
		return SlotB
	}
	return SlotA
}

func validSlot(s string, empty bool) bool {
	return s == SlotA || s == SlotB || (empty && s == "")
}

// readLink returns the slot current points to, "" if there is no link.
func (s *Slots) readLink() (string, error) {
	t, err := os.Readlink(s.path(CurrentLink))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("firmware: slots: %w", err)
	}
	if !validSlot(t, false) {
		return "", fmt.Errorf("firmware: slots: %s points to %q, not a slot", CurrentLink, t)
	}
	return t, nil
}

// readState returns the state; ok is false when state.json is missing;
// a state.json that does not decode or validate is an error wrapping
// ErrInconsistent.
func (s *Slots) readState() (st State, ok bool, err error) {
	data, err := os.ReadFile(s.path(StateFile))
	if errors.Is(err, os.ErrNotExist) {
		return State{}, false, nil
	}
	if err != nil {
		return State{}, false, fmt.Errorf("firmware: slots: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil {
		return State{}, false, fmt.Errorf("firmware: slots: %w: %s: %v", ErrInconsistent, StateFile, err)
	}
	if dec.More() {
		return State{}, false, fmt.Errorf("firmware: slots: %w: %s: trailing data", ErrInconsistent, StateFile)
	}
	if !validSlot(st.Current, true) || !validSlot(st.Previous, true) || !validSlot(st.Pending, true) ||
		(st.Pending != "" && st.Pending != st.Current) || (st.Previous != "" && st.Previous == st.Current) {
		return State{}, false, fmt.Errorf("firmware: slots: %w: %s: invalid slots", ErrInconsistent, StateFile)
	}
	if st.Versions == nil {
		st.Versions = map[string]string{}
	}
	return st, true, nil
}

// load reads the state and checks it against the symlink, without
// changing anything.
func (s *Slots) load() (State, error) {
	link, err := s.readLink()
	if err != nil {
		return State{}, err
	}
	st, ok, err := s.readState()
	if err != nil {
		return State{}, err
	}
	if !ok {
		if link != "" {
			return State{}, fmt.Errorf("firmware: slots: %w: %s missing", ErrInconsistent, StateFile)
		}
		return State{Versions: map[string]string{}}, nil
	}
	if st.Current != link {
		return State{}, fmt.Errorf("firmware: slots: %w: state says %q, %s is %q", ErrInconsistent, st.Current, CurrentLink, link)
	}
	return st, nil
}

// writeState replaces state.json atomically: temporary file, fsync,
// rename, fsync of the directory.
func (s *Slots) writeState(st State) error {
	sort.Slice(st.Boots, func(i, j int) bool { return st.Boots[i].Before(st.Boots[j]) })
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("firmware: slots: %w", err)
	}
	data = append(data, '\n')
	if err := atomicfile.WriteBytes(s.path(StateFile), 0o644, data); err != nil {
		return fmt.Errorf("firmware: slots: write state: %w", err)
	}
	return nil
}

func (s *Slots) syncDir() error {
	d, err := os.Open(s.Dir)
	if err != nil {
		return fmt.Errorf("firmware: slots: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("firmware: slots: fsync %s: %w", s.Dir, err)
	}
	return nil
}

// switchLink points current at slot atomically (slot "" removes it).
func (s *Slots) switchLink(slot string) error {
	if slot == "" {
		if err := os.Remove(s.path(CurrentLink)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("firmware: slots: %w", err)
		}
		return s.syncDir()
	}
	tmp := s.path(currentTmp)
	if err := os.Remove(tmp); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("firmware: slots: %w", err)
	}
	if err := os.Symlink(slot, tmp); err != nil {
		return fmt.Errorf("firmware: slots: %w", err)
	}
	if err := os.Rename(tmp, s.path(CurrentLink)); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("firmware: slots: switch: %w", err)
	}
	return s.syncDir()
}

func randSuffix() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// Install extracts a bundle into the inactive slot, puts it on trial with
// a deadline of healthDeadline (0: DefaultHealthDeadline) and switches
// current to it. The caller then restarts the agent through the service
// manager; the new agent calls Boot, runs its health check, and Commit or
// Rollback.
//
// When want.CurrentVersion is empty, the version of the current slot is
// used, so a downgrade is refused unless want.AllowDowngrade.
//
// On any refusal (a bad bundle: the errors of Extract; an update already
// on trial: ErrOnTrial; an inconsistent state: ErrInconsistent) nothing on
// disk changes: the bundle is verified while extracted into a temporary
// directory, which is removed; the slots, state.json and current are
// touched only after it verified. (A Dir that did not exist is created
// and removed again.)
func (s *Slots) Install(r io.Reader, kr *Keyring, want Target, limit int64, healthDeadline time.Duration) (*Manifest, error) {
	if s.Dir == "" {
		return nil, errors.New("firmware: slots: no directory")
	}
	if healthDeadline <= 0 {
		healthDeadline = DefaultHealthDeadline
	}
	created := false
	if _, err := os.Lstat(s.Dir); errors.Is(err, os.ErrNotExist) {
		if err := os.MkdirAll(s.Dir, 0o755); err != nil {
			return nil, fmt.Errorf("firmware: slots: %w", err)
		}
		created = true
	}
	m, err := s.install(r, kr, want, limit, healthDeadline)
	if err != nil && created {
		os.Remove(s.Dir) // only if still empty
	}
	return m, err
}

func (s *Slots) install(r io.Reader, kr *Keyring, want Target, limit int64, healthDeadline time.Duration) (*Manifest, error) {
	st, err := s.load()
	if err != nil {
		return nil, err
	}
	if st.Pending != "" {
		return nil, fmt.Errorf("firmware: slots: %w (slot %s, version %s)", ErrOnTrial, st.Pending, st.Versions[st.Pending])
	}
	if want.CurrentVersion == "" && st.Current != "" {
		want.CurrentVersion = st.Versions[st.Current]
	}
	target := SlotA
	if st.Current != "" {
		target = other(st.Current)
	}

	// 1. Verify while extracting into a staging directory.
	staging := s.path(".new-" + target + "-" + randSuffix())
	m, err := extract(r, kr, want, limit, staging, true)
	if err != nil {
		return nil, err
	}
	// From here on the bundle is good; failures are local disk errors.
	m2, err := s.commitInstall(st, target, staging, m, healthDeadline)
	if err != nil {
		os.RemoveAll(staging)
	}
	return m2, err
}

// commitInstall puts the verified staging directory in place of the
// inactive slot, marks it pending, then switches current. Split out so the
// tests can stop between the steps.
func (s *Slots) commitInstall(st State, target, staging string, m *Manifest, healthDeadline time.Duration) (*Manifest, error) {
	// 2. The inactive slot is about to be replaced: forget it as a
	// rollback target first.
	if st.Previous == target {
		st.Previous = ""
		delete(st.Versions, target)
		if err := s.writeState(st); err != nil {
			return nil, err
		}
	}
	// 3. Swap the directories (the slot is not referenced by current nor
	// by state.json now).
	slotDir := s.path(target)
	old := ""
	if _, err := os.Lstat(slotDir); err == nil {
		old = s.path(".old-" + target + "-" + randSuffix())
		if err := os.Rename(slotDir, old); err != nil {
			return nil, fmt.Errorf("firmware: slots: %w", err)
		}
	}
	if err := os.Rename(staging, slotDir); err != nil {
		return nil, fmt.Errorf("firmware: slots: %w", err)
	}
	if err := s.syncDir(); err != nil {
		return nil, err
	}
	if old != "" {
		os.RemoveAll(old)
	}
	// 4. Mark the new slot pending (and current) before the switch.
	now := s.now()
	st.Previous = st.Current
	st.Current = target
	st.Pending = target
	st.PendingSince = now
	st.TrialDeadline = now.Add(healthDeadline)
	st.Boots = nil
	st.Versions[target] = m.Version
	if err := s.writeState(st); err != nil {
		return nil, err
	}
	// 5. The switch: from here the new slot runs, on trial.
	if err := s.switchLink(target); err != nil {
		return nil, err
	}
	return m, nil
}

// Boot is called once at every start of the agent. It removes what an
// interrupted operation left behind, repairs a state.json that disagrees
// with the symlink (the symlink wins: it is what runs), and, when the
// running slot is on trial, records this start and rolls back on a crash
// loop (CrashLoopStarts starts within CrashLoopWindow) or a passed deadline.
func (s *Slots) Boot() (Decision, error) {
	if _, err := os.Lstat(s.Dir); errors.Is(err, os.ErrNotExist) {
		return Decision{}, nil
	}
	if err := s.cleanDebris(); err != nil {
		return Decision{}, err
	}
	link, err := s.readLink()
	if err != nil {
		return Decision{}, err
	}
	if link != "" {
		if fi, err := os.Stat(s.path(link)); err != nil || !fi.IsDir() {
			return Decision{}, fmt.Errorf("firmware: slots: %s points to slot %s, which is not a directory", CurrentLink, link)
		}
	}
	var d Decision
	st, ok, err := s.readState()
	switch {
	case err != nil || (!ok && link != ""):
		// Lost or damaged state: rebuild from the symlink. Whether the slot
		// was on trial is unknown; it is taken as good.
		why := "missing"
		if err != nil {
			why = err.Error()
		}
		st = State{Current: link, Versions: map[string]string{}}
		d = Decision{Repaired: true, Reason: fmt.Sprintf("%s %s; rebuilt from %s -> %q", StateFile, why, CurrentLink, link)}
		if err := s.writeState(st); err != nil {
			return Decision{}, err
		}
		return d, nil
	case !ok:
		return Decision{}, nil // nothing installed
	}
	if st.Current != link {
		// Interrupted between the two atomic writes: Install writes state
		// first (pending) then switches; Rollback switches first then
		// writes state. Either way what current points to did not become
		// (or stopped being) the slot on trial, so it is the good one.
		reason := fmt.Sprintf("%s was %q but state said %q: interrupted switch", CurrentLink, link, st.Current)
		if st.Pending != "" {
			reason = fmt.Sprintf("switch to slot %s (version %s) interrupted; staying on %q", st.Pending, st.Versions[st.Pending], link)
			st.LastRollback = &RollbackEvent{At: s.now(), FromSlot: st.Pending, FromVersion: st.Versions[st.Pending],
				ToSlot: link, ToVersion: st.Versions[link], Reason: reason}
			d.RolledBack = true
		} else {
			d.Repaired = true
		}
		d.Reason = reason
		st.Current, st.Previous, st.Pending = link, "", ""
		st.Boots, st.PendingSince, st.TrialDeadline = nil, time.Time{}, time.Time{}
		if err := s.writeState(st); err != nil {
			return Decision{}, err
		}
		return d, nil
	}
	if st.Previous != "" {
		if fi, err := os.Stat(s.path(st.Previous)); err != nil || !fi.IsDir() {
			st.Previous = ""
			d.Repaired = true
			d.Reason = "previous slot missing"
			if err := s.writeState(st); err != nil {
				return Decision{}, err
			}
		}
	}
	if st.Pending == "" {
		return d, nil
	}
	now := s.now()
	st.Boots = append(st.Boots, now)
	// Keep only the starts that can still count towards a crash loop.
	kept := st.Boots[:0]
	for _, b := range st.Boots {
		if now.Sub(b) <= CrashLoopWindow {
			kept = append(kept, b)
		}
	}
	st.Boots = kept
	reason := ""
	switch {
	case len(st.Boots) >= CrashLoopStarts:
		reason = fmt.Sprintf("crash loop: %d starts within %s", len(st.Boots), CrashLoopWindow)
	case now.After(st.TrialDeadline):
		reason = fmt.Sprintf("health check deadline %s passed", st.TrialDeadline.UTC().Format(time.RFC3339))
	}
	if reason != "" {
		if err := s.rollback(st, reason); err != nil {
			return Decision{}, err
		}
		return Decision{RolledBack: true, Restart: true, Reason: reason}, nil
	}
	if err := s.writeState(st); err != nil {
		return Decision{}, err
	}
	return Decision{Trial: true, Deadline: st.TrialDeadline, Repaired: d.Repaired, Reason: d.Reason}, nil
}

// cleanDebris removes what an interrupted Install or write left in Dir:
// staging and old slot directories, temporary state files, current.tmp.
func (s *Slots) cleanDebris() error {
	ents, err := os.ReadDir(s.Dir)
	if err != nil {
		return fmt.Errorf("firmware: slots: %w", err)
	}
	for _, e := range ents {
		n := e.Name()
		if n == currentTmp || strings.HasPrefix(n, ".new-") || strings.HasPrefix(n, "..new-") ||
			strings.HasPrefix(n, ".old-") || strings.HasPrefix(n, atomicfile.TempPrefix(StateFile)) {
			if err := os.RemoveAll(s.path(n)); err != nil {
				return fmt.Errorf("firmware: slots: %w", err)
			}
		}
	}
	return nil
}

// rollback switches current to st.Previous (removing it when there is no
// previous slot) and then records the state: symlink first, so a power
// cut in between leaves a pending slot that current does not point to,
// which Boot settles the same way.
func (s *Slots) rollback(st State, reason string) error {
	from, to := st.Current, st.Previous
	if err := s.switchLink(to); err != nil {
		return err
	}
	st.LastRollback = &RollbackEvent{At: s.now(), FromSlot: from, FromVersion: st.Versions[from],
		ToSlot: to, ToVersion: st.Versions[to], Reason: reason}
	st.Current, st.Previous, st.Pending = to, "", ""
	st.Boots, st.PendingSince, st.TrialDeadline = nil, time.Time{}, time.Time{}
	return s.writeState(st)
}

// Commit records that the slot on trial passed its health check: it is no
// longer pending; the previous slot is kept for a manual Rollback.
func (s *Slots) Commit() error {
	st, err := s.load()
	if err != nil {
		return err
	}
	if st.Pending == "" {
		return fmt.Errorf("firmware: slots: %w", ErrNotOnTrial)
	}
	st.Pending, st.Boots = "", nil
	st.PendingSince, st.TrialDeadline = time.Time{}, time.Time{}
	return s.writeState(st)
}

// Rollback switches back to the previous slot: the health check failed
// (the slot on trial), or an operator asks for it (a committed slot).
// With the slot on trial and no previous slot (a first install), current
// is removed. The caller restarts the agent.
func (s *Slots) Rollback(reason string) error {
	st, err := s.load()
	if err != nil {
		return err
	}
	if st.Current == "" || (st.Pending == "" && st.Previous == "") {
		return fmt.Errorf("firmware: slots: %w", ErrNoPrevious)
	}
	return s.rollback(st, reason)
}

// Current returns the slot current points to and its version ("" and ""
// when nothing is installed).
func (s *Slots) Current() (slot, version string, err error) {
	link, err := s.readLink()
	if err != nil {
		return "", "", err
	}
	st, _, err := s.readState()
	if err != nil {
		return link, "", err
	}
	return link, st.Versions[link], nil
}

// Status returns state.json as checked against the symlink.
func (s *Slots) Status() (State, error) { return s.load() }

// Verify checks that slot holds exactly what its signed bundle installed:
// the stored manifest's signature against kr, the version state.json
// records for the slot, and every payload file's type, mode, size and
// SHA-256; any other entry (an added library or program, a symlink) fails
// too. The slot directory is writable by the agent's user, so the launcher
// verifies before every run rather than trusting what Install checked.
// Errors for a slot that does not match wrap ErrModified. A slot installed
// by a build from before the stored manifest has none and fails: no such
// slot was ever shipped, and the caller's fallback is the packaged binary.
func (s *Slots) Verify(slot string, kr *Keyring) (*Manifest, error) {
	if !validSlot(slot, false) {
		return nil, fmt.Errorf("firmware: slots: verify: %q is not a slot", slot)
	}
	if kr.Len() == 0 {
		return nil, fmt.Errorf("firmware: slots: verify slot %s: %w", slot, refuse(ErrUnknownKey, "no trusted keys"))
	}
	dir := s.path(slot)
	modified := func(format string, a ...any) error {
		return fmt.Errorf("firmware: slots: slot %s: %w: %s", slot, ErrModified, fmt.Sprintf(format, a...))
	}
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return nil, modified("not a directory")
	}
	data, err := readSmall(filepath.Join(dir, SlotManifest), MaxManifestSize)
	if err != nil {
		return nil, modified("stored manifest: %v", err)
	}
	sig, err := readSmall(filepath.Join(dir, SlotSignature), 1024)
	if err != nil {
		return nil, modified("stored signature: %v", err)
	}
	m, err := checkSigned(kr, data, sig)
	if err != nil {
		return nil, modified("stored manifest: %v", err)
	}
	if st, ok, err := s.readState(); err == nil && ok && st.Versions[slot] != "" && st.Versions[slot] != m.Version {
		return nil, modified("holds version %s, %s says %s", m.Version, StateFile, st.Versions[slot])
	}
	want := map[string]bool{SlotManifest: true, SlotSignature: true}
	dirs := map[string]bool{}
	for _, f := range m.Files {
		want[f.Path] = true
		for d := path.Dir(f.Path); d != "."; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	// Nothing but the manifest's files and their directories.
	err = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == dir {
			return nil
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		switch {
		case d.IsDir() && dirs[rel]:
			return nil
		case d.Type().IsRegular() && want[rel]:
			return nil
		}
		return modified("unexpected entry %s (%v)", rel, d.Type())
	})
	if err != nil {
		if errors.Is(err, ErrModified) {
			return nil, err
		}
		return nil, fmt.Errorf("firmware: slots: verify slot %s: %w", slot, err)
	}
	for _, f := range m.Files {
		if err := checkFile(filepath.Join(dir, filepath.FromSlash(f.Path)), f); err != nil {
			return nil, modified("%s: %v", f.Path, err)
		}
	}
	return m, nil
}

// readSmall reads a regular file (not a symlink) of at most max bytes.
func readSmall(p string, limit int64) ([]byte, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Size() > limit {
		return nil, fmt.Errorf("not a regular file of at most %d bytes", limit)
	}
	return os.ReadFile(p)
}

// checkFile compares one payload file with its manifest entry; the file is
// opened once and checked to be the regular file Lstat saw, so a symlink
// cannot stand in for it.
func checkFile(p string, f File) error {
	li, err := os.Lstat(p)
	if err != nil {
		return err
	}
	perm, _ := f.Perm() // validated with the manifest
	if !li.Mode().IsRegular() {
		return fmt.Errorf("not a regular file (%v)", li.Mode().Type())
	}
	if uint32(li.Mode().Perm()) != perm {
		return fmt.Errorf("mode %04o, manifest says %s", li.Mode().Perm(), f.Mode)
	}
	if li.Size() != f.Size {
		return fmt.Errorf("%d bytes, manifest says %d", li.Size(), f.Size)
	}
	fh, err := os.Open(p)
	if err != nil {
		return err
	}
	defer fh.Close()
	fi, err := fh.Stat()
	if err != nil {
		return err
	}
	if !os.SameFile(li, fi) {
		return errors.New("replaced while being verified")
	}
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(fh, f.Size+1))
	if err != nil {
		return err
	}
	if n != f.Size {
		return fmt.Errorf("%d bytes read, manifest says %d", n, f.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("sha256 %s, manifest says %s", got, f.SHA256)
	}
	return nil
}
