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
for pkg in $(go list ./...); do
	for target in $(go test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== $pkg $target ($time)"
		if ! go test -run XXX -fuzz "^${target}\$" -fuzztime "$time" "$pkg" > "$log" 2>&1; then
			cat "$log"
			status=1
		else
			tail -n 3 "$log" | grep -E 'execs|ok' | tail -n 2
		fi
	done
done
exit $status
