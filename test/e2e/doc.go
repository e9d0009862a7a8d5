// Package e2e holds raceguard's end-to-end tests on loopback: CoreDNS servers started in-process
// from a Corefile (package test/testenv), or the built binary, with clients and upstreams in this
// process. They need neither root nor the network-namespace lab (package test/labtest).
package e2e
