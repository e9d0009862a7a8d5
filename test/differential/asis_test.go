package differential

import (
	"fmt"
	"maps"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// asIsName is a name a client in namespace default asks as is that is byte for byte the first
// try of a search walk (README.md, Bugs): five dots, which ndots:5 tries as is first, or a
// trailing dot, which is never searched. Stock CoreDNS answers it NXDOMAIN.
type asIsName struct {
	name      string // as the client asks it
	target    string // the first name after it of the walk it looks like the first try of
	hierarchy bool   // target is in the namespace's own hierarchy, which is trusted for any client
	own       bool   // it is under the client's own namespace
}

// asIsNames have a base each: a walk of one base that the client does not continue is kept for
// it a while, and a later name of the same base would be taken for its next try.
var asIsNames = []asIsName{
	{"kubernetes.default.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.", true, true},
	{"web.default.shop.svc.cluster.local.", "web.default.svc.cluster.local.", true, false},
	{"example.org.default.svc.cluster.local", "example.org.", false, true},
	{"many.example.com.shop.svc.cluster.local", "many.example.com.", false, false},
	{"api.shop.default.svc.cluster.local", "api.shop.svc.cluster.local.", true, true},
}

// asIsLookups looks the names of asIsNames up, the trailing-dot ones first: a five-dot name the
// client searches below after its NXDOMAIN shows a node-local server the client's list, and a
// client whose list is known is no longer one whose list is unknown.
func asIsLookups(t *testing.T, l *lab.Lab) map[LookupKey]string {
	t.Helper()
	var trailing, dotted []string
	for _, n := range asIsNames {
		if strings.HasSuffix(n.name, ".") {
			trailing = append(trailing, n.name)
		} else {
			dotted = append(dotted, n.name)
		}
	}
	out, _ := LookupAll(t, l, trailing)
	more, _ := LookupAll(t, l, dotted)
	maps.Copy(out, more)
	return out
}

// TestAsIsDifferential pins, with real glibc and musl clients (AF_UNSPEC, AF_INET, AF_INET6),
// exactly which names asked as is search completion still answers with another name's
// addresses, as README.md's Bugs says: the same bytes as the first try of a search walk, so a
// server that does not know the client's namespace completes them where the walk stops in the
// namespace's own hierarchy (a cluster Deployment, and a node-local server before it knows the
// client's list: kubernetes.default.default.svc.cluster.local., and web.default under another
// namespace), and a node-local server that knows the client's list completes those under the
// client's own namespace, as far as that list goes (example.org.default.svc.cluster.local too),
// and none under another. Everywhere else the outcome is stock's. Where such a name passed
// through and the client searched below it, coredns_raceguard_search_as_is_total counts it.
func TestAsIsDifferential(t *testing.T) {
	l := testenv.NewLab(t)
	startDeployment(t, l, lab.StockCorefile)
	stock := asIsLookups(t, l)
	var targets []string
	for _, n := range asIsNames {
		targets = append(targets, n.target)
	}
	direct, _ := LookupAll(t, l, targets)
	for k, v := range stock {
		if !strings.HasPrefix(v, "EAI_") {
			t.Errorf("Expected %v to fail without raceguard (the name does not exist), got %s", k, v)
		}
	}

	// check compares got with stock's outcomes, or, for the names completed reports, with the
	// outcomes of the name its walk completes to, looked up directly.
	check := func(run string, got map[LookupKey]string, completed func(asIsName) bool) {
		t.Helper()
		want := maps.Clone(stock)
		for _, n := range asIsNames {
			if !completed(n) {
				continue
			}
			for k := range want {
				if k.Name == n.name {
					want[k] = direct[LookupKey{k.Libc, k.Family, n.target}]
				}
			}
		}
		for _, d := range DiffLookups(want, got) {
			t.Errorf("%s: %s", run, strings.Replace(d, "without raceguard", "want", 1))
		}
	}
	inHierarchy := func(n asIsName) bool { return n.hierarchy }

	startDeployment(t, l, lab.RaceguardCorefile)
	deployment := asIsLookups(t, l)
	check("Deployment", deployment, inHierarchy)

	// Node-local without the pod watch: the client's list is unknown, the namespace's hierarchy
	// alone is trusted.
	stop := startNodeLocal(t, l, strings.Replace(lab.RaceguardCorefile, "raceguard {", "raceguard {\n        node_local on", 1))
	unknown := asIsLookups(t, l)
	asIs := nodeSum(t, l, "coredns_raceguard_search_as_is_total", nil)
	stop()
	check("node-local, the client's list unknown", unknown, inHierarchy)
	// The five-dot names whose walks passed through (example.org and many.example.com: their
	// walks stop beyond the hierarchy), the client searched below: counted.
	if asIs < 1 {
		t.Errorf("Expected coredns_raceguard_search_as_is_total to count the five-dot names that passed through, got %v", asIs)
	}

	startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), lab.DefaultResolvConf())
	known := asIsLookups(t, l)
	if n := nodeSum(t, l, "coredns_raceguard_search_as_is_total", nil); n != 0 {
		t.Errorf("Expected no name asked as is to pass through for a client whose list is known (completed or declined), got %v counted", n)
	}
	check("node-local, the client's list from the pod watch", known, func(n asIsName) bool { return n.own })

	var table strings.Builder
	table.WriteString("| name (glibc AF_UNSPEC) | stock | Deployment | node-local, list unknown | node-local, list from the API |\n|---|---|---|---|---|\n")
	for _, n := range asIsNames {
		k := LookupKey{lab.Glibc, lab.Unspec, n.name}
		fmt.Fprintf(&table, "| %s | %s | %s | %s | %s |\n", n.name, stock[k], deployment[k], unknown[k], known[k])
	}
	t.Logf("Names asked as is (%v counted as such by the node-local server whose client's list was unknown):\n%s", asIs, table.String())
}
