# raceguard: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go

.PHONY: all coredns run test check bench soak fuzz fuzz-short clean image monitoring monitoring-test cluster-test

all: coredns

## coredns: build ./coredns, CoreDNS (version pinned in go.mod) with raceguard in its plugin.cfg
coredns:
	./hack/build-coredns.sh

## run: build and serve Corefile.example on 127.0.0.1:1053 (metrics on 127.0.0.1:9153)
run: coredns
	./coredns -conf Corefile.example

## test: everything: static checks, unit tests, in-process end-to-end tests and, as root, the lab
# As root the network-namespace lab must run: RACEGUARD_LAB=require turns its skips into failures.
# The packages of test/ run one at a time (-p 1), as when they were one package: the lab's timings
# and conntrack races, the load tests and the image build do not run beside one another. The
# cluster lab runs last, alone (cluster-test).
LAB_ENV = RACEGUARD_COREDNS=$(CURDIR)/coredns RACEGUARD_LAB=$$([ "$$(id -u)" = 0 ] && echo require)
test: check coredns fuzz-short monitoring-test
	$(GO) test -race -count=1 -timeout 30m $$($(GO) list ./... | grep -v /test/)
	$(LAB_ENV) $(GO) test -race -count=1 -p 1 -timeout 30m $$($(GO) list ./test/... | grep -v /test/cluster)
	$(MAKE) cluster-test

## cluster-test: the cluster lab (test/cluster), as root: real etcd, kube-apiserver, the
## endpointslice controller and kube-proxy v1.34 in network namespaces, in each kube-proxy mode
## the kernel has, with kube-dns and the node-local server as deploy/ and the chart install them.
## Its programs build once per machine from the nested module test/cluster/kube (minutes, the first
## time). Each scenario logs a SUMMARY line. CLUSTER="-run TestCluster/nftables/2-kill" for one.
cluster-test: coredns
	$(LAB_ENV) $(GO) test -race -count=1 -timeout 45m -v ./test/cluster/ $(CLUSTER)

## check: formatting, vet, and a tidy go.mod without replace directives (the nested module of the
## cluster lab's programs, test/cluster/kube, has its own go.mod, with replace directives, kept tidy)
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	cd test/cluster/kube && $(GO) mod tidy -diff
	@if grep -q '^replace' go.mod; then echo "go.mod must not contain replace directives"; exit 1; fi

## fuzz: every fuzz target for a minute (FUZZTIME=5m for longer)
FUZZTIME ?= 60s
fuzz:
	./hack/fuzz.sh $(FUZZTIME)

## fuzz-short: every fuzz target for a few seconds, as part of make test
fuzz-short:
	./hack/fuzz.sh 5s

## image: the container image for linux/amd64 and linux/arm64 (PLATFORMS) in one manifest list,
## $(IMAGE):<version> (hack/version.sh) and $(IMAGE):dev, built by hack/build-image.sh with buildah,
## as any user: no Docker, no root. Push it with
## `buildah manifest push --all $(IMAGE):<version> docker://REGISTRY/raceguard:<version>`.
IMAGE = localhost/raceguard
PLATFORMS = linux/amd64 linux/arm64
# The image a release publishes (hack/release.sh), and the chart's default image.
RELEASE_IMAGE = ghcr.io/raceguard/raceguard
image:
	IMAGE=$(IMAGE) PLATFORMS="$(PLATFORMS)" ./hack/build-image.sh

## monitoring: regenerate monitoring/kube-prometheus's PrometheusRule and dashboard ConfigMap from
## monitoring/prometheus-rules.yaml and monitoring/grafana-dashboard.json, and copy those two into
## the Helm chart, charts/raceguard/files (hack/monitoring.sh)
monitoring:
	./hack/monitoring.sh

## monitoring-test: promtool checks and unit tests of the alert rules in monitoring/
monitoring-test:
	promtool check rules monitoring/prometheus-rules.yaml
	promtool test rules monitoring/prometheus-rules.test.yaml

## bench: the Go benchmarks (the hit path against stock; every shared table on the query path under
## 1 to 8 goroutines), then stock CoreDNS against the raceguard build side by side, as a markdown
## table: first each server alone on its core in three Corefile shapes (minimal, CoreDNS's default
## Kubernetes one, deploy/node-local's), then the paired and hostile rows, and the lab's. BENCH="-only
## shapes" (or throughput, latency, hostile, lab, family) runs one group of the table.
BENCH_TABLES = ./internal/bounded ./internal/fingerprint ./internal/family ./internal/searchpath ./plugin/collapse
bench: coredns
	GO=$(GO) ./hack/hitpath.sh 8
	$(GO) test -run '^$$' -bench . -benchmem -cpu 1,2,4,8 $(BENCH_TABLES)
	RACEGUARD_COREDNS=$(CURDIR)/coredns $(GO) run ./test/bench $(BENCH)

## soak: a minute of dnsperf at 80% of the rate the machine sustains, and a random-subdomain flood,
## against a node-local raceguard in the lab with the emulated conntrack drop on; fails if memory or
## goroutines grow, if a query is lost beyond the drops, or a table passes its capacity. Needs root
## and dnsperf. SOAK="-duration 5m"
soak: coredns
	RACEGUARD_COREDNS=$(CURDIR)/coredns $(GO) run ./test/soak $(SOAK)

clean:
	rm -rf coredns .build
