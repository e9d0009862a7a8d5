package testenv

import (
	"testing"

	"github.com/raceguard/raceguard/test/lab"
)

// LoopbackUpstream starts the lab's upstream (test/lab/external.db) on a loopback port, closed
// when the test ends.
func LoopbackUpstream(t testing.TB) *lab.Upstream {
	t.Helper()
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Close)
	return up
}

// ClusterZone returns the path of the sample cluster.local zone Corefile.example serves.
func ClusterZone(t testing.TB) string {
	t.Helper()
	zone, err := lab.RepoPath("zones/cluster.local.db")
	if err != nil {
		t.Fatal(err)
	}
	return zone
}
