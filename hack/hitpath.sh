#!/usr/bin/env bash
# hitpath.sh [RUNS]: the hit-path microbenchmark, stock against raceguard, in RUNS separate runs
# (8 by default) of the test binary, so that each run measures the two side by side and a slow
# stretch of this machine hits both; then the median of each and raceguard's difference.
#
# Then, where valgrind is installed, the instructions each query executes, counted by cachegrind:
# a count does not drift with the machine, so it tells apart changes of a few nanoseconds that
# the timings cannot. The garbage collector is off (both sides allocate the same), and a query's
# count is the difference between runs of 100,000 and 300,000 queries, which cancels the set-up.
set -euo pipefail
runs=${1:-8}
go=${GO:-go}
bin=.build/hitpath.test
mkdir -p .build
"$go" test -c -o "$bin" .
for _ in $(seq "$runs"); do
	"$bin" -test.run '^$' -test.bench HitPath -test.benchmem | grep '^Benchmark'
done | tee .build/hitpath.out
awk '
	{ name = $1; sub(/-[0-9]+$/, "", name); sub(/^BenchmarkHitPath\//, "", name); ns[name] = ns[name] " " $3; allocs[name] = $7 }
	function median(list,    v, n, i, j, t) {
		n = split(list, v, " ")
		for (i = 2; i <= n; i++) for (j = i; j > 1 && v[j-1] + 0 > v[j] + 0; j--) { t = v[j]; v[j] = v[j-1]; v[j-1] = t }
		return n % 2 ? v[(n+1)/2] : (v[n/2] + v[n/2+1]) / 2
	}
	END {
		for (k in ns) m[k] = median(ns[k])
		for (k in ns) if (k ~ /^raceguard\//) {
			q = substr(k, 11)
			printf "hit path, %s: stock %.0f ns, raceguard %.0f ns (median of %d runs): %+.0f ns; allocations %d and %d\n", q, m["stock/" q], m[k], split(ns[k], x, " "), m[k] - m["stock/" q], allocs["stock/" q], allocs[k]
		}
	}' .build/hitpath.out

if ! command -v valgrind >/dev/null; then
	echo "hit path instructions: valgrind is not installed, not counted"
	exit 0
fi
# instructions BENCH N: what cachegrind counts for a run of N queries of HitPath/BENCH.
instructions() {
	GOGC=off GODEBUG=asyncpreemptoff=1 valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
		"$bin" -test.run '^$' -test.bench "HitPath/$1\$" -test.benchtime "$2x" -test.cpu 1 2>&1 |
		awk '/I +refs:/ { gsub(",", "", $NF); print $NF }'
}
declare -A per
for q in service external; do
	for side in stock raceguard; do
		small=$(instructions "$side/$q" 100000)
		large=$(instructions "$side/$q" 300000)
		if [ -z "$small" ] || [ -z "$large" ]; then
			echo "hit path instructions, $q: not counted (valgrind gave no count for $side)"
			continue 2
		fi
		per[$side]=$(((large - small) / 200000))
	done
	printf "hit path instructions, %s: stock %d, raceguard %d a query: %+d\n" "$q" "${per[stock]}" "${per[raceguard]}" $((per[raceguard] - per[stock]))
done
