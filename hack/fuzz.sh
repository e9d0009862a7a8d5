#!/usr/bin/env bash
# Runs every Go fuzz target of the module for a bounded time each: hack/fuzz.sh [DURATION].
# A crash is saved under the package's testdata/fuzz/ and fails the run; commit it with its fix,
# and it becomes a regression test that every `go test` runs.
set -euo pipefail
cd "$(dirname "$0")/.."
time=${1:-60s}
status=0
log=$(mktemp) # not a fixed path: make test may run in several checkouts at once
trap 'rm -f "$log"' EXIT
# inputs counts the saved inputs of a target (its testdata/fuzz directory may not exist).
inputs() { if [ -d "$1" ]; then find "$1" -type f | wc -l; else echo 0; fi; }
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($time)"
		dir="$(go list -f '{{.Dir}}' "$pkg")/testdata/fuzz/$target"
		before=$(inputs "$dir")
		if ! go test -run XXX -fuzz "^${target}\$" -fuzztime "$time" "$pkg" > "$log" 2>&1; then
			cat "$log"
			# Go's fuzz coordinator can report its own -fuzztime deadline as a failure
			# (go.dev/issue/75804, fixed in Go 1.27): "context deadline exceeded" with no input
			# written. Only a failure that wrote a reproducer, or any other failure, counts.
			if grep -q '^    context deadline exceeded$' "$log" && [ "$(inputs "$dir")" = "$before" ]; then
				echo "(not a failure: the fuzz coordinator's own deadline, go.dev/issue/75804; no input was written)"
			else
				status=1
			fi
		else
			tail -n 3 "$log" | grep -E 'execs|ok' | tail -n 2
		fi
	done
done
exit $status
