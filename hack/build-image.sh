#!/usr/bin/env bash
# Builds the container image of the Dockerfile for every platform of PLATFORMS into one manifest
# list, $IMAGE:<version> (hack/version.sh) and $IMAGE:dev, with buildah: no Docker engine, and no
# root (rootless buildah works: nothing here needs a privilege).
#
#   hack/build-image.sh            # binaries, layers, then the images and the manifest list
#   hack/build-image.sh context    # only the build context in $OUT (for docker buildx, say)
#
# For each platform, hack/build-coredns.sh cross-compiles the static binary into
# $OUT/<os>-<arch>/coredns, and hack/rootfs writes the image's root filesystem, with the binary's
# file capability, as $OUT/rootfs-<arch>.tar; then one `buildah bud --platform ... --manifest`
# builds every platform's image from the Dockerfile with $OUT as its context. A manifest list of
# the same name is replaced (the images it listed stay, untagged, until `buildah rmi --prune`).
#
# IMAGE (localhost/raceguard), PLATFORMS ("linux/amd64 linux/arm64"), OUT (.build/image);
# BUILDAH, the buildah command (options such as --root may follow it); ARCHIVE, a path: also
# write the manifest list and its images there as an OCI archive (buildah manifest push --all).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
image=${IMAGE:-localhost/raceguard}
platforms=${PLATFORMS:-linux/amd64 linux/arm64}
out=${OUT:-$root/.build/image}
read -r -a buildah <<< "${BUILDAH:-buildah}"
export GOTOOLCHAIN=local

mkdir -p "$out"
for platform in $platforms; do
	os=${platform%/*} arch=${platform#*/}
	GOOS=$os GOARCH=$arch "$root/hack/build-coredns.sh" "$out/$os-$arch/coredns"
	(cd "$root" && go run ./hack/rootfs -coredns "$out/$os-$arch/coredns" -doc "$root" -o "$out/rootfs-$arch.tar")
done
[ "${1:-}" != context ] || exit 0

version=$("$root/hack/version.sh")
revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || echo unknown)
coredns=$(cd "$root" && go list -m -f '{{.Version}}' github.com/coredns/coredns)
for name in "$image:$version" "$image:dev"; do
	"${buildah[@]}" manifest rm "$name" > /dev/null 2>&1 || true
done
"${buildah[@]}" bud --quiet --format oci --platform "$(echo $platforms | tr ' ' ,)" --manifest "$image:$version" \
	--build-arg VERSION="$version" --build-arg REVISION="$revision" --build-arg COREDNS_VERSION="${coredns#v}" \
	-f "$root/Dockerfile" "$out"
"${buildah[@]}" tag "$image:$version" "$image:dev"
if [ -n "${ARCHIVE:-}" ]; then
	"${buildah[@]}" manifest push --quiet --all "$image:$version" "oci-archive:$ARCHIVE"
fi
echo "$image:$version ($platforms), also $image:dev"
