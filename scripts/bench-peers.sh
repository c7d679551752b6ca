#!/usr/bin/env bash
# bench-peers.sh: compare rootscan with syft and osv-scalibr on the same root filesystems, for speed (wall time,
# peak RSS; median of RUNS runs) and for what each finds (package counts; (name, version) set differences against
# rootscan, split into OS and language packages). Not part of `make test`: it builds two peers (minutes, once),
# needs root for debootstrap and takes several minutes.
#
#   scripts/bench-peers.sh [ROOT_NAME...]      # default: distroless debian-minbase debian-apps node10k
#
# Environment: RUNS (default 3), WARMUP (untimed runs of each tool before its timed ones, default 1), TOOLS (default
# "rootscan syft syft-image scalibr"; rootscan must stay in it), CACHE (default /var/cache/rootscan-testbed), OUT
# (results directory, default $CACHE/bench-peers/<UTC timestamp>), ROOTSCAN (default bin/rootscan, built by `make build`).
#
# The warm-up run matters: the tools run one after the other, so without it the first one (rootscan) pays for
# whatever of the root's inodes and files the page cache lost since the last run, and the later ones find them
# cached. Measured on debian-apps with the root's file data evicted: rootscan 0.43-0.51 s, scalibr 2.5-3.1 s;
# with it cached: 0.27 s and 0.80 s.
# Roots are cached under $CACHE/roots, peers under $CACHE/peers; delete them to rebuild.
set -euo pipefail

RUNS=${RUNS:-3}
WARMUP=${WARMUP:-1}
CACHE=${CACHE:-${ROOTSCAN_TESTBED_CACHE:-/var/cache/rootscan-testbed}}
PEERS=$CACHE/peers
ROOTS=$CACHE/roots
OUT=${OUT:-$CACHE/bench-peers/$(date -u +%Y%m%dT%H%M%SZ)}
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ROOTSCAN=${ROOTSCAN:-$REPO/bin/rootscan}
SYFT_VERSION=v1.57.0
SCALIBR_VERSION=v0.5.3
read -r -a TOOLS <<<"${TOOLS:-rootscan syft syft-image scalibr}"

log() { printf '==> %s\n' "$*" >&2; }

need_apt() { # need_apt COMMAND PACKAGE
	command -v "$1" >/dev/null && return
	log "installing $2 from apt"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$2" >/dev/null
}

# build_peer NAME MODULE@VERSION: go install outside our module so the peer resolves its own go.mod.
build_peer() {
	local name=$1 mod=$2 stamp=$PEERS/.$1.version
	if [[ -x $PEERS/$name && $(cat "$stamp" 2>/dev/null) == "$mod" ]]; then return; fi
	log "building $mod (takes minutes, once)"
	mkdir -p "$PEERS"
	(cd / && GOBIN=$PEERS GOFLAGS=-mod=mod go install "$mod")
	echo "$mod" >"$stamp"
}

# Roots --------------------------------------------------------------------------------------------------------

root_distroless() {
	local dir=$ROOTS/distroless layout=$ROOTS/distroless-layout
	[[ -d $dir ]] && return
	rm -rf "$layout"
	(cd "$REPO" && go run ./internal/testbed/cmd/mkimage -o "$layout" distroless >/dev/null 2>&1)
	(cd "$REPO" && go run ./internal/testbed/cmd/extract -layout "$layout" -o "$dir")
}

root_debian-minbase() {
	local dir=$ROOTS/debian-minbase
	[[ -d $dir ]] && return
	need_apt debootstrap debootstrap
	# The mirror apt itself uses: the only Debian mirror reachable here.
	local mirror
	mirror=$(grep -rhoE 'https?://[^ ]*debian(/)?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | tr -d ' ' || true)
	rm -rf "$dir.tmp"
	debootstrap --variant=minbase bookworm "$dir.tmp" "${mirror:-http://deb.debian.org/debian}" >"$ROOTS/debootstrap.log" 2>&1
	mv "$dir.tmp" "$dir"
}

# debian-apps: the issue's "497-package Debian root with apps": the debian-minbase root plus, installed with apt in a
# chroot (--no-install-recommends, as images are built), language runtimes and the packages whose files each
# ecosystem's analyzer reads: Python (python3-* with dist-info), Java (a headless JRE, maven and lib*-java jars with
# pom.properties), Ruby (ruby-rails and its ruby-* gemspecs), Node.js, Go (restic, age, gh, rclone) and Rust
# (ripgrep, fd-find, bat, hyperfine, sq) programs, and the usual tools of an application image: about 500 packages.
# (debootstrap --include cannot install them: its resolver ignores virtual packages such as python3-cffi's.)
DEBIAN_APPS=(
	python3 python3-pip python3-venv python3-requests python3-yaml python3-numpy python3-cryptography python3-jinja2
	python3-setuptools python3-lxml python3-psycopg2 python3-flask python3-pandas python3-matplotlib python3-django
	default-jre-headless maven libcommons-lang3-java libguava-java libjackson2-databind-java liblog4j2-java
	libcommons-io-java libslf4j-java libcommons-collections4-java libjoda-time-java libspring-context-java
	ruby ruby-rack ruby-nokogiri ruby-json rake bundler ruby-sinatra ruby-rails nodejs
	restic age gh rclone ripgrep fd-find bat hyperfine sq
	git curl openssh-client ca-certificates procps iproute2 less vim-tiny jq sqlite3 postgresql-client
	nginx-light rsync gnupg xz-utils unzip file build-essential
)

root_debian-apps() {
	local dir=$ROOTS/debian-apps
	[[ -d $dir ]] && return
	root_debian-minbase
	rm -rf "$dir.tmp"
	cp -a "$ROOTS/debian-minbase" "$dir.tmp"
	cp /etc/resolv.conf "$dir.tmp/etc/resolv.conf"
	# Maintainer scripts (the JRE's, ca-certificates-java's) need /proc; the subshell's trap unmounts it whatever
	# happens.
	(
		mount -t proc proc "$dir.tmp/proc"
		trap 'umount "$dir.tmp/proc"' EXIT
		export DEBIAN_FRONTEND=noninteractive LC_ALL=C
		chroot "$dir.tmp" apt-get update -qq
		chroot "$dir.tmp" apt-get install -y -qq --no-install-recommends "${DEBIAN_APPS[@]}"
		chroot "$dir.tmp" apt-get clean
	) >"$ROOTS/apt-apps.log" 2>&1
	rm -rf "$dir.tmp"/var/lib/apt/lists/*
	mv "$dir.tmp" "$dir"
}

# node10k: 10,000 installed npm packages, as `npm install` lays them out: 9,000 top-level (1,000 of them scoped)
# and 1,000 nested under another package's node_modules, plus the application's own package.json and a lockfile-free
# tree (installed packages, not declared ones).
root_node10k() {
	local dir=$ROOTS/node10k
	[[ -d $dir ]] && return
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp/app/node_modules" "$dir.tmp/etc"
	printf 'ID=debian\nVERSION_ID="12"\nPRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\n' >"$dir.tmp/etc/os-release"
	printf '{"name":"bench-app","version":"1.0.0","private":true}\n' >"$dir.tmp/app/package.json"
	local i name path
	for ((i = 0; i < 10000; i++)); do
		if ((i < 8000)); then
			name=pkg-$i path=app/node_modules/$name
		elif ((i < 9000)); then
			name=@scope$((i % 10))/pkg-$i path=app/node_modules/$name
		else
			name=nested-$i path=app/node_modules/pkg-$((i - 9000))/node_modules/$name
		fi
		mkdir -p "$dir.tmp/$path"
		printf '{\n  "name": "%s",\n  "version": "%d.%d.%d",\n  "description": "synthetic package %d",\n  "main": "index.js",\n  "license": "MIT"\n}\n' \
			"$name" $((i % 7)) $((i % 13)) $((i % 100)) "$i" >"$dir.tmp/$path/package.json"
		printf 'module.exports = %d;\n' "$i" >"$dir.tmp/$path/index.js"
	done
	mv "$dir.tmp" "$dir"
}

# Runs ---------------------------------------------------------------------------------------------------------

# tool_cmd TOOL ROOT OUTFILE: the command line, as an array in CMD.
tool_cmd() {
	local tool=$1 root=$2 out=$3
	case $tool in
	rootscan) CMD=("$ROOTSCAN" scan --dir "$root" -o json --no-baseline --db /nonexistent) ;;  # inventory only, the peers' job
	# The issue's command: a dir: source, syft's defaults for directories (declared packages: lockfiles).
	syft) CMD=("$PEERS/syft" scan "dir:$root" -o "cyclonedx-json=$out" -q) ;;
	# A container root is an image's filesystem: syft's image catalogers (installed packages).
	syft-image) CMD=("$PEERS/syft" scan "dir:$root" --override-default-catalogers image -o "cyclonedx-json=$out" -q) ;;
	scalibr) CMD=("$PEERS/scalibr" --root "$root" --o "cdx-json=$out") ;;
	esac
}

# run_tool TOOL ROOTNAME: RUNS timed runs; appends "root tool run wall_s maxrss_kb rc" rows to $OUT/runs.tsv and
# keeps the last run's output as $OUT/ROOTNAME.TOOL.out.
run_tool() {
	local tool=$1 rn=$2 root=$ROOTS/$2 r out=$OUT/$2.$1.out tf=$OUT/.time rc
	for ((r = 1; r <= WARMUP; r++)); do
		tool_cmd "$tool" "$root" "$out"
		HOME=$OUT/home-$tool "${CMD[@]}" >/dev/null 2>&1 || true
		rm -rf "$OUT/home-$tool" "$out"
	done
	for ((r = 1; r <= RUNS; r++)); do
		rm -f "$out"
		tool_cmd "$tool" "$root" "$out"
		sync
		rc=0
		# Wall time from bash's microsecond clock (time -v rounds to 10 ms); peak RSS from time -v. Peers keep
		# caches in $HOME/.cache; a fresh HOME per run keeps every run equal.
		local t0=$EPOCHREALTIME t1
		if [[ $tool == rootscan ]]; then
			HOME=$OUT/home-$tool /usr/bin/time -v -o "$tf" "${CMD[@]}" >"$out" 2>"$OUT/$rn.$tool.stderr" || rc=$?
		else
			HOME=$OUT/home-$tool /usr/bin/time -v -o "$tf" "${CMD[@]}" >/dev/null 2>"$OUT/$rn.$tool.stderr" || rc=$?
		fi
		t1=$EPOCHREALTIME
		rm -rf "$OUT/home-$tool"
		awk -v rn="$rn" -v t="$tool" -v r="$r" -v rc="$rc" -v t0="$t0" -v t1="$t1" '
			/Maximum resident set size/ { m = $NF }
			END { printf "%s\t%s\t%d\t%.3f\t%d\t%s\n", rn, t, r, t1 - t0, m, rc }' "$tf" >>"$OUT/runs.tsv"
		log "$rn $tool run $r: $(tail -n1 "$OUT/runs.tsv" | cut -f4,5,6 | awk '{printf "%ss %d MiB rc=%s", $1, $2/1024, $3}')"
	done
}

# packages TOOL ROOTNAME: "class<TAB>name<TAB>version" lines, sorted and unique; class is os or lang. Versions are
# normalised only where tools spell the same thing differently (Go's "v" prefix, "go" before stdlib's version,
# scalibr's "go" for Go's standard library).
packages() {
	local tool=$1 rn=$2 out=$OUT/$2.$1.out
	[[ -s $out ]] || return 0
	case $tool in
	rootscan)
		jq -r '.reports[0].result.packages[]? |
			[(if (.ecosystem|test("^(Debian|Ubuntu|Alpine|Red Hat|Rocky|AlmaLinux|SUSE|openSUSE|Photon|Wolfi|Chainguard|Mageia|openEuler)"))
			  then "os" else "lang" end), .name, .version] | @tsv' "$out" ;;
	*)
		# CycloneDX from syft and scalibr: every component with a purl; the purl type tells OS from language.
		jq -r '[.. | objects | select(has("purl") and has("name"))] | unique_by(.purl)[] |
			[(if (.purl|test("^pkg:(deb|apk|rpm|alpm|ebuild)/")) then "os" else "lang" end),
			 ((.group // "") as $g | if (.purl|test("^pkg:golang/go@")) then "stdlib"
			   elif $g != "" and (.purl|test("^pkg:(npm|golang)/")) then $g + "/" + .name else .name end),
			 (.version // "")] | @tsv' "$out" ;;
	esac | awk -F'\t' 'BEGIN { OFS = "\t" } { v = $3; sub(/^v/, "", v); if ($2 == "stdlib") sub(/^go/, "", v); print $1, $2, v }' |
		LC_ALL=C sort -u
}

median() { LC_ALL=C sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) print "-"; else print a[int((NR + 1) / 2)] }'; }

# Main ---------------------------------------------------------------------------------------------------------

main() {
	local roots=("$@")
	((${#roots[@]})) || roots=(distroless debian-minbase debian-apps node10k)
	need_apt jq jq
	[[ -x /usr/bin/time ]] || need_apt /usr/bin/time time
	mkdir -p "$ROOTS" "$OUT"
	build_peer syft github.com/anchore/syft/cmd/syft@$SYFT_VERSION
	build_peer scalibr github.com/google/osv-scalibr/binary/scalibr@$SCALIBR_VERSION
	(cd "$REPO" && make -s build)
	local rn tool
	for rn in "${roots[@]}"; do
		log "root $rn"
		"root_$rn"
	done
	: >"$OUT/runs.tsv"
	for rn in "${roots[@]}"; do
		for tool in "${TOOLS[@]}"; do run_tool "$tool" "$rn"; done
		for tool in "${TOOLS[@]}"; do packages "$tool" "$rn" >"$OUT/$rn.$tool.pkgs"; done
		for tool in "${TOOLS[@]}"; do
			[[ $tool == rootscan ]] && continue
			# Per class: what the peer found that rootscan did not, and the reverse.
			local class
			for class in os lang; do
				LC_ALL=C comm -23 <(grep -P "^$class\t" "$OUT/$rn.$tool.pkgs" | cut -f2,3) \
					<(grep -P "^$class\t" "$OUT/$rn.rootscan.pkgs" | cut -f2,3) >"$OUT/$rn.$class.only-$tool.tsv"
				LC_ALL=C comm -13 <(grep -P "^$class\t" "$OUT/$rn.$tool.pkgs" | cut -f2,3) \
					<(grep -P "^$class\t" "$OUT/$rn.rootscan.pkgs" | cut -f2,3) >"$OUT/$rn.$class.only-rootscan-vs-$tool.tsv"
			done
		done
	done
	report "${roots[@]}" | tee "$OUT/summary.txt"
	log "results in $OUT"
}

# report ROOTS...: the table (medians, ratios) and the difference counts.
report() {
	local rn tool w m n nos nlang rw rm
	printf '%-15s %-11s %9s %9s %7s %5s %5s %12s %12s\n' root tool wall_s rss_MiB pkgs os lang wall/rootscan rss/rootscan
	for rn in "$@"; do
		rw=$(awk -F'\t' -v rn="$rn" '$1 == rn && $2 == "rootscan" { print $4 }' "$OUT/runs.tsv" | median)
		rm=$(awk -F'\t' -v rn="$rn" '$1 == rn && $2 == "rootscan" { print $5 }' "$OUT/runs.tsv" | median)
		for tool in "${TOOLS[@]}"; do
			w=$(awk -F'\t' -v rn="$rn" -v t="$tool" '$1 == rn && $2 == t { print $4 }' "$OUT/runs.tsv" | median)
			m=$(awk -F'\t' -v rn="$rn" -v t="$tool" '$1 == rn && $2 == t { print $5 }' "$OUT/runs.tsv" | median)
			n=$(wc -l <"$OUT/$rn.$tool.pkgs")
			nos=$(grep -cP '^os\t' "$OUT/$rn.$tool.pkgs" || true)
			nlang=$(grep -cP '^lang\t' "$OUT/$rn.$tool.pkgs" || true)
			awk -v rn="$rn" -v t="$tool" -v w="$w" -v m="$m" -v n="$n" -v o="$nos" -v l="$nlang" -v rw="$rw" -v rm="$rm" 'BEGIN {
				printf "%-15s %-11s %9.3f %9.1f %7d %5d %5d %12s %12s\n", rn, t, w, m / 1024, n, o, l,
					(t == "rootscan" ? "1" : (w > 0 ? sprintf("%.3f", rw / w) : "-")),
					(t == "rootscan" ? "1" : (m > 0 ? sprintf("%.3f", rm / m) : "-")) }'
		done
	done
	printf '\nratios are rootscan/peer (below 1: rootscan is faster or smaller)\n\n(name, version) differences, files %s/ROOT.CLASS.only-*.tsv:\n' "$OUT"
	for rn in "$@"; do
		for tool in "${TOOLS[@]}"; do
			[[ $tool == rootscan ]] && continue
			printf '%-15s %-11s only-peer os=%d lang=%d   only-rootscan os=%d lang=%d\n' "$rn" "$tool" \
				"$(wc -l <"$OUT/$rn.os.only-$tool.tsv")" "$(wc -l <"$OUT/$rn.lang.only-$tool.tsv")" \
				"$(wc -l <"$OUT/$rn.os.only-rootscan-vs-$tool.tsv")" "$(wc -l <"$OUT/$rn.lang.only-rootscan-vs-$tool.tsv")"
		done
	done
}

main "$@"
