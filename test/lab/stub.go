package lab

import "strings"

// StubAddr is where StartStub serves: a port of its own on the upstream's address.
const StubAddr = UpstreamIP + ":5300"

// CorpZone is the path, inside the repository, of corp.test as the company's own DNS servers
// answer it (a stub domain; the internet's view in external.db has other addresses).
const CorpZone = "test/lab/corp.test.db"

// StartStub runs the custom CoreDNS in the upstream namespace on StubAddr, serving the zone file
// zone (a repository path, as CorpZone) for origin: the DNS servers of a stub domain, to which a
// Corefile forwards that one zone. The caller stops it; Close kills it with the namespace.
func (l *Lab) StartStub(zone, origin string) (*Process, error) {
	path, err := RepoPath(zone)
	if err != nil {
		return nil, err
	}
	corefile := origin + ":5300 {\n    bind " + UpstreamIP + "\n    file " + path + " " + origin + "\n}\n"
	return StartProcess(l.Upstream, l.coredns, l.dir, "stub-"+strings.TrimSuffix(origin, "."), corefile, StubAddr)
}
