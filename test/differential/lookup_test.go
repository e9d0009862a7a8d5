package differential

import (
	"maps"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// zooRun is one layout's lookups of the zoo: the outcomes, and the queries the clients sent for
// the names that exist somewhere (present) and for those that exist nowhere (missing).
type zooRun struct {
	out              map[LookupKey]string
	present, missing int
}

// lookupZoo looks the zoo up as LookupAll does, its absent names apart.
func lookupZoo(t *testing.T, l *lab.Lab) zooRun {
	t.Helper()
	present, missing := zooParts()
	out, p := LookupAll(t, l, present)
	more, m := LookupAll(t, l, missing)
	maps.Copy(out, more)
	return zooRun{out: out, present: p, missing: m}
}

func (r zooRun) total() int { return r.present + r.missing }

// Targets of TestSearchDifferential: the most a layout's clients may send for the zoo's names that
// exist, in percent of what they send without raceguard. The names that exist nowhere are the
// floor (every client must see each of their NXDOMAINs) and must cost exactly stock's: how many a
// name set has decides its total more than raceguard does (36 % of stock's queries in the zoo).
const (
	nodeLocalTarget  = 50 // a node-local server with the pods' exact lists
	deploymentTarget = 56 // a Deployment with them: its one-label names are not completed
)

// TestSearchDifferential is the correctness contract of search completion: for every name of the
// zoo, real glibc and musl clients, asking for AF_UNSPEC, AF_INET and AF_INET6, end with the same
// addresses or the same error with raceguard as with stock CoreDNS without autopath. It runs as a
// cluster Deployment runs (two DNS servers behind the DNAT, so a client's later tries can reach a
// server that did not see its first one: completions stay in the namespace's own hierarchy, or,
// with the pod watch, follow each pod's list, one-label names aside), and as a node-local server
// runs (one server that sees every try, and knows the client's list from its pod watch: it
// completes within it, so far fewer queries cross the node). It holds the queries the clients
// send, counted on the wire, to the targets above.
func TestSearchDifferential(t *testing.T) {
	l := testenv.NewLab(t)

	testenv.StartDNS(t, l, lab.StockCorefile)
	stock := lookupZoo(t, l)
	if len(stock.out) != 6*len(zoo) {
		t.Fatalf("Expected %d outcomes, got %d", 6*len(zoo), len(stock.out))
	}
	for k, v := range stock.out {
		if absent[k.Name] && !strings.HasPrefix(v, "EAI_") {
			t.Errorf("Expected %v to exist nowhere, got %s without raceguard", k, v)
		}
	}
	pct := func(n, of int) int { return 100 * n / of }
	report := func(layout string, r zooRun) {
		t.Helper()
		reportDiffs(t, layout, stock.out, r.out)
		t.Logf("%s: clients sent %d queries for the zoo against %d without raceguard (%d %%): %d against %d for the %d names that exist (%d %%), %d against %d for the %d that exist nowhere",
			layout, r.total(), stock.total(), pct(r.total(), stock.total()), r.present, stock.present, len(zoo)-len(absent),
			pct(r.present, stock.present), r.missing, stock.missing, len(absent))
		if r.missing > stock.missing {
			t.Errorf("%s: Expected the names that exist nowhere to cost no more than without raceguard, got %d against %d", layout, r.missing, stock.missing)
		}
	}

	testenv.StartDNS(t, l, lab.RaceguardCorefile)
	infer := lookupZoo(t, l)
	report("Deployment, search infer", infer)
	if infer.total() > stock.total() {
		t.Errorf("Expected no more queries with a raceguard Deployment, got %d against %d", infer.total(), stock.total())
	}

	startDeploymentFor(t, l, lab.RaceguardCorefile, lab.DefaultResolvConf())
	pods := lookupZoo(t, l)
	report("Deployment, search pods", pods)
	if pct(pods.present, stock.present) > deploymentTarget {
		t.Errorf("Expected a Deployment with the pods' exact lists to send at most %d %% of stock's queries for the names that exist, got %d against %d", deploymentTarget, pods.present, stock.present)
	}

	startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), lab.DefaultResolvConf())
	local := lookupZoo(t, l)
	report("node-local, search pods", local)
	if pct(local.present, stock.present) > nodeLocalTarget {
		t.Errorf("Expected the node-local server to send at most %d %% of stock's queries for the names that exist, got %d against %d", nodeLocalTarget, local.present, stock.present)
	}
	if local.total() >= infer.total() {
		t.Errorf("Expected fewer queries with raceguard node-local than with a Deployment without the pods' lists, got %d against %d", local.total(), infer.total())
	}
	// The zoo is only a test if the names behave differently from each other.
	kinds := map[string]bool{}
	for _, v := range stock.out {
		kinds[strings.SplitN(v, ",", 2)[0]] = true
	}
	for _, want := range []string{"EAI_NONAME", "EAI_NODATA", "EAI_AGAIN"} {
		if !kinds[want] {
			t.Errorf("Expected the zoo to produce %s somewhere, got %v", want, kinds)
		}
	}
}
