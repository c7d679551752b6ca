#!/usr/bin/env bash
# same-reports.sh OLD_BINARY NEW_BINARY ROOT...: a refactor's check that two rootscan binaries report the same.
# Each ROOT (a directory, or an OCI layout when it holds an index.json) is scanned by both binaries with the same
# vulnerability database (vuln/testdata/osv, imported by each binary into its own database) and the built-in
# baseline on, as JSON, SARIF and HDF; timings and the database's path and build time are removed (key order is kept)
# and the documents compared byte for byte. EXTRA (a jq filter) removes more, such as fields a change deliberately
# added: EXTRA='del(..|.reachable?)'.
# Exit 0 when all are equal; otherwise the first lines of each diff are printed.
set -euo pipefail
old=$1 new=$2
shift 2
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
strip='del(.vulnerabilityDatabase.path?, .vulnerabilityDatabase.built?, (.. | .startedAt?, .durationNs?, .startTime?, .runTimeNs?, .run_time?, .start_time?, .statistics?, .timestamp?))'
strip="$strip | ${EXTRA:-.}"

for bin in old new; do
	"${!bin}" db import --db "$work/db-$bin" "$repo/vuln/testdata/osv" >/dev/null
done
status=0
for root in "$@"; do
	if [[ -f $root/index.json ]]; then target=(--oci "$root"); else target=(--dir "$root"); fi
	for fmt in json sarif hdf; do
		name=$(basename "$root").$fmt
		for bin in old new; do
			# The exit code may say "findings" or "partly scanned": what was written is compared either way, and an
			# empty or broken document fails here instead of comparing equal to another one.
			"${!bin}" scan "${target[@]}" --db "$work/db-$bin" -o "$fmt" >"$work/$name.$bin.raw" 2>"$work/$name.$bin.err" || true
			jq -e "$strip" <"$work/$name.$bin.raw" >"$work/$name.$bin"
		done
		if cmp -s "$work/$name.old" "$work/$name.new"; then
			printf 'same       %s (%s bytes)\n' "$name" "$(wc -c <"$work/$name.new")"
		else
			printf 'DIFFERENT  %s\n' "$name"
			diff "$work/$name.old" "$work/$name.new" | head -n 20 || true
			status=1
		fi
	done
done
exit $status
