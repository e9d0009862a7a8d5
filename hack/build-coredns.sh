#!/usr/bin/env bash
# Builds ./coredns: CoreDNS at the version go.mod pins, from the Go module cache, with the two
# raceguard directives inserted into its plugin.cfg, built against this checkout.
#
# The CoreDNS tree is copied to .build/coredns-<version> (git-ignored); the copy, never our go.mod,
# gets a replace directive pointing at this checkout. Once the module cache is warm this runs
# offline, and a rebuild only recompiles what changed.
#
#   raceguard  just before rewrite: it sees the client's own question, before rewrite, acl and
#              cache; each name a walk tries goes where the client's own query for it would go,
#              through the whole chain of the block that serves it.
#   collapse   just after cache: it only sees misses, never a query acl refused.
#   nodelocal  just after bind: its startup makes the addresses bind names before anything binds
#              them (ready, health, pprof, prometheus and the servers all bind at startup).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$root/coredns}
module=github.com/raceguard/raceguard
export GOTOOLCHAIN=local GOFLAGS=-mod=mod

cd "$root"
mkdir -p "$root/.build"
exec 9>"$root/.build/lock"
flock 9 # one build at a time: make test and a test binary may both ask for one

version=$(go list -m -f '{{.Version}}' github.com/coredns/coredns)
src=$(go mod download -json "github.com/coredns/coredns@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -d "$src" ] || { echo "build-coredns: CoreDNS $version is not in the module cache" >&2; exit 1; }
build=$root/.build/coredns-$version

# The copy is made once per CoreDNS version and plugin.cfg edit; go.sum changes are merged each run.
stamp="$version $(sha256sum "$0" | cut -c1-16)"
if [ "$(cat "$build/.raceguard-stamp" 2>/dev/null)" != "$stamp" ]; then
	rm -rf "$build"
	cp -r "$src" "$build"
	chmod -R u+w "$build"
	awk -v rg="raceguard:$module" -v co="collapse:$module/plugin/collapse" -v nl="nodelocal:$module/plugin/nodelocal" '
		$0 == "rewrite:rewrite" { print rg }
		{ print }
		$0 == "cache:cache" { print co }
		$0 == "bind:bind" { print nl }
	' "$src/plugin.cfg" > "$build/plugin.cfg"
	grep -qx "raceguard:$module" "$build/plugin.cfg" && grep -qx "collapse:$module/plugin/collapse" "$build/plugin.cfg" \
		|| { echo "build-coredns: rewrite:rewrite or cache:cache not found in plugin.cfg" >&2; exit 1; }
	grep -qx "nodelocal:$module/plugin/nodelocal" "$build/plugin.cfg" \
		|| { echo "build-coredns: bind:bind not found in plugin.cfg" >&2; exit 1; }
	(cd "$build" && go mod edit -require="$module@v0.0.0" -replace="$module=$root" && go generate coredns.go)
	echo "$stamp" > "$build/.raceguard-stamp"
fi

# Our go.sum covers every module we need beyond CoreDNS's own.
sort -u "$build/go.sum" "$root/go.sum" -o "$build/go.sum"

# The replace leaves the binary's build information without a version for raceguard: stamp the
# checkout's (hack/version.sh), which `coredns -version` and coredns_raceguard_build_info report
# (internal/buildinfo).
version=$("$root/hack/version.sh")
revision=$(git -C "$root" rev-parse --short=12 HEAD 2>/dev/null || true)
info=github.com/raceguard/raceguard/internal/buildinfo
cd "$build"
CGO_ENABLED=0 go build -trimpath -o "$out" \
	-ldflags "-s -w -X $info.version=$version -X $info.revision=$revision" .
