package differential

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// oneLabelNames are one-label names a pod in namespace default looks up: found in the node's
// domain (registry with both families, gateway with an A record only), a namespace (NODATA,
// where musl stops and glibc walks on to shop.lab.internal), a service of the pod's namespace
// (its first try), and a name that exists nowhere.
var oneLabelNames = []string{"registry", "gateway", "shop", "web", "nosuch"}

// TestOneLabelDifferential proves, with real glibc and musl clients (AF_UNSPEC, AF_INET,
// AF_INET6), that a node-local raceguard completes one-label names once it knows the client's
// list (issue 11's last paragraph: a Deployment cannot, since another replica may have seen the
// first try), with every outcome as with stock, and logs the queries each name costs: stock,
// Deployment (which never walks a one-label name) and node-local.
func TestOneLabelDifferential(t *testing.T) {
	l := testenv.NewLab(t)
	type counts struct{ stock, deployment, nodeLocal int }
	q := map[string]*counts{}
	for _, name := range oneLabelNames {
		q[name] = &counts{}
	}
	// run looks each name up on its own, to count its queries, and returns the outcomes.
	run := func(count func(*counts) *int) map[LookupKey]string {
		out := map[LookupKey]string{}
		for _, name := range oneLabelNames {
			got, n := LookupAll(t, l, []string{name})
			*count(q[name]) = n
			maps.Copy(out, got)
		}
		return out
	}

	startDeployment(t, l, lab.StockCorefile)
	stock := run(func(c *counts) *int { return &c.stock })
	startDeployment(t, l, lab.RaceguardCorefile)
	reportDiffs(t, "Deployment", stock, run(func(c *counts) *int { return &c.deployment }))
	startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), lab.DefaultResolvConf())
	reportDiffs(t, "node-local", stock, run(func(c *counts) *int { return &c.nodeLocal }))
	declined := nodeSum(t, l, "coredns_raceguard_search_declined_total", map[string]string{"reason": "one_label"})
	saved := nodeSum(t, l, "coredns_raceguard_search_queries_saved_total", nil)

	var table strings.Builder
	table.WriteString("| name | stock | Deployment | node-local |\n|---|---|---|---|\n")
	for _, name := range oneLabelNames {
		c := q[name]
		fmt.Fprintf(&table, "| %s | %d | %d | %d |\n", name, c.stock, c.deployment, c.nodeLocal)
		if c.deployment > c.stock || c.nodeLocal > c.stock {
			t.Errorf("%s: Expected no more queries with raceguard than the %d of stock, got %d (Deployment) and %d (node-local)", name, c.stock, c.deployment, c.nodeLocal)
		}
	}
	t.Logf("Queries of each one-label name, looked up by glibc and musl for AF_UNSPEC, AF_INET and AF_INET6 (node-local: %v saved, %v declined as one-label):\n%s",
		saved, declined, table.String())
	for _, name := range []string{"registry", "gateway"} {
		if c := q[name]; c.nodeLocal*2 > c.stock {
			t.Errorf("%s: Expected the node-local server to save half the queries or more, got %d against %d", name, c.nodeLocal, c.stock)
		}
	}
	if declined != 0 {
		t.Errorf("Expected no one-label name declined once the client's list is known, got %v", declined)
	}
}
