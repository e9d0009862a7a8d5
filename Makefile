# raceguard: the two set-up commands are `make run` and `make test`.
SHELL := /bin/bash
export GOTOOLCHAIN := local
GO ?= go

.PHONY: all coredns run test unit e2e check bench clean

all: coredns

## coredns: build ./coredns, CoreDNS (version pinned in go.mod) with raceguard in its plugin.cfg
coredns:
	./hack/build-coredns.sh

## run: build and serve Corefile.example on 127.0.0.1:1053 (metrics on 127.0.0.1:9153)
run: coredns
	./coredns -conf Corefile.example

## test: everything: static checks, unit tests, in-process end-to-end tests and, as root, the lab
# As root the network-namespace lab must run: RACEGUARD_LAB=require turns its skips into failures.
test: check coredns
	RACEGUARD_COREDNS=$(CURDIR)/coredns RACEGUARD_LAB=$$([ "$$(id -u)" = 0 ] && echo require) \
		$(GO) test -race -count=1 -timeout 30m ./...

## check: formatting, vet, and a tidy go.mod without replace directives
check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed: $$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) mod tidy -diff
	@if grep -q '^replace' go.mod; then echo "go.mod must not contain replace directives"; exit 1; fi

## bench: stock CoreDNS against the raceguard build, side by side; prints a markdown table
bench: coredns
	RACEGUARD_COREDNS=$(CURDIR)/coredns $(GO) run ./test/bench

clean:
	rm -rf coredns .build
