// Package differential compares stock CoreDNS with the raceguard build, and holds the two
// differential tests built on it.
//
// The wire differential (TestDifferential in wire_test.go) sends identical wire messages to two
// CoreDNS processes on loopback, stock first, then raceguard, and judges each pair of replies:
//
//   - startServer runs the binary on a lab Corefile template (lab.CorefileData), forwarding to an
//     upstream, and loadBounds reads the zone files both answer from and the Corefiles' cache cap;
//   - newHarness compares two such servers within those bounds: run sends a corpus of queries
//     (makeCorpus, or clientLookup for one client walking its search list); truncation checks
//     truncated answers, and bursts sends identical queries at once;
//   - judge demands identical replies, except where README.md's search completion documents a
//     difference: the documented walk of the first try (walk.go) is then verified against stock's
//     answers for its names.
//
// Another pair of Corefiles or another set of zones is a pair of startServer calls and a
// loadBounds call; walkTail in wire_test.go runs the harness against its own upstream zone
// (testdata/tail.db) that way.
//
// The lookup differential (TestSearchDifferential in lookup_test.go) runs real glibc and musl
// getaddrinfo over a zoo of names in the network-namespace lab, against stock and raceguard
// Corefiles in turn: LookupAll (LookupWith for another resolv.conf) collects the outcomes and
// DiffLookups lists where they differ. It needs root, as every lab test (see package
// test/testenv); package test/labtest uses the same two functions for the kubernetes plugin's
// differential. layouts.go runs a Corefile as a cluster Deployment or as a node-local server.
// The same machinery proves issue 11's cases, each on the names it is about:
//
//   - TestBlocksDifferential: a multi-block Corefile in NodeLocal DNSCache's shape (lab.Blocks);
//   - TestPodSettingsDifferential and TestHostNetworkDifferential: pod DNS settings;
//   - TestAsIsDifferential: names asked as is that look like a search walk's first try;
//   - TestSmallUDPDifferential: completions that would not fit a 512-byte client;
//   - TestOneLabelDifferential: one-label names on a node-local server.
package differential
