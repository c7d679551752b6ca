# rootscan: build, demo, tests. Targets that need containerd install it from Debian's apt when missing (root).
GO        ?= go
VERSION   ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)
CACHE     ?= $(or $(ROOTSCAN_TESTBED_CACHE),/var/cache/rootscan-testbed)
CTRD2_VER ?= v2.4.2
CTRD2     := $(CACHE)/containerd-$(CTRD2_VER)/containerd
PKGS      := ./...

export ROOTSCAN_TESTBED_CACHE := $(CACHE)

.PHONY: all build deps containerd2 demo test test-unit test-integration test-integration-v2 vet fuzz bench clean

all: build

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/rootscan ./cmd/rootscan

# containerd (1.6, the CRI plugin included) and runc from Debian; dpkg-deb builds the test images.
deps:
	@command -v containerd >/dev/null && command -v runc >/dev/null && command -v dpkg-deb >/dev/null || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends containerd runc dpkg; }

# containerd 2.x from the Go module proxy, cached under $(CACHE).
containerd2:
	bash internal/testbed/build-containerd.sh $(CTRD2_VER) $(dir $(CTRD2)) >/dev/null

# A private containerd with distroless pods, scanned by rootscan; everything is torn down afterwards.
demo: deps build
	$(GO) run ./internal/testbed/cmd/demo --rootscan bin/rootscan

vet:
	$(GO) vet $(PKGS)
	@test -z "$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

test-unit:
	$(GO) test -count=1 $(PKGS)

# The whole suite: unit tests, fuzz seeds, integration tests against Debian's containerd 1.6 and containerd 2.x.
# ROOTSCAN_INTEGRATION=require makes every skipped integration test a failure.
test: deps vet containerd2
	ROOTSCAN_INTEGRATION=require $(GO) test -count=1 -timeout 30m $(PKGS)
	ROOTSCAN_INTEGRATION=require ROOTSCAN_CONTAINERD=$(CTRD2) $(GO) test -count=1 -timeout 30m ./internal/testbed/... ./integration/...

fuzz:
	$(GO) test ./scan -run '^$$' -fuzz FuzzParseDpkgStatus -fuzztime 60s
	$(GO) test ./scan -run '^$$' -fuzz FuzzParseOSRelease -fuzztime 60s

bench: deps build
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

clean:
	rm -rf bin
