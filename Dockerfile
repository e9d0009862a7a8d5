# raceguard: CoreDNS v1.15.0 with the raceguard and collapse directives, in CoreDNS's own image
# style: the binary is built outside (`make coredns`) and copied in; the image is FROM scratch.
#
# `make image` prepares the build context and builds this file with buildah (`buildah bud`); the
# same file builds with `docker build` and `podman build` once the context is prepared:
#
#   make image                              # buildah bud, tags localhost/raceguard:dev and :$(VERSION)
#   make image IMAGE_BUILD="docker build"   # the same with Docker (untested here: no Docker engine)
#
# The context is the repository root; .dockerignore sends only .build/image/, which the Makefile
# fills with:
#   coredns                 a copy of ./coredns with the file capability cap_net_bind_service=+ep
#                           (set with setcap on the host: a FROM scratch image has no setcap, and
#                           base images with one cannot be pulled everywhere this is built; buildah
#                           COPY keeps the security.capability xattr, test/artifacts/image_test.go checks it
#                           by binding a port below 1024 as uid 65532)
#   ca-certificates.crt     the build host's /etc/ssl/certs/ca-certificates.crt, for forward over
#                           TLS and the kubernetes plugin's API server connection
#   passwd, group           root and nonroot (65532), as in distroless's nonroot image
#
# There is no shell, no libc and no package manager in the image: the binary is static
# (CGO_ENABLED=0).
FROM scratch

ARG VERSION=dev
ARG REVISION=unknown
ARG COREDNS_VERSION=1.15.0

LABEL org.opencontainers.image.title="raceguard" \
      org.opencontainers.image.description="CoreDNS ${COREDNS_VERSION} with raceguard: server-side search completion, collapsed duplicate queries and per-node proof of the conntrack race" \
      org.opencontainers.image.source="https://github.com/raceguard/raceguard" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      io.coredns.version="${COREDNS_VERSION}"

COPY .build/image/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY .build/image/passwd /etc/passwd
COPY .build/image/group /etc/group
COPY .build/image/coredns /coredns

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
