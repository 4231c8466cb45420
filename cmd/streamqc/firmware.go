package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/streamqc/streamqc/firmware"
	"github.com/streamqc/streamqc/internal/atomicfile"
)

const firmwareUsage = `usage: streamqc firmware keygen --out DIR
       streamqc firmware sign --key KEY --version V [--os OS --arch ARCH --flavor cpu|cuda] [--min-config-version N] --out BUNDLE FILE...
       streamqc firmware verify --trusted PUB[,PUB...] [--os OS --arch ARCH --flavor cpu|cuda] [--current-version V] [--allow-downgrade] [--limit BYTES] BUNDLE
       streamqc firmware push --agent A [--fleet F] [--url https://...] [--job-id ID] [--allow-downgrade] [--health-deadline D] [--timeout D] [broker flags] BUNDLE
`

// Key file names keygen writes into its --out directory.
const (
	firmwareKeyName = "streamqc-firmware.key"
	firmwarePubName = "streamqc-firmware.pub"
)

// firmwareCmd makes keys, signs, verifies and pushes update bundles (issue 6).
// Exit 0 on success, 1 when the work failed (a refused bundle), 2 on usage.
func firmwareCmd(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		return groupUsage(args, firmwareUsage, stdout, stderr)
	}
	switch args[0] {
	case "keygen":
		return firmwareKeygen(args[1:], stdout, stderr)
	case "sign":
		return firmwareSign(args[1:], stdout, stderr)
	case "verify":
		return firmwareVerify(args[1:], stdout, stderr)
	case "push":
		return firmwarePush(ctx, args[1:], stdout, stderr)
	}
	return groupUsage(args, firmwareUsage, stdout, stderr)
}

func firmwareKeygen(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firmware keygen", "--out DIR", "Makes an Ed25519 key pair for signing update bundles.", stdout, stderr)
	out := fs.String("out", "", "directory for "+firmwareKeyName+" and "+firmwarePubName+" (required)")
	if code, done := fs.parse(args); done {
		return code
	}
	if *out == "" || len(fs.operands) != 0 {
		return fs.fail("--out DIR, and nothing else, is required")
	}
	priv, pub := filepath.Join(*out, firmwareKeyName), filepath.Join(*out, firmwarePubName)
	if err := os.MkdirAll(*out, 0o700); err != nil {
		fmt.Fprintf(stderr, "streamqc firmware keygen: %v\n", err)
		return 1
	}
	if err := firmware.GenerateKey(priv, pub); err != nil {
		fmt.Fprintf(stderr, "streamqc firmware keygen: %v\n", err)
		return 1
	}
	pk, err := firmware.LoadTrusted([]string{pub})
	if err != nil {
		fmt.Fprintf(stderr, "streamqc firmware keygen: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "private key %s (keep it offline)\npublic key  %s (key id %s; list it in the agents' trusted keys)\n", priv, pub, pk.IDs()[0])
	return 0
}

func firmwareSign(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firmware sign", "--key KEY --version V [--os OS --arch ARCH --flavor cpu|cuda] [--min-config-version N] --out BUNDLE FILE...", "Signs files into an update bundle.", stdout, stderr)
	keyPath := fs.String("key", "", "private key file (required)")
	ver := fs.String("version", "", "semantic version of the release, e.g. 1.2.3 (required)")
	goos := fs.String("os", runtime.GOOS, "target operating system")
	goarch := fs.String("arch", runtime.GOARCH, "target architecture")
	flavor := fs.String("flavor", "cpu", "target flavor: "+strings.Join(firmware.Flavors, " or "))
	minCfg := fs.Int64("min-config-version", 0, "lowest agent config version this release accepts")
	out := fs.String("out", "", "bundle to write (required)")
	if code, done := fs.parse(args); done {
		return code
	}
	if *keyPath == "" || *ver == "" || *out == "" || len(fs.operands) == 0 {
		return fs.fail("--key, --version, --out and at least one FILE are required")
	}
	files := make(map[string]string, len(fs.operands))
	for _, f := range fs.operands {
		base := filepath.Base(f)
		if _, dup := files[base]; dup {
			fmt.Fprintf(stderr, "streamqc firmware sign: two files named %q\n", base)
			return 2
		}
		files[base] = f
	}
	priv, err := firmware.LoadPrivateKey(*keyPath)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc firmware sign: %v\n", err)
		return 1
	}
	m := firmware.Manifest{Version: *ver, OS: *goos, Arch: *goarch, Flavor: *flavor, MinConfigVersion: *minCfg}
	// Written next to the destination, renamed when complete.
	err = atomicfile.Write(*out, 0o644, func(w io.Writer) error { return firmware.Sign(w, priv, m, files) })
	if err != nil {
		fmt.Fprintf(stderr, "streamqc firmware sign: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "signed %s: streamqc %s %s/%s %s, %d files\n", *out, *ver, *goos, *goarch, *flavor, len(files))
	return 0
}

func firmwareVerify(args []string, stdout, stderr io.Writer) int {
	fs := newFlags("firmware verify", "--trusted PUB[,PUB...] [--os OS --arch ARCH --flavor cpu|cuda] [--current-version V] [--allow-downgrade] [--limit BYTES] BUNDLE", "Verifies a bundle as an agent would, without installing it.", stdout, stderr)
	trustedList := fs.String("trusted", "", "comma-separated trusted public key files (required)")
	goos := fs.String("os", runtime.GOOS, "this device's operating system")
	goarch := fs.String("arch", runtime.GOARCH, "this device's architecture")
	flavor := fs.String("flavor", "cpu", "this device's flavor: "+strings.Join(firmware.Flavors, " or "))
	current := fs.String("current-version", "", "installed version; a bundle must be newer (empty: no check)")
	allowDown := fs.Bool("allow-downgrade", false, "accept an older or equal version")
	limit := fs.Int64("limit", firmware.DefaultLimit, "largest bundle accepted, in bytes")
	if code, done := fs.parse(args); done {
		return code
	}
	if *trustedList == "" || len(fs.operands) != 1 || *limit <= 0 {
		return fs.fail("--trusted, a positive --limit and one BUNDLE are required")
	}
	var paths []string
	for _, p := range strings.Split(*trustedList, ",") {
		if p = strings.TrimSpace(p); p != "" {
			paths = append(paths, p)
		}
	}
	kr, err := firmware.LoadTrusted(paths)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc firmware verify: %v\n", err)
		return 1
	}
	f, err := os.Open(fs.operands[0])
	if err != nil {
		fmt.Fprintf(stderr, "streamqc firmware verify: %v\n", err)
		return 1
	}
	defer f.Close()
	want := firmware.Target{OS: *goos, Arch: *goarch, Flavor: *flavor, CurrentVersion: *current, AllowDowngrade: *allowDown}
	m, err := firmware.Verify(f, kr, want, *limit)
	if err != nil {
		fmt.Fprintf(stderr, "streamqc firmware verify: %s: refused: %v\n", fs.operands[0], err)
		return 1
	}
	fmt.Fprintf(stdout, "ok %s: streamqc %s %s/%s %s, min config version %d, created %s, key %s\n",
		fs.operands[0], m.Version, m.OS, m.Arch, m.Flavor, m.MinConfigVersion, m.Created.Format("2006-01-02T15:04:05Z07:00"), m.KeyID)
	for _, fl := range m.Files {
		fmt.Fprintf(stdout, "  %s %10d  %s  %s\n", fl.Mode, fl.Size, fl.SHA256, fl.Path)
	}
	return 0
}
