package firmware

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

var slotTarget = Target{OS: "linux", Arch: "amd64", Flavor: "cpu"}

type fakeClock struct{ t time.Time }

func (c *fakeClock) Now() time.Time                      { return c.t }
func (c *fakeClock) Set(base time.Time, d time.Duration) { c.t = base.Add(d) }

// slotEnv is a Slots over a fresh directory, a key generated on disk and
// its keyring.
type slotEnv struct {
	s     *Slots
	clock *fakeClock
	priv  ed25519.PrivateKey
	kr    *Keyring
}

func newSlotEnv(t *testing.T) *slotEnv {
	t.Helper()
	kd := t.TempDir()
	privPath, pubPath := filepath.Join(kd, "k.key"), filepath.Join(kd, "k.pub")
	if err := GenerateKey(privPath, pubPath); err != nil {
		t.Fatal(err)
	}
	priv, err := LoadPrivateKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	kr, err := LoadTrusted([]string{pubPath})
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)}
	return &slotEnv{s: &Slots{Dir: filepath.Join(t.TempDir(), "firmware"), Now: clock.Now}, clock: clock, priv: priv, kr: kr}
}

func (e *slotEnv) bundle(t *testing.T, version string) []byte {
	t.Helper()
	return makeBundle(t, e.priv, testManifest(version), payload(version))
}

func (e *slotEnv) install(t *testing.T, version string, deadline time.Duration) {
	t.Helper()
	m, err := e.s.Install(bytes.NewReader(e.bundle(t, version)), e.kr, slotTarget, 0, deadline)
	if err != nil {
		t.Fatalf("install %s: %v", version, err)
	}
	if m.Version != version {
		t.Fatalf("install %s: manifest says %s", version, m.Version)
	}
}

// expect checks the slot current points to, its version, pending and
// previous, that state and symlink agree, and that the slot holds the
// payload of its version.
func (e *slotEnv) expect(t *testing.T, slot, version, pending, previous string) {
	t.Helper()
	gotSlot, gotVersion, err := e.s.Current()
	if err != nil {
		t.Fatal(err)
	}
	if gotSlot != slot || gotVersion != version {
		t.Fatalf("current = %q %q, want %q %q", gotSlot, gotVersion, slot, version)
	}
	st, err := e.s.Status()
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	if st.Pending != pending || st.Previous != previous {
		t.Fatalf("pending %q previous %q, want %q %q", st.Pending, st.Previous, pending, previous)
	}
	if slot == "" || version == "" {
		return
	}
	for p, data := range payload(version) {
		got, err := os.ReadFile(filepath.Join(e.s.Dir, CurrentLink, filepath.FromSlash(p)))
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("current/%s: %v, content of %s: %v", p, err, version, bytes.Equal(got, data))
		}
	}
}

// snapshot describes every entry under dir: type, permissions, content or
// link target. Two equal snapshots mean nothing changed on disk.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && p == dir {
				return filepath.SkipAll
			}
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, err := os.Readlink(p)
			if err != nil {
				return err
			}
			out[rel] = "link " + l
		case fi.IsDir():
			out[rel] = fmt.Sprintf("dir %v", fi.Mode())
		default:
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			out[rel] = fmt.Sprintf("file %v %q", fi.Mode(), data)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func sameTree(t *testing.T, what string, before, after map[string]string) {
	t.Helper()
	if reflect.DeepEqual(before, after) {
		return
	}
	var diff []string
	for k, v := range before {
		if after[k] != v {
			diff = append(diff, "changed or removed: "+k)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			diff = append(diff, "added: "+k)
		}
	}
	sort.Strings(diff)
	t.Fatalf("%s: the directory tree changed:\n%s", what, strings.Join(diff, "\n"))
}

func sub(snap map[string]string, prefix string) map[string]string {
	out := map[string]string{}
	for k, v := range snap {
		if k == prefix || strings.HasPrefix(k, prefix+string(os.PathSeparator)) {
			out[k] = v
		}
	}
	return out
}

func TestSlotsInstallCommitAlternates(t *testing.T) {
	e := newSlotEnv(t)
	if d, err := e.s.Boot(); err != nil || d != (Decision{}) {
		t.Fatalf("boot before any install: %+v %v", d, err)
	}
	e.install(t, "1.0.0", time.Minute)
	e.expect(t, SlotA, "1.0.0", SlotA, "")
	st, _ := e.s.Status()
	if !st.TrialDeadline.Equal(e.clock.Now().Add(time.Minute)) {
		t.Fatalf("trial deadline %v", st.TrialDeadline)
	}
	d, err := e.s.Boot()
	if err != nil || !d.Trial || d.RolledBack || !d.Deadline.Equal(st.TrialDeadline) {
		t.Fatalf("boot on trial: %+v %v", d, err)
	}
	if err := e.s.Commit(); err != nil {
		t.Fatal(err)
	}
	e.expect(t, SlotA, "1.0.0", "", "")
	if err := e.s.Commit(); !errors.Is(err, ErrNotOnTrial) {
		t.Fatalf("second commit: %v", err)
	}
	if d, err := e.s.Boot(); err != nil || d != (Decision{}) {
		t.Fatalf("boot after commit: %+v %v", d, err)
	}

	// Each install goes to the other slot and never touches the active one.
	versions := []string{"1.1.0", "1.2.0", "2.0.0"}
	wantSlot := []string{SlotB, SlotA, SlotB}
	for i, v := range versions {
		active, _, _ := e.s.Current()
		before := sub(snapshot(t, e.s.Dir), active)
		e.install(t, v, time.Minute)
		sameTree(t, "active slot during install of "+v, before, sub(snapshot(t, e.s.Dir), active))
		e.expect(t, wantSlot[i], v, wantSlot[i], active)

		// An install while on trial is refused and changes nothing.
		snap := snapshot(t, e.s.Dir)
		_, err := e.s.Install(bytes.NewReader(e.bundle(t, "9.0.0")), e.kr, slotTarget, 0, time.Minute)
		if !errors.Is(err, ErrOnTrial) {
			t.Fatalf("install on trial: %v", err)
		}
		sameTree(t, "install on trial", snap, snapshot(t, e.s.Dir))

		if _, err := e.s.Boot(); err != nil {
			t.Fatal(err)
		}
		if err := e.s.Commit(); err != nil {
			t.Fatal(err)
		}
		e.expect(t, wantSlot[i], v, "", active)
	}
	// No debris left.
	for k := range snapshot(t, e.s.Dir) {
		if (k != "." && strings.HasPrefix(k, ".")) || k == currentTmp {
			t.Fatalf("left behind: %s", k)
		}
	}
}

func TestSlotsBootTrialAndRollback(t *testing.T) {
	const deadline = 10 * time.Minute
	tests := []struct {
		name   string
		boots  []time.Duration // since the install
		rolled bool            // at the last boot
		crash  bool            // the reason is a crash loop
	}{
		{"one boot within deadline", []time.Duration{5 * time.Second}, false, false},
		{"boot after deadline", []time.Duration{deadline + time.Second}, true, false},
		{"boot at deadline", []time.Duration{deadline}, false, false},
		// "More than 2 restarts in 60 s": the 4th start within 60 s.
		{"4 boots within 60s", []time.Duration{time.Second, 20 * time.Second, 40 * time.Second, 61 * time.Second}, true, true},
		{"3 boots within 60s", []time.Duration{time.Second, 20 * time.Second, 61 * time.Second}, false, false},
		{"4 boots over 3 minutes", []time.Duration{0, 60 * time.Second, 120 * time.Second, 180 * time.Second}, false, false},
		{"4 boots just over 60s", []time.Duration{0, 20 * time.Second, 40 * time.Second, 60*time.Second + time.Millisecond}, false, false},
		{"5 boots, last 4 within 60s", []time.Duration{0, 100 * time.Second, 120 * time.Second, 140 * time.Second, 150 * time.Second}, true, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newSlotEnv(t)
			e.install(t, "1.0.0", time.Minute)
			e.s.Boot()
			if err := e.s.Commit(); err != nil {
				t.Fatal(err)
			}
			goodSlot := sub(snapshot(t, e.s.Dir), SlotA)
			e.install(t, "1.1.0", deadline)
			base := e.clock.Now()
			for i, at := range tc.boots {
				e.clock.Set(base, at)
				d, err := e.s.Boot()
				if err != nil {
					t.Fatal(err)
				}
				last := i == len(tc.boots)-1
				if !last || !tc.rolled {
					if !d.Trial || d.RolledBack || d.Restart {
						t.Fatalf("boot %d: %+v, want trial", i, d)
					}
					continue
				}
				if !d.RolledBack || d.Trial || !d.Restart {
					t.Fatalf("boot %d: %+v, want rolled back", i, d)
				}
				if got := strings.Contains(d.Reason, "crash loop"); got != tc.crash {
					t.Fatalf("reason %q", d.Reason)
				}
			}
			if !tc.rolled {
				e.expect(t, SlotB, "1.1.0", SlotB, SlotA)
				return
			}
			e.expect(t, SlotA, "1.0.0", "", "")
			sameTree(t, "previous slot", goodSlot, sub(snapshot(t, e.s.Dir), SlotA))
			st, _ := e.s.Status()
			if r := st.LastRollback; r == nil || r.FromVersion != "1.1.0" || r.ToVersion != "1.0.0" || r.FromSlot != SlotB || r.ToSlot != SlotA {
				t.Fatalf("last rollback %+v", r)
			}
			// The restored agent starts normally.
			if d, err := e.s.Boot(); err != nil || d != (Decision{}) {
				t.Fatalf("boot after rollback: %+v %v", d, err)
			}
			// And the same update can be tried again.
			e.install(t, "1.1.0", deadline)
			e.expect(t, SlotB, "1.1.0", SlotB, SlotA)
		})
	}
}

func TestSlotsRefusedNothingChanged(t *testing.T) {
	e := newSlotEnv(t)
	// A bundle of another (untrusted) key.
	other := newSlotEnv(t)
	good := e.bundle(t, "1.1.0")
	tampered := append([]byte(nil), good...)
	i := bytes.Index(tampered, []byte("BINARY-1.1.0"))
	if i < 0 {
		t.Fatal("payload not found")
	}
	tampered[i] ^= 1
	arm := testManifest("1.1.0")
	arm.Arch = "arm64"
	cuda := testManifest("1.1.0")
	cuda.Flavor = "cuda"
	tests := []struct {
		name   string
		bundle []byte
		limit  int64
		want   error
	}{
		{"tampered", tampered, 0, ErrCorrupt},
		{"truncated", good[:len(good)-1024], 0, ErrCorrupt},
		{"wrong arch", makeBundle(t, e.priv, arm, payload("x")), 0, ErrTarget},
		{"wrong flavor", makeBundle(t, e.priv, cuda, payload("x")), 0, ErrTarget},
		{"downgrade", e.bundle(t, "0.9.0"), 0, ErrDowngrade},
		{"same version", e.bundle(t, "1.0.0"), 0, ErrDowngrade},
		{"unknown key", other.bundle(t, "1.1.0"), 0, ErrUnknownKey},
		{"too large", good, 1024, ErrTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e.s.Dir = filepath.Join(t.TempDir(), "firmware")
			// 0.5.0 in a, then 1.0.0 in b, both committed: the inactive
			// slot a is the previous one and must survive a refusal.
			e.install(t, "0.5.0", time.Minute)
			e.s.Commit()
			e.install(t, "1.0.0", time.Minute)
			e.s.Commit()
			before := snapshot(t, e.s.Dir)
			_, err := e.s.Install(bytes.NewReader(tc.bundle), e.kr, slotTarget, tc.limit, time.Minute)
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			sameTree(t, tc.name, before, snapshot(t, e.s.Dir))
			e.expect(t, SlotB, "1.0.0", "", SlotA)
		})
	}
	t.Run("first install into a missing directory", func(t *testing.T) {
		e.s.Dir = filepath.Join(t.TempDir(), "state", "firmware")
		if _, err := e.s.Install(bytes.NewReader(tampered), e.kr, slotTarget, 0, time.Minute); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("error %v", err)
		}
		if _, err := os.Lstat(e.s.Dir); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("%s left behind: %v", e.s.Dir, err)
		}
	})
}

func TestSlotsRollback(t *testing.T) {
	t.Run("on trial", func(t *testing.T) {
		e := newSlotEnv(t)
		e.install(t, "1.0.0", time.Minute)
		e.s.Commit()
		good := sub(snapshot(t, e.s.Dir), SlotA)
		e.install(t, "1.1.0", time.Minute)
		e.s.Boot()
		if err := e.s.Rollback("not connected to the broker"); err != nil {
			t.Fatal(err)
		}
		e.expect(t, SlotA, "1.0.0", "", "")
		sameTree(t, "previous slot", good, sub(snapshot(t, e.s.Dir), SlotA))
		st, _ := e.s.Status()
		if st.LastRollback == nil || st.LastRollback.Reason != "not connected to the broker" {
			t.Fatalf("last rollback %+v", st.LastRollback)
		}
		if err := e.s.Rollback("again"); !errors.Is(err, ErrNoPrevious) {
			t.Fatalf("second rollback: %v", err)
		}
		if err := e.s.Commit(); !errors.Is(err, ErrNotOnTrial) {
			t.Fatalf("commit after rollback: %v", err)
		}
	})
	t.Run("manual after commit", func(t *testing.T) {
		e := newSlotEnv(t)
		e.install(t, "1.0.0", time.Minute)
		e.s.Commit()
		e.install(t, "1.1.0", time.Minute)
		e.s.Commit()
		if err := e.s.Rollback("operator"); err != nil {
			t.Fatal(err)
		}
		e.expect(t, SlotA, "1.0.0", "", "")
	})
	t.Run("first install", func(t *testing.T) {
		e := newSlotEnv(t)
		if err := e.s.Rollback("nothing"); err == nil {
			t.Fatal("rollback with nothing installed")
		}
		e.install(t, "1.0.0", time.Minute)
		if err := e.s.Rollback("health"); err != nil {
			t.Fatal(err)
		}
		e.expect(t, "", "", "", "")
		if _, err := os.Lstat(filepath.Join(e.s.Dir, CurrentLink)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("current still there: %v", err)
		}
		// Installing again works, into the other slot.
		e.install(t, "1.0.0", time.Minute)
		e.expect(t, SlotA, "1.0.0", SlotA, "")
	})
}

// TestSlotsPowerCut leaves Dir as a power cut between two steps would and
// checks that Boot settles it deterministically into a consistent state.
func TestSlotsPowerCut(t *testing.T) {
	tests := []struct {
		name string
		// cut damages the state of: 1.0.0 in a (committed), 1.1.0 in b
		// (on trial, or committed when committed).
		committed bool
		installOK bool // Install before Boot is not refused
		cut       func(t *testing.T, s *Slots)
		want      Decision // Reason not compared
		slot, ver string
		previous  string
	}{
		{
			name: "install: state pending written, symlink not switched",
			cut: func(t *testing.T, s *Slots) {
				os.Remove(s.path(CurrentLink))
				os.Symlink(SlotA, s.path(CurrentLink))
			},
			want: Decision{RolledBack: true}, slot: SlotA, ver: "1.0.0",
		},
		{
			name: "install: current.tmp made, not renamed",
			cut: func(t *testing.T, s *Slots) {
				os.Remove(s.path(CurrentLink))
				os.Symlink(SlotA, s.path(CurrentLink))
				os.Symlink(SlotB, s.path(currentTmp))
			},
			want: Decision{RolledBack: true}, slot: SlotA, ver: "1.0.0",
		},
		{
			name: "install: switched, before the first boot", installOK: true,
			cut:  func(t *testing.T, s *Slots) {},
			want: Decision{Trial: true}, slot: SlotB, ver: "1.1.0", previous: SlotA,
		},
		{
			name: "install: staging and old slot left behind",
			cut: func(t *testing.T, s *Slots) {
				os.MkdirAll(s.path(".new-b-123/x"), 0o755)
				os.MkdirAll(s.path("..new-b-123.tmp-456"), 0o755)
				os.MkdirAll(s.path(".old-b-789"), 0o755)
				os.WriteFile(s.path(".state.json.tmp-1"), []byte("{"), 0o644)
			},
			want: Decision{Trial: true}, slot: SlotB, ver: "1.1.0", previous: SlotA,
		},
		{
			name:      "install: previous slot renamed away, new one not in place",
			committed: true, installOK: true,
			cut: func(t *testing.T, s *Slots) {
				os.Rename(s.path(SlotA), s.path(".old-a-1"))
			},
			want: Decision{Repaired: true}, slot: SlotB, ver: "1.1.0",
		},
		{
			name: "rollback: symlink switched, state not written",
			cut: func(t *testing.T, s *Slots) {
				if err := s.switchLink(SlotA); err != nil {
					t.Fatal(err)
				}
			},
			want: Decision{RolledBack: true}, slot: SlotA, ver: "1.0.0",
		},
		{
			name:      "manual rollback: symlink switched, state not written",
			committed: true,
			cut: func(t *testing.T, s *Slots) {
				if err := s.switchLink(SlotA); err != nil {
					t.Fatal(err)
				}
			},
			want: Decision{Repaired: true}, slot: SlotA, ver: "1.0.0",
		},
		{
			name: "state.json corrupt",
			cut: func(t *testing.T, s *Slots) {
				os.WriteFile(s.path(StateFile), []byte(`{"current":"b","pend`), 0o644)
			},
			want: Decision{Repaired: true}, slot: SlotB, ver: "",
		},
		{
			name: "state.json missing",
			cut: func(t *testing.T, s *Slots) {
				os.Remove(s.path(StateFile))
			},
			want: Decision{Repaired: true}, slot: SlotB, ver: "",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newSlotEnv(t)
			e.install(t, "1.0.0", time.Hour)
			e.s.Boot()
			e.s.Commit()
			e.install(t, "1.1.0", time.Hour)
			if tc.committed {
				e.s.Boot()
				e.s.Commit()
			}
			tc.cut(t, e.s)
			if !tc.installOK {
				if _, err := e.s.Install(bytes.NewReader(e.bundle(t, "2.0.0")), e.kr, slotTarget, 0, time.Minute); err == nil {
					t.Fatal("install over a damaged state")
				}
			}
			d, err := e.s.Boot()
			if err != nil {
				t.Fatal(err)
			}
			if d.Trial != tc.want.Trial || d.RolledBack != tc.want.RolledBack || d.Repaired != tc.want.Repaired || d.Restart {
				t.Fatalf("decision %+v, want %+v", d, tc.want)
			}
			pending := ""
			if d.Trial {
				pending = tc.slot
			}
			e.expect(t, tc.slot, tc.ver, pending, tc.previous)
			for k := range snapshot(t, e.s.Dir) {
				if (k != "." && strings.HasPrefix(k, ".")) || k == currentTmp {
					t.Fatalf("left behind: %s", k)
				}
			}
			// A second boot changes nothing more (deterministic, settled).
			snap := snapshot(t, e.s.Dir)
			d2, err := e.s.Boot()
			if err != nil || d2.RolledBack || d2.Repaired {
				t.Fatalf("second boot: %+v %v", d2, err)
			}
			if !d2.Trial {
				sameTree(t, "second boot", snap, snapshot(t, e.s.Dir))
			}
			// And the next install works.
			if !d2.Trial {
				e.install(t, "2.0.0", time.Minute)
				if s, v, _ := e.s.Current(); v != "2.0.0" || s != other(tc.slot) {
					t.Fatalf("after repair, install went to %s %s", s, v)
				}
			}
		})
	}
}

func TestSlotsVerify(t *testing.T) {
	other := newSlotEnv(t)
	tests := []struct {
		name   string
		tamper func(t *testing.T, s *Slots, dir string)
		kr     func(e *slotEnv) *Keyring
		ok     bool
	}{
		{name: "as installed", tamper: func(*testing.T, *Slots, string) {}, ok: true},
		{name: "binary changed, same size", tamper: func(t *testing.T, _ *Slots, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "streamqc"))
			b[10] ^= 1
			writeKeepMode(t, filepath.Join(dir, "streamqc"), b)
		}},
		{name: "binary appended to", tamper: func(t *testing.T, _ *Slots, dir string) {
			b, _ := os.ReadFile(filepath.Join(dir, "streamqc"))
			writeKeepMode(t, filepath.Join(dir, "streamqc"), append(b, '\n'))
		}},
		{name: "mode changed", tamper: func(t *testing.T, _ *Slots, dir string) {
			if err := os.Chmod(filepath.Join(dir, "streamqc"), 0o777); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file replaced by a symlink to the same content", tamper: func(t *testing.T, _ *Slots, dir string) {
			p := filepath.Join(dir, "share", "readme.txt")
			b, _ := os.ReadFile(p)
			copyPath := filepath.Join(t.TempDir(), "readme.txt")
			os.WriteFile(copyPath, b, 0o644)
			os.Remove(p)
			if err := os.Symlink(copyPath, p); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "file added", tamper: func(t *testing.T, _ *Slots, dir string) {
			os.WriteFile(filepath.Join(dir, "libevil.so"), []byte("x"), 0o755)
		}},
		{name: "directory added", tamper: func(t *testing.T, _ *Slots, dir string) {
			os.Mkdir(filepath.Join(dir, "plugins"), 0o755)
		}},
		{name: "file removed", tamper: func(t *testing.T, _ *Slots, dir string) {
			os.Remove(filepath.Join(dir, "share", "readme.txt"))
		}},
		{name: "stored manifest missing (an install by an older build)", tamper: func(t *testing.T, _ *Slots, dir string) {
			os.Remove(filepath.Join(dir, SlotManifest))
		}},
		{name: "stored signature missing", tamper: func(t *testing.T, _ *Slots, dir string) {
			os.Remove(filepath.Join(dir, SlotSignature))
		}},
		{name: "stored manifest edited", tamper: func(t *testing.T, _ *Slots, dir string) {
			p := filepath.Join(dir, SlotManifest)
			b, _ := os.ReadFile(p)
			writeKeepMode(t, p, bytes.Replace(b, []byte(`"1.1.0"`), []byte(`"1.1.1"`), 1))
		}},
		{name: "version in state.json differs", tamper: func(t *testing.T, s *Slots, dir string) {
			st, _, err := s.readState()
			if err != nil {
				t.Fatal(err)
			}
			st.Versions[SlotB] = "1.0.9"
			if err := s.writeState(st); err != nil {
				t.Fatal(err)
			}
		}},
		{name: "signed by a key no longer trusted", tamper: func(*testing.T, *Slots, string) {},
			kr: func(*slotEnv) *Keyring { return other.kr }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newSlotEnv(t)
			e.install(t, "1.0.0", time.Minute)
			e.s.Commit()
			e.install(t, "1.1.0", time.Minute)
			tc.tamper(t, e.s, filepath.Join(e.s.Dir, SlotB))
			kr := e.kr
			if tc.kr != nil {
				kr = tc.kr(e)
			}
			m, err := e.s.Verify(SlotB, kr)
			if tc.ok {
				if err != nil || m.Version != "1.1.0" {
					t.Fatalf("verify: %v %+v", err, m)
				}
				return
			}
			if !errors.Is(err, ErrModified) {
				t.Fatalf("verify = %v, want ErrModified", err)
			}
			// The other slot is untouched and still verifies.
			if _, err := e.s.Verify(SlotA, kr); tc.kr == nil && err != nil {
				t.Fatalf("slot a: %v", err)
			}
		})
	}
	t.Run("no keys", func(t *testing.T) {
		e := newSlotEnv(t)
		e.install(t, "1.0.0", time.Minute)
		if _, err := e.s.Verify(SlotA, nil); err == nil || errors.Is(err, ErrModified) {
			t.Fatalf("verify without keys = %v", err)
		}
	})
	t.Run("stored names cannot be payload paths", func(t *testing.T) {
		for _, n := range []string{SlotManifest, SlotSignature} {
			if validPath(n) == nil {
				t.Errorf("%s is a valid payload path", n)
			}
		}
	})
}

// writeKeepMode rewrites an existing file in place (its mode unchanged).
func writeKeepMode(t *testing.T, p string, data []byte) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, fi.Mode().Perm()); err != nil {
		t.Fatal(err)
	}
}
