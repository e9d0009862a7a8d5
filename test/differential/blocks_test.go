package differential

import (
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// blocksZoo is what the lab client looks up through lab.Blocks: the names each of its policies
// decides, asked as a search list tries them and as is, and names of the cluster block itself.
// musl ignores a REFUSED reply and waits for another until its timeout: the refused names are
// few, first, so that each is the one refused name of its client process (LookupWith spreads the
// names over 8), and blocksResolvConf makes that timeout a second.
var blocksZoo = []string{
	"example.org", "nosuch.example.org", "example.org.", // acl: refused to everyone
	"wpad",                                  // one label: the name itself is served by no block (the upstream has it)
	"alias.example.com", "many.example.com", // rewrite, and the acl of the node's own address
	"v4only.example.net", "v6only.example.net", "chain.example.net", // view: the hosts table first
	"wiki.eu.corp.test", "intranet.corp.test", // the stub domain's own servers
	"gateway", "registry", // one label, found in the node's domain
	"web", "api.shop", "db-0.db.shop", "shop", // the cluster zone's own names
}

// blocksResolvConf is a ClusterFirst pod's resolv.conf with timeout:1.
var blocksResolvConf = lab.DefaultResolvConf().WithOptions("timeout:1")

// TestBlocksDifferential proves with real glibc and musl clients (AF_UNSPEC, AF_INET, AF_INET6)
// that search completion crosses no policy of a multi-block Corefile (lab.Blocks, in NodeLocal
// DNSCache's shape: an acl, a view on name(), a rewrite, per-zone forwards to a stub domain's own
// servers, and no block for one-label names): every lookup ends as it does against the same
// Corefile without raceguard. It runs raceguard as a cluster Deployment, and as a node-local
// server that knows the client's exact list from the pod watch, in the cluster.local block and in
// the root block: it completes names beyond the cluster domains, each through the block and view
// that serves it, and passes a walk through where a name of it is refused.
func TestBlocksDifferential(t *testing.T) {
	l := testenv.NewLab(t)
	stub, err := l.StartStub(lab.CorpZone, "corp.test.")
	if err != nil {
		t.Fatal(err)
	}
	defer stub.Stop()
	// The node's own address (hostNetwork pods) may not look up example.com: the lab client may.
	blocks := func(options string, root bool) string {
		return lab.Blocks{Raceguard: options, Root: root, Stub: lab.StubAddr, Blocked: lab.NodeIP + "/32"}.Corefile()
	}
	const infer = "node_search " + lab.NodeDomain
	nodeLocal := infer + "\n" + strings.ReplaceAll(lab.PodWatchOptions, "\n        ", "\n")

	lookup := func() (map[LookupKey]string, int) { return LookupWith(t, l, blocksResolvConf, blocksZoo) }

	startDeployment(t, l, blocks("", false))
	stock, stockQ := lookup()
	startDeployment(t, l, blocks("", true))
	stockRoot, stockRootQ := lookup()
	reportDiffs(t, "the cluster zone in the root block, without raceguard", stock, stockRoot)

	startDeployment(t, l, blocks(infer, false))
	deployment, deploymentQ := lookup()
	reportDiffs(t, "Deployment", stock, deployment)

	stop := startNodeLocalFor(t, l, blocks(nodeLocal, false), blocksResolvConf)
	local, localQ := lookup()
	stop()
	reportDiffs(t, "node-local, raceguard in the cluster.local block", stock, local)

	startNodeLocalFor(t, l, blocks(nodeLocal, true), blocksResolvConf)
	root, rootQ := lookup()
	reportDiffs(t, "node-local, raceguard in the root block", stockRoot, root)
	answered := nodeSum(t, l, "coredns_raceguard_search_walks_total", map[string]string{"outcome": "answered"})
	failed := nodeSum(t, l, "coredns_raceguard_search_passed_total", map[string]string{"reason": "failed"})

	t.Logf("Queries for %d lookups: %d stock (%d with the cluster zone in the root block), %d Deployment, %d node-local in the cluster.local block, %d node-local in the root block (%v walks completed, %v passed through at a refusal)",
		len(stock), stockQ, stockRootQ, deploymentQ, localQ, rootQ, answered, failed)
	if deploymentQ > stockQ || localQ > stockQ {
		t.Errorf("Expected no more queries with raceguard than the %d of stock, got %d (Deployment) and %d (node-local)", stockQ, deploymentQ, localQ)
	}
	if rootQ >= deploymentQ || answered == 0 {
		t.Errorf("Expected the node-local server in the root block to complete names beyond the cluster domains, got %d queries against %d for a Deployment, %v completions", rootQ, deploymentQ, answered)
	}
	if failed == 0 {
		t.Errorf("Expected walks that met a refusal (acl, no block) to pass through, got none")
	}
}
