#!/usr/bin/env bash
# build-containerd.sh VERSION [OUTDIR]
#
# Builds containerd and containerd-shim-runc-v2 of the given release from the Go
# module proxy, so the integration tests can run against a containerd other than
# the distribution's. Prints the path of the containerd binary on stdout; point
# ROOTSCAN_CONTAINERD at it (the testbed finds the shim next to it).
#
#   VERSION  v2.x.y (built with `go install`) or v1.7.x (built from a small wrapper
#            module, because containerd 1.7's go.mod has exclude directives that
#            `go install pkg@version` refuses)
#   OUTDIR   default /var/cache/rootscan-testbed/containerd-VERSION
#
# Does nothing when OUTDIR already holds both binaries of that version.
set -euo pipefail

version=${1:?usage: build-containerd.sh VERSION [OUTDIR]}
outdir=${2:-/var/cache/rootscan-testbed/containerd-$version}

if [[ -x $outdir/containerd && -x $outdir/containerd-shim-runc-v2 ]] &&
	"$outdir/containerd" --version 2>/dev/null | grep -qF " $version "; then
	echo "$outdir/containerd"
	exit 0
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
# Build outside any module: the caller's go.mod must not steer the build.
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=${CGO_ENABLED:-1}
# no_btrfs: Debian has no btrfs headers by default; the testbed uses overlayfs.
tags=no_btrfs

case $version in
v2.*)
	mod=github.com/containerd/containerd/v2
	ldflags="-X $mod/version.Version=$version"
	(cd / && GOBIN=$outdir go install -tags "$tags" -ldflags "$ldflags" \
		"$mod/cmd/containerd@$version" "$mod/cmd/containerd-shim-runc-v2@$version") >&2
	;;
v1.7.*)
	# containerd 1.7's go.mod has exclude directives, which `go install
	# pkg@version` refuses; build from a wrapper module that requires
	# containerd and carries over its replace and exclude directives.
	mod=github.com/containerd/containerd
	work=$(mktemp -d)
	trap 'rm -rf "$work"' EXIT
	cd "$work"
	go mod init rootscan.invalid/containerd-build >&2
	go get "$mod@$version" >&2
	modfile=$(go list -m -f '{{.GoMod}}' "$mod")
	awk '/^(replace|exclude) *\(/{blk=$1; next} blk&&/^\)/{blk=""; next}
		blk{print blk " " $0; next} /^(replace|exclude) /{print}' "$modfile" >>go.mod
	ldflags="-X $mod/version.Version=$version"
	GOBIN=$outdir go install -tags "$tags" -ldflags "$ldflags" \
		"$mod/cmd/containerd" "$mod/cmd/containerd-shim-runc-v2" >&2
	;;
*)
	echo "build-containerd.sh: unsupported version $version (want v2.x.y or v1.7.x)" >&2
	exit 2
	;;
esac

"$outdir/containerd" --version >&2
echo "$outdir/containerd"
