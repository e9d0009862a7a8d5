#!/usr/bin/env bash
# hitpath.sh [RUNS]: the hit-path microbenchmark, stock against raceguard, in RUNS separate runs
# (8 by default) of the test binary, so that each run measures the two side by side and a slow
# stretch of this machine hits both; then the median of each and raceguard's difference.
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
