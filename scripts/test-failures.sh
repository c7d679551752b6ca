#!/usr/bin/env bash
# test-failures.sh LOG: what the tests of each failing package said (their t.Log/t.Error lines with their
# continuation lines, the MEASURE lines left out), from a `go test -v` log, so that a CI run that shows only its
# summary still says why it failed.
set -euo pipefail
awk '
	/^(ok|FAIL)[ \t]/ { if ($1 == "FAIL" && buf != "") printf "%s:\n%s", $2, buf; buf = ""; cont = 0; next }
	/^ +[A-Za-z0-9_]+_test\.go:[0-9]+: / { cont = !/ MEASURE /; if (cont) buf = buf $0 "\n"; next }
	/^        / && cont { buf = buf $0 "\n"; next }
	/^panic: / { buf = buf $0 "\n" }
	{ cont = 0 }
' "$1" | tail -n 200
