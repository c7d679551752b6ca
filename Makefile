# rootscan: build, demo, tests. Targets that need containerd install it from Debian's apt when missing (root).
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
CACHE     ?= $(or $(ROOTSCAN_TESTBED_CACHE),/var/cache/rootscan-testbed)
CTRD2_VER ?= v2.4.2
CTRD2     := $(CACHE)/containerd-$(CTRD2_VER)/containerd
CTRD17_VER ?= v1.7.35
CTRD17    := $(CACHE)/containerd-$(CTRD17_VER)/containerd
TESTLOG   := $(or $(TMPDIR),/tmp)/rootscan-test
SHELL     := bash
PKGS      := ./...

export ROOTSCAN_TESTBED_CACHE := $(CACHE)

# promtool (alert rule unit tests), helm and kustomize (chart and base rendering) for the deploy/ tests, built from
# the Go module proxy by deploy/tools/build-tool.sh and cached under $(CACHE). Cold builds (downloads included) on 2
# cores shared with other builds: promtool 399 s, helm 615 s, kustomize 96 s; once, then cached.
PROMTOOL_VER  ?= v0.316.0
HELM_VER      ?= v3.22.0
KUSTOMIZE_VER ?= v5.8.2
export ROOTSCAN_PROMTOOL  := $(CACHE)/promtool-$(PROMTOOL_VER)/promtool
export ROOTSCAN_HELM      := $(CACHE)/helm-$(HELM_VER)/helm
export ROOTSCAN_KUSTOMIZE := $(CACHE)/kustomize-$(KUSTOMIZE_VER)/kustomize

# A single-node Kubernetes for internal/testbed/kube: etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet, kubectl and the CNI plugins bridge, host-local and loopback, built from the Go module proxy by
# internal/testbed/kube/build/build-kube.sh (wrapper modules pin the versions) and cached under $(CACHE). Cold build
# (empty Go build cache, modules already downloaded) on 2 cores shared with ~8 other builds (load ~20): 1517 s wall,
# 546 s of CPU (so about 5 minutes on 2 idle cores); once, then cached (427 MB).
KUBE_VER := $(shell awk '$$1 == "k8s.io/kubernetes" && $$2 ~ /^v/ {print $$2}' internal/testbed/kube/build/kubernetes/go.mod)
export ROOTSCAN_KUBE := $(CACHE)/kube-$(KUBE_VER)

.PHONY: all build deps containerd2 containerd17 deploy-tools kube demo test test-unit test-integration test-integration-v2 vet crossbuild fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rootscan ./cmd/rootscan

# containerd (1.6, the CRI plugin included) and runc from Debian; dpkg-deb builds the test images; objcopy (binutils)
# adds cargo-auditable data to the Rust test binaries.
deps:
	@command -v containerd >/dev/null && command -v runc >/dev/null && command -v dpkg-deb >/dev/null && command -v objcopy >/dev/null \
		&& command -v rsyslogd >/dev/null && ls /usr/lib/*/rsyslog/lmnsd_gtls.so >/dev/null 2>&1 || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends containerd runc dpkg binutils \
			rsyslog rsyslog-gnutls; }

# containerd 2.x and 1.7 from the Go module proxy, cached under $(CACHE) (about a minute each, once).
containerd2:
	bash internal/testbed/build-containerd.sh $(CTRD2_VER) $(dir $(CTRD2)) >/dev/null

containerd17:
	bash internal/testbed/build-containerd.sh $(CTRD17_VER) $(dir $(CTRD17)) >/dev/null

# The eBPF programs under bpf/ (one folder per program: C source, //go:generate line, committed Go loader and
# object, so `go build` needs no clang). `make bpf` recompiles them with clang and libbpf's headers from Debian's apt
# and bpf2go (pinned in go.mod's tool block); bpf-check regenerates them in a scratch copy and fails when the
# committed output is not what the sources generate (same clang: Debian 12's clang 14).
BPF_PROGS := exec mmap
.PHONY: bpf bpf-deps bpf-check
bpf-deps:
	@command -v clang >/dev/null && command -v llvm-strip >/dev/null && test -f /usr/include/bpf/bpf_helpers.h || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang llvm libbpf-dev; }

bpf: bpf-deps
	$(GO) generate $(addprefix ./bpf/,$(BPF_PROGS))

bpf-check: bpf-deps
	@set -e; bpf2go=$$($(GO) tool -n bpf2go); tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; cp -r bpf "$$tmp/"; \
	for p in $(BPF_PROGS); do \
		args=$$(sed -n 's|^//go:generate go tool bpf2go ||p' bpf/$$p/gen.go); \
		(cd "$$tmp/bpf/$$p" && eval "$$bpf2go $$args" >/dev/null); \
		for f in bpf/$$p/*_bpfel.go bpf/$$p/*_bpfel.o; do \
			cmp -s "$$f" "$$tmp/$$f" || { echo "$$f is not what bpf/$$p's sources generate: run make bpf"; exit 1; }; \
		done; \
	done; echo "bpf: generated output matches the sources"

kube:
	bash internal/testbed/kube/build/build-kube.sh $(ROOTSCAN_KUBE) >/dev/null

deploy-tools:
	bash deploy/tools/build-tool.sh promtool $(PROMTOOL_VER) $(dir $(ROOTSCAN_PROMTOOL)) >/dev/null
	bash deploy/tools/build-tool.sh helm $(HELM_VER) $(dir $(ROOTSCAN_HELM)) >/dev/null
	bash deploy/tools/build-tool.sh kustomize $(KUSTOMIZE_VER) $(dir $(ROOTSCAN_KUSTOMIZE)) >/dev/null

# A private containerd with distroless pods, scanned by rootscan; everything is torn down afterwards.
demo: deps build
	$(GO) run ./internal/testbed/cmd/demo --rootscan bin/rootscan

vet: crossbuild
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

# What a laptop needs (scan --dir, scan --oci, sbom, db) must build on macOS and Windows: Linux-only code lives in
# *_linux.go files with an *_other.go fallback that says "needs Linux" (containerd's core/mount is the model).
# CROSS_VET are vetted for darwin, tests included; CROSS_BUILD are built for darwin and windows: the CLI and what a
# laptop runs (scan --dir, scan --oci, sbom, db). Node and daemon commands build there and say they need Linux. Left
# out: bpf/ (Linux eBPF), and vet of packages whose tests drive the Linux-only test bed (exporter, fsaccess, node, cli).
CROSS_VET   := ./report/... ./sbom/... ./vuln/... ./cri/... ./scan/... ./compliance/... ./output/...
CROSS_BUILD := $(CROSS_VET) ./exporter/... ./fsaccess/... ./node/... ./cmd/rootscan

crossbuild:
	GOOS=darwin $(GO) vet $(CROSS_VET)
	GOOS=darwin $(GO) build $(CROSS_BUILD)
	GOOS=windows $(GO) build $(CROSS_BUILD)

test-unit:
	$(GO) test -count=1 $(PKGS)

# The whole suite: unit tests, fuzz seeds, integration tests against Debian's containerd 1.6, containerd 2.x and 1.7.
# ROOTSCAN_INTEGRATION=require makes every skipped integration test a failure; any "--- SKIP" fails the run too.
test: deps vet bpf-check containerd2 containerd17 deploy-tools kube
	$(call gotest,1.6,,$(PKGS))
	$(call gotest,2.x,$(CTRD2),./internal/testbed/... ./integration/...)
	$(call gotest,1.7,$(CTRD17),./internal/testbed/... ./integration/...)

# gotest(label, containerd binary or empty for Debian's, packages)
define gotest
	@echo "==> go test against containerd $(1)"
	set -o pipefail; ROOTSCAN_INTEGRATION=require ROOTSCAN_CONTAINERD=$(2) $(GO) test -count=1 -timeout 30m -v $(3) \
		| tee $(TESTLOG)-$(1).log | grep -E '^(ok|FAIL|--- (FAIL|SKIP)|panic:)' \
		|| { echo "what the failing packages' tests said (the whole log: $(TESTLOG)-$(1).log):"; \
			scripts/test-failures.sh $(TESTLOG)-$(1).log; exit 1; }
	@! grep -E -e '--- SKIP' $(TESTLOG)-$(1).log || { echo "tests were skipped: CI requires them to run"; exit 1; }
endef

# Every Fuzz* target of the module for a minute each (found by scripts/fuzz-all.sh, so no list to keep in step).
fuzz:
	GO=$(GO) ./scripts/fuzz-all.sh 60s

# Every Fuzz* target of the module for FUZZTIME each: what .ci/run adds to the seeds `make test` runs.
FUZZTIME ?= 10s
.PHONY: fuzz-ci
fuzz-ci:
	GO=$(GO) ./scripts/fuzz-all.sh $(FUZZTIME)

# Go benchmarks, then rootscan against syft and scalibr on the issue's roots (bench-peers, below); the peers' run
# builds the roots the integration benchmarks of the debian-apps root read.
bench: deps build
	ROOTSCAN=$(CURDIR)/bin/rootscan bash scripts/bench-peers.sh
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin

# rootscan against syft and osv-scalibr on a distroless, a Debian minbase, a ~500-package Debian root with apps
# (Python, Java, Ruby, Go, Rust) and a 10k node_modules root: wall time,
# peak RSS and (name, version) differences (builds the peers and roots once, under $(CACHE)). Not part of `test`.
.PHONY: bench-peers
bench-peers: build
	ROOTSCAN=$(CURDIR)/bin/rootscan bash scripts/bench-peers.sh

# The scanner's image, built in Go without a docker engine (internal/imagebuild): bin/image/oci (OCI layout),
# bin/image/rootscan.tar (also `docker load`-able), its SBOM and image.env; prints repository:tag@digest. A release:
# `make image VERSION=0.1.0 IMAGE_PIN=1` also points deploy/ at it. Reproducible: see deploy/README.md.
IMAGE_REPO ?= ghcr.io/rootscan/rootscan
IMAGE_DIR  ?= bin/image
IMAGE_PIN  ?=
.PHONY: image
image:
	$(GO) run ./internal/imagebuild/cmd/mkimage -version $(VERSION) -repository $(IMAGE_REPO) -o $(IMAGE_DIR) \
		$(if $(IMAGE_PIN),-pin deploy)
