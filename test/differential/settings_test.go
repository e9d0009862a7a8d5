package differential

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// podSetting is a pod's DNS setting, as the resolv.conf kubelet writes for it, and the names
// whose lookups it changes (TestSearchDifferential runs the whole zoo as ClusterFirst).
type podSetting struct {
	name  string
	rc    lab.ResolvConf
	names []string
}

// clusterSearch is the search list of a ClusterFirst pod in namespace default, without the
// node's domain.
var clusterSearch = []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local"}

// podSettings are the pod DNS settings search completion must get right (issue 11, case 6).
var podSettings = []podSetting{
	{"ClusterFirst", lab.DefaultResolvConf(),
		// found in another namespace, as is at the end, in the node's domain, nowhere
		[]string{"api.shop", "example.org", "registry", "jira.eu", "nosuch.example.org"}},
	{"dnsConfig searches +corp.test", lab.DefaultResolvConf().WithSearch("corp.test"),
		// found only under the extra domain, after the node's; wiki.eu. exists too, after it
		[]string{"intranet", "wiki.eu", "registry", "example.org", "nosuch.example.org"}},
	{"dnsPolicy None, no node domain", lab.PolicyNone(clusterSearch, "ndots:5"),
		// the jira.eu, and the names the node's domain alone has: not found
		[]string{"jira.eu", "srv.corp", "registry", "shop", "example.org", "nosuch.example.org"}},
	{"ndots:1", lab.DefaultResolvConf().WithNdots(1),
		// a name with a dot is tried as is first, then searched
		[]string{"api.shop", "db-0.db.shop", "example.org", "web", "jira.eu", "nosuch.example.org"}},
	{"ndots:2", lab.DefaultResolvConf().WithNdots(2),
		// one dot: searched first; two dots: as is first
		[]string{"api.shop", "db-0.db.shop", "www.example.org", "example.org", "srv.corp"}},
	{"dnsPolicy Default", lab.PolicyDefault(),
		// the node's list: no first try of a namespace's search walk
		[]string{"web", "registry", "srv.corp", "jira.eu", "example.org", "kubernetes.default"}},
}

// TestPodSettingsDifferential proves, with real glibc and musl clients (AF_UNSPEC, AF_INET,
// AF_INET6), that every lookup ends as without raceguard for each pod DNS setting (podSettings):
// ClusterFirst, dnsConfig with an extra search domain after the node's, dnsPolicy None without
// the node's domain (the jira.eu), ndots 1 and 2, and dnsPolicy Default. Each runs
// against stock CoreDNS, a raceguard Deployment with search infer (which completes within the
// namespace's own hierarchy only, whatever the list), the same Deployment with the pods' exact
// lists from the API (search pods: two replicas, so no one-label name), and a node-local
// raceguard with them, each fresh per setting. ClusterFirstWithHostNet is ClusterFirst's list
// from the node's address: TestHostNetworkDifferential. It logs the queries each sends.
func TestPodSettingsDifferential(t *testing.T) {
	l := testenv.NewLab(t)
	type counts struct{ stock, deployment, pods, nodeLocal int }
	stock := make([]map[LookupKey]string, len(podSettings))
	q := make([]counts, len(podSettings))

	startDeployment(t, l, lab.StockCorefile)
	for i, s := range podSettings {
		stock[i], q[i].stock = LookupWith(t, l, s.rc, s.names)
	}
	for i, s := range podSettings {
		// A fresh server per setting: what it remembers of a client belongs to one pod.
		startDeployment(t, l, lab.RaceguardCorefile)
		got, n := LookupWith(t, l, s.rc, s.names)
		q[i].deployment = n
		reportDiffs(t, s.name+", Deployment", stock[i], got)
	}
	for i, s := range podSettings {
		startDeploymentFor(t, l, lab.RaceguardCorefile, s.rc)
		got, n := LookupWith(t, l, s.rc, s.names)
		q[i].pods = n
		reportDiffs(t, s.name+", Deployment with search pods", stock[i], got)
	}
	for i, s := range podSettings {
		stop := startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), s.rc)
		got, n := LookupWith(t, l, s.rc, s.names)
		stop()
		q[i].nodeLocal = n
		reportDiffs(t, s.name+", node-local", stock[i], got)
	}

	var table strings.Builder
	table.WriteString("| pod DNS setting | names | stock | Deployment, search infer | Deployment, search pods | node-local, search pods |\n|---|---|---|---|---|---|\n")
	for i, s := range podSettings {
		fmt.Fprintf(&table, "| %s | %d | %d | %d | %d | %d |\n", s.name, len(s.names), q[i].stock, q[i].deployment, q[i].pods, q[i].nodeLocal)
		if q[i].deployment > q[i].stock || q[i].pods > q[i].stock || q[i].nodeLocal > q[i].stock {
			t.Errorf("%s: Expected no more queries with raceguard than the %d of stock, got %d (Deployment), %d (Deployment with search pods) and %d (node-local)",
				s.name, q[i].stock, q[i].deployment, q[i].pods, q[i].nodeLocal)
		}
	}
	t.Logf("Queries sent, each name looked up by glibc and musl for AF_UNSPEC, AF_INET and AF_INET6:\n%s", table.String())
}
