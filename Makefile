# streamqc: `make demo` runs the analyzer on a generated clip with defects,
# `make test` runs every test, `make bench` compares CPU time with FFmpeg.
# Each target installs what it needs (Debian 12).

SHELL   := /bin/bash
export PATH := $(PATH):/usr/local/go/bin
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
BIN     := bin/streamqc
CLIPS   ?= $(CURDIR)/.cache/clips

.PHONY: all deps build demo demo-analyze bench-fleet test vet fmt-check bench fuzz clean portable portable-parity release release-test test-release cuda-check gpu-check quality

all: build

deps:
	@packaging/deps.sh

build: deps
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/streamqc

# The whole system on one machine: a local Mosquitto, the agent on three
# real-time looping clips with injected defects, `streamqc events` for 30 s
# and the dashboard's page (its URL printed; DEMO_SECONDS=300 for longer).
demo: build
	@BIN=$(BIN) CLIPS=$(CLIPS) packaging/demo.sh

# One clip analyzed to its end (the issue-2 demo).
demo-analyze: build
	@STREAMQC_CLIPS=$(CLIPS) $(GO) run ./testdata/gen -out $(CLIPS) -only broadcast_ts >/dev/null
	@echo "== streamqc analyze $(CLIPS)/broadcast_ts.ts (truth: black 3.0-5.0 s, silence 7.0-10.0 s)"
	@$(BIN) analyze $(CLIPS)/broadcast_ts.ts

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet: deps
	$(GO) vet ./... ./testdata/clips ./testdata/gen ./testdata/quality
	$(GO) vet -tags portable ./internal/glibccompat ./cmd/streamqc
	GOOS=windows $(GO) vet ./agent/service

# The package test first (test-package, below), so that go test's own summary
# ends the output: gotestsum (pinned, run by the module proxy's copy, not in
# go.mod) lists every skipped test with its reason, then "DONE N tests, N
# skipped".
GOTESTSUM ?= $(GO) run gotest.tools/gotestsum@v1.13.0
test: deps fmt-check vet cuda-check test-package portable test-release
	STREAMQC_CLIPS=$(CLIPS) STREAMQC_REQUIRE_MOSQUITTO=1 STREAMQC_REQUIRE_SYSTEMD=1 STREAMQC_REQUIRE_TSTOOLS=1 \
	STREAMQC_REQUIRE_CHROMIUM=1 STREAMQC_ARTIFACTS=$(CURDIR)/build/artifacts \
	STREAMQC_PORTABLE_BIN=$(CURDIR)/$(PORTABLE_BIN) STREAMQC_REQUIRE_PORTABLE=1 \
	$(GOTESTSUM) --format pkgname-and-test-fails --format-hide-empty-pkg -- -race -timeout 20m ./... ./testdata/clips
	$(GO) vet -tags purego ./detectors
	$(GO) test -tags purego -count=1 ./detectors  # the SWAR loops that builds other than amd64 run

# Short fuzzing of the parsers of untrusted input (the seed corpora run in `make test`).
fuzz: deps
	$(GO) test ./agent/config -run XXX -fuzz FuzzMergeJSON -fuzztime 30s
	$(GO) test ./agent/config -run XXX -fuzz FuzzSet -fuzztime 15s
	$(GO) test ./agent/config -run XXX -fuzz FuzzParseAgent -fuzztime 30s
	$(GO) test ./agent/fleet -run XXX -fuzz FuzzParseDesired -fuzztime 30s
	$(GO) test ./agent/fleet -run XXX -fuzz FuzzOpen -fuzztime 30s
	$(GO) test ./agent/spool -run XXX -fuzz FuzzOpen -fuzztime 30s
	$(GO) test ./firmware -run XXX -fuzz FuzzFirmwareVerify -fuzztime 30s
	$(GO) test ./transport -run XXX -fuzz FuzzFeed -fuzztime 30s -fuzzminimizetime 100x  # minimizing its inputs is slow, not the parser
	$(GO) test ./consumer/history -run XXX -fuzz FuzzRecorderPayloads -fuzztime 30s
	$(GO) test ./media/hevc -run XXX -fuzz FuzzPacket -fuzztime 30s -fuzzminimizetime 100x
	$(GO) test ./media/hevc -run XXX -fuzz FuzzExtradata -fuzztime 15s

# CPU time of streamqc analyze next to FFmpeg's own detection filters (the
# peer) and FFmpeg decoding alone (the floor), on 60 s 720p30 and 1080p30
# H.264 clips, same decoder thread count; plus the per-frame micro benchmarks
# and the throughput of a bundle streamed over MQTT (firmware push).
bench: build
	STREAMQC_CLIPS=$(CLIPS) STREAMQC_BIN=$(CURDIR)/$(BIN) $(GO) test ./analyze -run XXX -bench 'VersusFFmpeg' -benchtime 1x -timeout 30m
	STREAMQC_CLIPS=$(CLIPS) STREAMQC_BIN=$(CURDIR)/$(BIN) $(GO) test ./analyze -run XXX -bench 'TransportCost' -benchtime 1x -timeout 30m
	$(GO) test ./detectors ./media ./agent/spool ./transport -run XXX -bench . -benchmem
	$(GO) test ./agent -run XXX -bench StreamedBundle -benchtime 3x

# Detection quality (issue 13): streamqc and FFmpeg's detection filters on the
# quality corpus (testdata/clips, tune and held-back splits, made from
# ../shared/media or synthetic sources, cached): per class recall, onset
# error, false alarms per hour of clean material. QUALITY_FLAGS=-v lists every alarm.
quality: deps
	STREAMQC_CLIPS=$(CLIPS) $(GO) run ./testdata/quality -media ../shared/media $(QUALITY_FLAGS)

# The event plane at fleet scale: 1,000 streams' worth of events from a
# synthetic feature source through the spool and one Mosquitto; sustained
# events/s, publish-to-consumer latency, spool growth and drain across a 30 s
# broker outage. Sizes: STREAMQC_SCALE_STREAMS, _PERIOD, _STEADY, _OUTAGE.
bench-fleet: deps
	$(GO) test ./agent -run XXX -bench EventPlane -benchtime 1x -timeout 20m

clean:
	rm -rf bin build .cache

# .deb packages (issue 5; packaging/deb/README.md). `make package` builds
# $(DEB_DIR)/streamqc_<version>_amd64.deb with nfpm (its CLI, pinned here, not
# in go.mod); the Debian version comes from the git tags (packaging/deb/version.sh)
# and the unit from `streamqc service unit`. `make package-test` installs,
# upgrades, removes and purges it in a throwaway Debian 12 root (root, network).
NFPM_VERSION   ?= v2.43.1
NFPM           ?= $(GO) run github.com/goreleaser/nfpm/v2/cmd/nfpm@$(NFPM_VERSION)
DEB_VERSION    ?= $(shell packaging/deb/version.sh '$(VERSION)')
DEB_ARCH       ?= amd64
DEB_DIR        ?= build/deb
DEB_MAINTAINER ?= streamqc maintainers <maintainers@streamqc.invalid>
AGENT_YAML     ?= packaging/agent.yaml

# The packaged binary: the program `make build` makes, built apart from bin/
# as a position-independent executable, stripped, with full RELRO and Debian's
# hardening flags for the C parts (cgo: go-astiav), without build paths.
PKG_BIN        ?= $(DEB_DIR)/streamqc
PKG_CGO_CFLAGS ?= -O2 -g -fstack-protector-strong -D_FORTIFY_SOURCE=2
PKG_LDFLAGS    := -s -w -X main.version=$(VERSION) -extldflags '-Wl,-z,relro,-z,now'

# $(call nfpm-deb,PACKAGE,OTHER FLAVOR,SUMMARY,BINARY) (no commas in arguments);
# the copyright, changelog and man page come from $(DEB_DIR)/PACKAGE-doc
# (packaging/deb/docs.sh).
nfpm-deb = env DEB_PACKAGE=$(1) DEB_CONFLICTS=$(2) DEB_DESCRIPTION='$(3)' DEB_BIN='$(4)' \
	DEB_VERSION='$(DEB_VERSION)' DEB_ARCH='$(DEB_ARCH)' DEB_MAINTAINER='$(DEB_MAINTAINER)' \
	DEB_UNIT='$(DEB_DIR)/streamqc.service' DEB_AGENT_YAML='$(AGENT_YAML)' DEB_DOCS='$(DEB_DIR)/$(1)-doc' \
	$(NFPM) package --packager deb --config packaging/deb/nfpm.yaml \
	--target '$(DEB_DIR)/$(1)_$(DEB_VERSION)_$(DEB_ARCH).deb'

# $(call deb-docs,PACKAGE,BINARY[,GO BUILD FLAGS])
deb-docs = GO='$(GO)' packaging/deb/docs.sh '$(DEB_DIR)/$(1)-doc' $(1) '$(2)' '$(DEB_VERSION)' '$(DEB_MAINTAINER)' $(3)

.PHONY: package package-test test-package

package: deps
	@test -n "$(DEB_VERSION)" || { echo "package: no Debian version for VERSION=$(VERSION) (packaging/deb/version.sh)" >&2; exit 1; }
	@test -f "$(AGENT_YAML)" || { echo "package: $(AGENT_YAML) (the sample agent config) is missing" >&2; exit 1; }
	@mkdir -p '$(DEB_DIR)'
	CGO_CFLAGS='$(PKG_CGO_CFLAGS)' $(GO) build -buildmode=pie -trimpath -ldflags "$(PKG_LDFLAGS)" -o '$(PKG_BIN)' ./cmd/streamqc
	'$(PKG_BIN)' service unit --executable /usr/bin/streamqc --config /etc/streamqc/agent.yaml > '$(DEB_DIR)/streamqc.service.tmp'
	@mv '$(DEB_DIR)/streamqc.service.tmp' '$(DEB_DIR)/streamqc.service'
	$(call deb-docs,streamqc,$(PKG_BIN))
	$(call nfpm-deb,streamqc,streamqc-cuda,A/V stream monitoring agent (CPU and NVDEC decoding through FFmpeg),$(PKG_BIN))
	@echo "streamqc-cuda .deb: not built: the cuda binary exists (make portable TAGS=cuda); its package waits for a run on a GPU host (packaging/deb/README.md)"

package-test: package
	MAKE='$(MAKE)' DEB_TEST_QUIET='$(DEB_TEST_QUIET)' packaging/test/deb-install.sh '$(DEB_DIR)/streamqc_$(DEB_VERSION)_$(DEB_ARCH).deb' '$(VERSION)'

# What `make test` (and so CI) runs first: the package test, its PASS lines
# left out (the whole log is kept, its path printed), where it can run (root,
# the Debian mirror answers); else one SKIP line saying why not.
test-package:
	@if why=$$(packaging/test/deb-install.sh --preflight 2>&1); then \
		$(MAKE) -s --no-print-directory package-test DEB_TEST_QUIET=1; \
	else \
		echo "package-test: SKIP: $$why"; \
	fi

# The portable build (issue 11; packaging/portable/README.md): FFmpeg 5.1.9 of
# our own from Debian's source package, static, with NVDEC, TLS and SRT,
# cached per version and configure line outside the repository; the binary
# needs only glibc 2.34+. TAGS=cuda: the cuda flavour (GPU kernels).
TAGS          ?=
PORTABLE_BIN  ?= build/portable/streamqc$(if $(filter cuda,$(TAGS)),-cuda)
RELEASE_DIR   ?= build/release

portable:
	@packaging/portable/build.sh '$(PORTABLE_BIN)' '$(VERSION)' '$(TAGS)'

# Parity on every clip (make test runs a subset).
portable-parity: portable
	STREAMQC_CLIPS=$(CLIPS) STREAMQC_PORTABLE_BIN=$(CURDIR)/$(PORTABLE_BIN) STREAMQC_PARITY=all \
	$(GO) test ./cmd/streamqc -run 'TestPortable' -v -timeout 30m

# streamqc-<version>-linux-amd64.tar.gz, a .deb and an .rpm of the portable binary.
release: portable
	@packaging/portable/release.sh '$(RELEASE_DIR)' '$(VERSION)' '$(PORTABLE_BIN)'

# What the release holds, checked with dpkg-deb and rpm's own tools, and that
# a second build gives the same bytes.
release-test: portable
	@packaging/portable/release-test.sh '$(RELEASE_DIR)' '$(VERSION)' '$(PORTABLE_BIN)'

# make test runs it with only its FAIL lines and its summary.
test-release: portable
	@set -o pipefail; packaging/portable/release-test.sh '$(RELEASE_DIR)' '$(VERSION)' '$(PORTABLE_BIN)' | { grep -v '^PASS ' || true; }

# The CUDA kernels: CUDA C to PTX with Debian's clang 14 (no NVIDIA toolkit),
# checked in and embedded (gpu/kernels); ptx-check recompiles and compares.
CLANG     ?= clang-14
PTX_FLAGS := -x cuda --cuda-device-only --cuda-gpu-arch=sm_75 -nocudainc -nocudalib \
	-Xclang -target-feature -Xclang +ptx63 -O3 -S
.PHONY: ptx ptx-check clang
clang:
	@command -v $(CLANG) >/dev/null || { echo "installing: clang-14" >&2; \
		$$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$( [ "$$(id -u)" -eq 0 ] || echo sudo ) apt-get install -y -qq --no-install-recommends clang-14 >/dev/null; }

ptx: clang
	cd gpu/kernels && $(CLANG) $(PTX_FLAGS) -o kernels.ptx kernels.cu

ptx-check: clang
	@t=$$(mktemp); (cd gpu/kernels && $(CLANG) $(PTX_FLAGS) -o $$t kernels.cu) && \
	if cmp -s $$t gpu/kernels/kernels.ptx; then echo "ptx-check: gpu/kernels/kernels.ptx is what kernels.cu compiles to"; rm -f $$t; \
	else echo "ptx-check: gpu/kernels/kernels.ptx is stale: run make ptx" >&2; diff $$t gpu/kernels/kernels.ptx | head -20 >&2; rm -f $$t; exit 1; fi

# The cuda flavour, as far as a machine without a GPU goes (make test runs it):
# the PTX is what the sources compile to, the cuda build and its test binaries
# compile and vet against cuda.h and the link stub (packaging/cuda-sdk.sh).
.PHONY: cuda-check gpu-check
cuda-check: deps ptx-check
	@sdk=$$(packaging/cuda-sdk.sh) && \
	CGO_CFLAGS="-I$$sdk/include" CGO_LDFLAGS="-L$$sdk/lib" $(GO) vet -tags cuda ./gpu/... ./cmd/streamqc ./analyze ./agent/supervisor && \
	CGO_CFLAGS="-I$$sdk/include" CGO_LDFLAGS="-L$$sdk/lib" $(GO) test -c -tags cuda -o /dev/null ./gpu && \
	echo "cuda-check: the cuda build vets and its test binaries compile (they run on a GPU host: make gpu-check)"

# The bundle for a GPU host (gpu/README.md): build/gpu-check.tar.xz; there,
# `tar -xJf gpu-check.tar.xz && gpu-check/run.sh` writes gpu-check/report.txt.
gpu-check: deps
	packaging/gpu-check/bundle.sh build '$(VERSION)'
