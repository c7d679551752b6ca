#!/usr/bin/env bash
# build-kube.sh [OUTDIR]
#
# Builds a single-node Kubernetes from the Go module proxy for the kube test harness
# (internal/testbed/kube): etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
# kubelet and kubectl, and the CNI reference plugins bridge, host-local and loopback
# (under OUTDIR/cni). Prints OUTDIR on stdout; point ROOTSCAN_KUBE at it.
#
#   OUTDIR   default /var/cache/rootscan-testbed/kube-$KUBE_VERSION
#
# Kubernetes and etcd are built from the wrapper modules next to this script (their own
# go.mod files replace sibling modules with repository directories, which `go install
# pkg@version` refuses); the CNI plugins with `go install`. Does nothing when OUTDIR's
# stamp says it already holds this build.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
kube_version=$(awk '$1 == "k8s.io/kubernetes" && $2 ~ /^v/ {print $2}' "$here/kubernetes/go.mod")
etcd_version=$(awk '$1 == "go.etcd.io/etcd/server/v3" && $2 ~ /^v/ {print $2}' "$here/etcd/go.mod")
cni_version=v1.9.1
: "${kube_version:?no k8s.io/kubernetes version in kubernetes/go.mod}" "${etcd_version:?no etcd version in etcd/go.mod}"
outdir=${1:-/var/cache/rootscan-testbed/kube-$kube_version}

# The stamp names every input, so a changed wrapper module rebuilds.
stamp="kubernetes $kube_version etcd $etcd_version cni-plugins $cni_version go $(go env GOVERSION)
$(cat "$here"/kubernetes/go.sum "$here"/etcd/go.sum | sha256sum | cut -d' ' -f1)"
bins=(etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kubectl cni/bridge cni/host-local cni/loopback)

complete() {
	[[ -f $outdir/STAMP && $(cat "$outdir/STAMP") == "$stamp" ]] || return 1
	for b in "${bins[@]}"; do [[ -x $outdir/$b ]] || return 1; done
}
if complete; then
	echo "$outdir"
	exit 0
fi

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
rm -f "$outdir/STAMP"
export GOWORK=off GOFLAGS=-mod=readonly CGO_ENABLED=0

major=${kube_version#v}; major=${major%%.*}
minor=${kube_version#v*.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
	ldflags+=" -X $pkg.gitVersion=$kube_version -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
done
(cd "$here/kubernetes" && go build -trimpath -ldflags "$ldflags" -o "$outdir/" \
	k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager \
	k8s.io/kubernetes/cmd/kube-scheduler k8s.io/kubernetes/cmd/kubelet k8s.io/kubernetes/cmd/kubectl) >&2

(cd "$here/etcd" && go build -trimpath -ldflags "-s -w" -o "$outdir/etcd" go.etcd.io/etcd/server/v3) >&2

mkdir -p "$outdir/cni"
(cd / && GOFLAGS=-mod=mod GOBIN=$outdir/cni go install -trimpath -ldflags "-s -w" \
	"github.com/containernetworking/plugins/plugins/main/bridge@$cni_version" \
	"github.com/containernetworking/plugins/plugins/ipam/host-local@$cni_version" \
	"github.com/containernetworking/plugins/plugins/main/loopback@$cni_version") >&2

"$outdir/kubelet" --version >&2
"$outdir/etcd" --version >&2
echo "$stamp" >"$outdir/STAMP"
echo "$outdir"
