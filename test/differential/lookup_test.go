package differential

import (
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestSearchDifferential is the correctness contract of search completion: for every name of the
// zoo, real glibc and musl clients, asking for AF_UNSPEC, AF_INET and AF_INET6, end with the same
// addresses or the same error with raceguard as with stock CoreDNS without autopath. It runs as a
// cluster Deployment runs (two DNS servers behind the DNAT, so a client's later tries can reach a
// server that did not see its first one: completions stay in the namespace's own hierarchy, or,
// with the pod watch, follow each pod's list, one-label names aside), and as a node-local server
// runs (one server that sees every try, and knows the client's list from its pod watch: it
// completes within it, so far fewer queries cross the node).
func TestSearchDifferential(t *testing.T) {
	l := testenv.NewLab(t)

	testenv.StartDNS(t, l, lab.StockCorefile)
	stock, stockQueries := LookupAll(t, l, zoo)
	if len(stock) != 6*len(zoo) {
		t.Fatalf("Expected %d outcomes, got %d", 6*len(zoo), len(stock))
	}

	testenv.StartDNS(t, l, lab.RaceguardCorefile)
	cluster, clusterQueries := LookupAll(t, l, zoo)
	for _, d := range DiffLookups(stock, cluster) {
		t.Error("cluster: " + d)
	}
	t.Logf("Queries sent for the whole zoo: %d without raceguard, %d with a raceguard Deployment", stockQueries, clusterQueries)
	if clusterQueries > stockQueries {
		t.Errorf("Expected no more queries with a raceguard Deployment, got %d against %d", clusterQueries, stockQueries)
	}

	startDeploymentFor(t, l, lab.RaceguardCorefile, lab.DefaultResolvConf())
	pods, podsQueries := LookupAll(t, l, zoo)
	for _, d := range DiffLookups(stock, pods) {
		t.Error("cluster, search pods: " + d)
	}
	t.Logf("Queries sent for the whole zoo: %d without raceguard, %d with a raceguard Deployment with search pods (%d%%)", stockQueries, podsQueries, 100*podsQueries/stockQueries)
	if podsQueries > stockQueries*65/100 {
		t.Errorf("Expected a Deployment with the pods' exact lists to send at most 65 %% of stock's queries, got %d against %d", podsQueries, stockQueries)
	}

	startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), lab.DefaultResolvConf())
	local, localQueries := LookupAll(t, l, zoo)
	for _, d := range DiffLookups(stock, local) {
		t.Error("node-local: " + d)
	}
	t.Logf("Queries sent for the whole zoo: %d without raceguard, %d with raceguard node-local (%d%%)", stockQueries, localQueries, 100*localQueries/stockQueries)
	if localQueries > stockQueries*60/100 {
		t.Errorf("Expected the node-local server to send at most 60 %% of stock's queries, got %d against %d", localQueries, stockQueries)
	}
	// Most of the zoo is names a walk cannot shorten (services found at the first try, names that
	// exist nowhere, which every client walks to the end): the names that complete are the
	// external, other-namespace, one-label and node-domain ones.
	if localQueries >= stockQueries*85/100 || localQueries >= clusterQueries {
		t.Errorf("Expected fewer queries with raceguard node-local than with a Deployment and than without, got %d against %d and %d",
			localQueries, clusterQueries, stockQueries)
	}
	// The zoo is only a test if the names behave differently from each other.
	kinds := map[string]bool{}
	for _, v := range stock {
		kinds[strings.SplitN(v, ",", 2)[0]] = true
	}
	for _, want := range []string{"EAI_NONAME", "EAI_NODATA", "EAI_AGAIN"} {
		if !kinds[want] {
			t.Errorf("Expected the zoo to produce %s somewhere, got %v", want, kinds)
		}
	}
}
