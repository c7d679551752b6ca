#!/usr/bin/env bash
# build-tool.sh TOOL VERSION [OUTDIR]
#
# Builds one of the tools the deploy/ tests run (promtool for the alert rule unit tests, helm and kustomize to
# render the chart and the base) from the Go module proxy, like internal/testbed/build-containerd.sh does for
# containerd: a fresh Debian machine has none of them, and a pinned version built from source is what CI can rely on.
# Prints the path of the binary on stdout.
#
#   TOOL     promtool | helm | kustomize
#   VERSION  the Go module version (promtool: v0.316.0 is Prometheus v3.16.0; helm: v3.x.y; kustomize: v5.x.y)
#   OUTDIR   default ${ROOTSCAN_TESTBED_CACHE:-/var/cache/rootscan-testbed}/TOOL-VERSION
#
# Does nothing when OUTDIR already holds the binary (a stamp file records the version it was built from).
set -euo pipefail

tool=${1:?usage: build-tool.sh TOOL VERSION [OUTDIR]}
version=${2:?usage: build-tool.sh TOOL VERSION [OUTDIR]}
outdir=${3:-${ROOTSCAN_TESTBED_CACHE:-/var/cache/rootscan-testbed}/$tool-$version}

case $tool in
promtool)
	# remove_all_sd leaves out the cloud service discoveries (AWS, Azure, GCE, Kubernetes, ...): promtool's rule
	# tests need none of them, and without them the build is several times smaller and faster.
	pkg=github.com/prometheus/prometheus/cmd/promtool
	tags=remove_all_sd
	# Prometheus tags its Go module v0.MMM.P for release v3.MM.P (v0.316.0 is v3.16.0).
	minor=${version#v0.}
	minor=${minor%%.*}
	ldflags="-X github.com/prometheus/common/version.Version=${minor:0:1}.${minor:1}.${version##*.}"
	;;
helm)
	pkg=helm.sh/helm/v3/cmd/helm
	tags=
	ldflags="-X helm.sh/helm/v3/internal/version.version=$version"
	;;
kustomize)
	pkg=sigs.k8s.io/kustomize/kustomize/v5
	tags=
	ldflags=
	;;
*)
	echo "build-tool.sh: unknown tool $tool (want promtool, helm or kustomize)" >&2
	exit 2
	;;
esac

if [[ -x $outdir/$tool && -f $outdir/.version && $(<"$outdir/.version") == "$pkg@$version" ]]; then
	echo "$outdir/$tool"
	exit 0
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
# Build outside any module: the caller's go.mod must not steer the build.
export GOFLAGS=-mod=mod GOWORK=off CGO_ENABLED=0
start=$SECONDS
(cd / && GOBIN=$outdir go install -trimpath -tags "$tags" -ldflags "$ldflags" "$pkg@$version") >&2
echo "$pkg@$version" >"$outdir/.version"
echo "build-tool.sh: built $tool $version in $((SECONDS - start))s" >&2
echo "$outdir/$tool"
