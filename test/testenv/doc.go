// Package testenv holds what raceguard's test packages share: CoreDNS started in-process from a
// Corefile (the pattern of CoreDNS's own test/server.go), the custom CoreDNS binary built once per
// test run, a network-namespace lab for a test, and the lab's upstream and zones on loopback.
//
// Importing it links the in-tree plugins the test Corefiles use and the two raceguard directives,
// spliced into the directive list at the positions the build gives them in plugin.cfg.
//
// The tests are split by job, one package each:
//
//   - test/e2e: end-to-end tests on loopback, of CoreDNS in-process or of the built binary; they
//     run everywhere.
//   - test/labtest: tests in the network-namespace lab (package test/lab) with real glibc and musl
//     clients behind a kube-proxy-style DNAT; they need root and skip without it, unless
//     RACEGUARD_LAB=require (set by `make test` as root), which makes them fail instead.
//   - test/differential: the differential harness, stock CoreDNS against the raceguard build, and
//     its two tests: identical wire messages to both on loopback (TestDifferential), and real
//     clients' getaddrinfo over a zoo of names in the lab (TestSearchDifferential).
//   - test/artifacts: checks of what the repository ships besides the code: the manifests of
//     deploy/, the rules and dashboard of monitoring/, and the container image.
//   - test/dnsperf: the parser of dnsperf's output, for test/bench and test/soak.
//
// test/lab, test/kubeapi, test/bench and test/soak are the lab, a fake Kubernetes API, and the
// benchmark and soak programs (make bench, make soak).
package testenv
