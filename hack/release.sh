#!/usr/bin/env bash
# Cuts a release (CONTRIBUTING.md, "Releases"): checks that one can be cut here, then makes one
# commit, "Release vX.Y.Z", in which CHANGELOG.md's Unreleased section becomes the version's,
# README.md's Compilation section names the version, and the Helm chart (charts/raceguard/Chart.yaml)
# takes it as its version and appVersion, and tags it with an annotated vX.Y.Z. It pushes nothing.
#
#   hack/release.sh v0.1.0
#
# RELEASE_BRANCH (default main) is the branch releases are cut from.
set -euo pipefail

die() { echo "release: $*" >&2; exit 1; }

version=${1:-}
[[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] || die "usage: hack/release.sh vMAJOR.MINOR.PATCH (got '$version')"
number=${version#v}
repo=https://github.com/raceguard/raceguard

cd "$(git rev-parse --show-toplevel)"
branch=$(git symbolic-ref --short -q HEAD || true)
[ "$branch" = "${RELEASE_BRANCH:-main}" ] || die "on '${branch:-a detached HEAD}', releases are cut from ${RELEASE_BRANCH:-main}"
[ -z "$(git status --porcelain)" ] || die "the working tree has changes: commit or stash them"
! git rev-parse -q --verify "refs/tags/$version" > /dev/null || die "tag $version exists"
previous=$(git tag --list 'v[0-9]*.[0-9]*.[0-9]*' --sort=-v:refname | head -n 1)
if [ -n "$previous" ] && [ "$(printf '%s\n%s\n' "$previous" "$version" | sort -V | tail -n 1)" != "$version" ]; then
	die "$version is not above the latest release, $previous"
fi

# CHANGELOG.md: an Unreleased section with at least one entry.
entries=$(awk '/^## \[Unreleased\]/ { inside = 1; next } /^## / { inside = 0 } inside && /^- / { n++ } END { print n + 0 }' CHANGELOG.md)
[ "$entries" -gt 0 ] || die "CHANGELOG.md: nothing under ## [Unreleased]"

# README.md: the version its Compilation section names (go get ...@vX.Y.Z).
named=$(awk '/^## / { inside = ($0 == "## Compilation") } inside' README.md |
	sed -n 's|^go get github.com/raceguard/raceguard@\(v[0-9.]*\)$|\1|p')
[ -n "$named" ] || die "README.md: no 'go get github.com/raceguard/raceguard@vX.Y.Z' line in ## Compilation"

# The chart: its version and appVersion lines.
chart=charts/raceguard/Chart.yaml
[ "$(grep -c -E '^(version|appVersion): ' "$chart")" = 2 ] || die "$chart: want one version: and one appVersion: line"

# Cut the changelog: a new, empty Unreleased section over the version's, dated today (UTC), and
# the comparison links at the end of the file.
today=$(date -u +%Y-%m-%d)
if [ -n "$previous" ]; then
	link="[$number]: $repo/compare/$previous...$version"
else
	link="[$number]: $repo/releases/tag/$version"
fi
awk -v number="$number" -v today="$today" -v unreleased="[Unreleased]: $repo/compare/$version...HEAD" -v link="$link" '
	/^## \[Unreleased\]/ && !cut { print; print ""; print "## [" number "] - " today; cut = 1; next }
	/^\[Unreleased\]: / { next }
	/^\[[0-9]+\.[0-9]+\.[0-9]+\]: / && !linked { print unreleased; print link; linked = 1 }
	{ print }
	END { if (!linked) { print ""; print unreleased; print link } }
' CHANGELOG.md > CHANGELOG.md.new
mv CHANGELOG.md.new CHANGELOG.md

# Name the version in README.md's Compilation section (the supported statement, go get, the
# -version output).
awk -v old="$named" -v new="$version" '
	/^## / { inside = ($0 == "## Compilation") }
	inside {
		out = ""; rest = $0
		while ((i = index(rest, old)) > 0) { out = out substr(rest, 1, i - 1) new; rest = substr(rest, i + length(old)) }
		$0 = out rest
	}
	{ print }
' README.md > README.md.new
mv README.md.new README.md

# The chart installs this release (its appVersion is the image tag by default) and is versioned
# with it.
sed -e "s/^version: .*/version: $number/" -e "s/^appVersion: .*/appVersion: \"$version\"/" "$chart" > "$chart.new"
mv "$chart.new" "$chart"

git add CHANGELOG.md README.md "$chart"
git commit -q -m "Release $version"
git tag -a "$version" -m "raceguard $version"
echo "Tagged $version on $(git rev-parse --short HEAD). Next: make test, then git push origin ${RELEASE_BRANCH:-main} $version (CONTRIBUTING.md)."
