#!/usr/bin/env bash
# fuzz-all.sh TIME: runs every Fuzz* target of the module for TIME each (go test -fuzztime syntax: 10s, 1m, 1000x),
# one after the other (the fuzzing engine takes one target at a time). The seed corpora already run with `go test`;
# this is the bounded exploration CI adds (.ci/run: 10s each). A failing target stops the run with its input saved
# under the package's testdata/fuzz.
#
# Each package with fuzz targets is built once, instrumented (go test -c -fuzz), and its targets are run from that
# binary the way `go test -fuzz` runs them (in the package's directory, with go test's fuzz cache dir): `go test
# -fuzz` per target relinked the package's test binary for each of its targets (26 in scan), and listing the
# targets with `go test -list` built a test binary of every package of the module.
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
time=${1:-10s}
cache=$($GO env GOCACHE)/fuzz
bindir=$(mktemp -d)
# The targets' temp files (t.TempDir, the rpm analyzer's private copies) and the engine's shared memory files go to a
# tmpfs when there is one. On a disk-backed /tmp every file a run creates and removes costs disk I/O, and on a root
# mounted -o discard freeing its blocks waits for the device: FuzzRPMDB ran 30-280 execs in 12-20 s there and
# 4,600-5,100 on /dev/shm, and its workers took seconds to exit. FUZZ_TMPDIR overrides the choice.
tmp=${FUZZ_TMPDIR:-}
if [ -z "$tmp" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	tmp=$(mktemp -d -p /dev/shm rootscan-fuzz.XXXXXX)
	trap 'rm -rf "$bindir" "$tmp"' EXIT
else
	tmp=${tmp:-${TMPDIR:-/tmp}}
	trap 'rm -rf "$bindir"' EXIT
fi

# fuzz PKG DIR BIN TARGET [LOG]: one target, output to stdout and LOG.
fuzz() {
	(cd "$2" && TMPDIR="$tmp" "$3" -test.run '^$' -test.fuzz "^$4\$" -test.fuzztime "$time" \
		-test.fuzzcachedir "$cache/$1" -test.paniconexit0 -test.timeout 10m) 2>&1 | tee "${5:-/dev/null}"
}

# Each package: import path, directory, test files.
list=$($GO list -f '{{.ImportPath}} {{.Dir}} {{join .TestGoFiles " "}} {{join .XTestGoFiles " "}}' ./...)
n=0
while read -r pkg dir files <&3; do
	# Only packages whose test files declare a fuzz target are built; the binary then lists them itself.
	[ -n "$files" ] && (cd "$dir" && grep -q '^func Fuzz' $files) || continue
	bin="$bindir/${pkg//\//_}.test"
	start=$SECONDS
	$GO test -c -fuzz '^Fuzz' -o "$bin" "$pkg"
	echo "fuzz-all: $pkg built in $((SECONDS - start))s"
	for target in $(cd "$dir" && "$bin" -test.list '^Fuzz' | grep '^Fuzz' || true); do
		echo "==> $pkg $target ($time)"
		start=$SECONDS
		log=$(mktemp)
		if ! fuzz "$pkg" "$dir" "$bin" "$target" "$log"; then
			# Go's fuzzing coordinator can end a run that found nothing with a bare "context deadline exceeded" as
			# -fuzztime runs out (golang/go#75804: its stop() compares the error with the workers' context before
			# the deadline has reached that child context; fixed in Go 1.27, not in 1.26). A loaded machine widens
			# the window. That is not a failing input: run the target once more, and fail if it recurs.
			if grep -q '^    context deadline exceeded$' "$log" && ! grep -q 'Failing input written' "$log"; then
				echo "fuzz-all: $target: the engine's deadline race, not a failing input; running it again"
				fuzz "$pkg" "$dir" "$bin" "$target"
			else
				rm -f "$log"
				exit 1
			fi
		fi
		rm -f "$log"
		echo "fuzz-all: $target took $((SECONDS - start))s"
		n=$((n + 1))
	done
done 3<<<"$list"
echo "fuzz-all: $n targets, $time each"
