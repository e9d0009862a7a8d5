// Package labtest holds raceguard's tests in the network-namespace lab (package test/lab): real
// glibc and musl clients behind a kube-proxy-style DNAT to two CoreDNS servers, or to one
// node-local server, with the node's real conntrack. Every test needs root and skips without it,
// unless RACEGUARD_LAB=require (set by `make test` as root), where it fails instead
// (testenv.NewLab).
package labtest
