# raceguard: CoreDNS v1.15.0 with raceguard's three directives (raceguard, collapse, nodelocal), in
# CoreDNS's own image
# style (numeric non-root user, the binary with cap_net_bind_service, FROM scratch), for every
# platform of one manifest list: `make image` (hack/build-image.sh) builds linux/amd64 and
# linux/arm64 with buildah, as any user, without Docker and without root.
#
# The build context is .build/image/, which hack/build-image.sh fills: for each platform, the
# static CoreDNS binary built outside (CGO_ENABLED=0, cross-compiled by the go command) and the
# image's whole root filesystem as one tar, rootfs-$TARGETARCH.tar, written by hack/rootfs: the
# binary with its file capability as a PAX security.capability header (setcap needs root on the
# build host; a FROM scratch image has no setcap to RUN), /etc/passwd and /etc/group (root and
# nonroot, 65532), the CA certificates (forward over TLS, the kubernetes plugin's API server
# connection), and LICENSE and NOTICE. ADD extracts the tar with the attribute, and buildah keeps
# it in the image's layer (test/artifacts/image_test.go checks the layer, and binds a port below
# 1024 as 65532 with no capability added). There is no shell, no libc and no package manager in
# the image.
#
# TARGETARCH is set by buildah and by BuildKit per platform
# (`docker buildx build --platform linux/amd64,linux/arm64 -f Dockerfile .build/image` after
# `hack/build-image.sh context`; untested here: no Docker engine).
FROM scratch

ARG TARGETARCH=amd64
ARG VERSION=dev
ARG REVISION=unknown
ARG COREDNS_VERSION=1.15.0

LABEL org.opencontainers.image.title="raceguard" \
      org.opencontainers.image.description="CoreDNS ${COREDNS_VERSION} with raceguard: server-side search completion, collapsed duplicate queries and per-node proof of the conntrack race" \
      org.opencontainers.image.source="https://github.com/raceguard/raceguard" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      io.coredns.version="${COREDNS_VERSION}"

ADD rootfs-${TARGETARCH}.tar /

# The numeric uid/gid (distroless's "nonroot"), not a name: Kubernetes can only verify
# runAsNonRoot against a numeric USER (coredns/coredns#7542). The file capability lets it bind :53.
# The node-local DaemonSet in deploy/ overrides the user (runAsUser: 0, every capability dropped
# but NET_ADMIN and NET_BIND_SERVICE) because Kubernetes cannot give a non-root process
# CAP_NET_ADMIN for the conntrack reader; see deploy/node-local/daemonset.yaml.
USER 65532:65532
WORKDIR /
# DNS over UDP and TCP, and the prometheus plugin's metrics (health :8080 and ready :8181 are
# probed by the kubelet and need no EXPOSE).
EXPOSE 53 53/udp 9153
ENTRYPOINT ["/coredns"]
