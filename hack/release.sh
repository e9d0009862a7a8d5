#!/usr/bin/env bash
# Cuts a release (CONTRIBUTING.md, "Releases"), in two steps; it pushes nothing.
#
#   hack/release.sh v0.1.0             # the release commit and its tag
#   hack/release.sh artifacts v0.1.0   # on that tag: what the release publishes, in dist/v0.1.0/
#
# The first checks that a release can be cut here, then makes one commit, "Release vX.Y.Z", in
# which CHANGELOG.md's Unreleased section becomes the version's, README.md's Compilation section
# names the version, and the Helm chart (charts/raceguard/Chart.yaml) takes it as its version and
# appVersion, and tags it with an annotated vX.Y.Z.
#
# The second, on the tagged commit with a clean tree, builds into dist/vX.Y.Z/:
#   raceguard-vX.Y.Z.oci.tar            the image for linux/amd64 and linux/arm64, one manifest list
#                                       named $RELEASE_IMAGE:vX.Y.Z (hack/build-image.sh)
#   coredns-vX.Y.Z-linux-amd64, -arm64  the static binaries in it
#   raceguard-X.Y.Z.tgz                 the Helm chart, whose default image is $RELEASE_IMAGE:vX.Y.Z
#   SHA256SUMS                          sha256sum of each (sha256sum -c SHA256SUMS)
# and prints the commands that publish them.
#
# RELEASE_BRANCH (default main) is the branch releases are cut from; RELEASE_IMAGE the image's
# name (the Makefile's, ghcr.io/raceguard/raceguard); HELM the helm command (default: helm v3.22.0
# from its Go module); RELEASE_IMAGES=no leaves the images and binaries out (the test of this
# script: TestImage builds them).
set -euo pipefail

die() { echo "release: $*" >&2; exit 1; }

if [ "${1:-}" = artifacts ]; then
	version=${2:-}
	[[ $version =~ ^v(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$ ]] || die "usage: hack/release.sh artifacts vMAJOR.MINOR.PATCH (got '$version')"
	cd "$(git rev-parse --show-toplevel)"
	[ "$(git rev-parse -q --verify "refs/tags/$version^{commit}" || true)" = "$(git rev-parse HEAD)" ] || die "HEAD is not $version: check out the tag (git checkout $version)"
	[ -z "$(git status --porcelain)" ] || die "the working tree has changes: the artifacts are the tag's"
	number=${version#v}
	image=${RELEASE_IMAGE:-$(sed -nE 's/^RELEASE_IMAGE[[:space:]]*\??=[[:space:]]*//p' Makefile)}
	[ -n "$image" ] || die "no RELEASE_IMAGE (Makefile)"
	chart_image=$(sed -n 's/^  repository: //p' charts/raceguard/values.yaml | head -n 1)
	[ "$chart_image" = "$image" ] || die "charts/raceguard/values.yaml: image.repository $chart_image, but the release publishes $image"
	read -r -a helm <<< "${HELM:-go run helm.sh/helm/v3/cmd/helm@v3.22.0}"
	dist=dist/$version
	rm -rf "$dist"
	mkdir -p "$dist"
	if [ "${RELEASE_IMAGES:-yes}" != no ]; then
		out=$(mktemp -d)
		IMAGE=$image PLATFORMS="linux/amd64 linux/arm64" OUT=$out ARCHIVE=$PWD/$dist/raceguard-$version.oci.tar hack/build-image.sh
		for arch in amd64 arm64; do
			cp "$out/linux-$arch/coredns" "$dist/coredns-$version-linux-$arch"
		done
		rm -rf "$out"
	fi
	"${helm[@]}" package charts/raceguard --destination "$dist" > /dev/null
	[ -f "$dist/raceguard-$number.tgz" ] || die "helm package made no $dist/raceguard-$number.tgz"
	(cd "$dist" && sha256sum -- * > SHA256SUMS.new && mv SHA256SUMS.new SHA256SUMS)
	cat <<-EOF
		Built $dist:
		$(cd "$dist" && ls -1 | sed 's/^/  /')
		Publish them (CONTRIBUTING.md, "Releases"):
		  git push origin ${RELEASE_BRANCH:-main} $version
		  buildah manifest push --all $image:$version docker://$image:$version
		  helm push $dist/raceguard-$number.tgz oci://${image%/*}/charts
		  and attach $dist/* to the GitHub release $version, with SHA256SUMS.
	EOF
	exit 0
fi

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
echo "Tagged $version on $(git rev-parse --short HEAD). Next: make test, then hack/release.sh artifacts $version (CONTRIBUTING.md)."
