package test

import (
	"net"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

// loopbackUpstream starts the lab's upstream (test/lab/external.db) on a loopback port, closed
// when the test ends.
func loopbackUpstream(t testing.TB) *lab.Upstream {
	t.Helper()
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return up
}

// clusterZone returns the path of the sample cluster.local zone Corefile.example serves.
func clusterZone(t testing.TB) string {
	t.Helper()
	zone, err := lab.RepoPath("zones/cluster.local.db")
	if err != nil {
		t.Fatal(err)
	}
	return zone
}

// freeUDPTCPPort returns a loopback port free for both UDP and TCP a moment ago, for a server
// started in another process.
func freeUDPTCPPort(t testing.TB) string {
	t.Helper()
	pc, ln, err := lab.ListenBoth("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(pc.LocalAddr().String())
	pc.Close()
	ln.Close()
	return port
}
