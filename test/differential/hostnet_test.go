package differential

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// hostPod is a hostNetwork pod of the lab's node: its resolv.conf (dnsPolicy
// ClusterFirstWithHostNet, with the node-local server's address as the cluster DNS) and what it
// looks up.
type hostPod struct {
	name string
	rc   lab.ResolvConf
}

// hostPods share the node's address: a pod in default and one in kube-system (a CNI agent, say).
var hostPods = []hostPod{
	{"default", hostResolvConf("default")},
	{"kube-system", hostResolvConf("kube-system")},
}

// hostNames are names the two namespaces resolve differently, and names beyond the cluster.
var hostNames = []string{"web", "kube-dns", "api.shop", "example.org", "registry", "jira.eu", "nosuch.example.org"}

// hostResolvConf is the resolv.conf of a ClusterFirstWithHostNet pod in namespace ns on a node
// whose kubelet names the node-local server as the cluster DNS.
func hostResolvConf(ns string) lab.ResolvConf {
	rc := lab.DefaultResolvConf()
	rc.Nameserver = lab.NodeIP
	rc.Search = append([]string{ns + ".svc.cluster.local"}, rc.Search[1:]...)
	return rc
}

// hostLookups looks names up by pod with both C libraries and every family, from the node's
// own namespace, and returns the outcomes and the queries sent.
func hostLookups(t *testing.T, l *lab.Lab, pod hostPod, names []string) (map[LookupKey]string, int) {
	t.Helper()
	out := map[LookupKey]string{}
	sent := 0
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		for _, family := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
			rs, n, err := l.LookupHostNetwork(libc, family, pod.rc, 8, names...)
			if err != nil {
				t.Fatal(err)
			}
			sent += n
			for _, r := range rs {
				out[LookupKey{libc, family, pod.name + ": " + r.Name}] = r.String()
			}
		}
	}
	return out, sent
}

// TestHostNetworkDifferential proves, with real glibc and musl clients (AF_UNSPEC, AF_INET,
// AF_INET6), that search completion gives hostNetwork pods (dnsPolicy ClusterFirstWithHostNet:
// the ClusterFirst list of their namespace, sent from the node's own address) what stock gives
// them, on a node-local raceguard: the clients run in the node's namespace, as hostNetwork pods
// do, and two pods of different namespaces share the node's address. The node's own address is
// no one client's: the server learns no list for it and completes its walks as a Deployment
// does, within each namespace's own hierarchy, for both pods. (On a Deployment, completions follow
// the name alone, not the client's address: TestPodSettingsDifferential's ClusterFirst row covers
// hostNetwork pods there.)
func TestHostNetworkDifferential(t *testing.T) {
	l := testenv.NewLab(t)
	type counts struct{ stock, nodeLocal int }
	q := make([]counts, len(hostPods))
	stock := make([]map[LookupKey]string, len(hostPods))

	stop := startNodeLocal(t, l, lab.StockCorefile)
	for i, p := range hostPods {
		stock[i], q[i].stock = hostLookups(t, l, p, hostNames)
	}
	stop()

	startNodeLocal(t, l, withNodeLocal(lab.RaceguardCorefile))
	for _, p := range hostPods {
		hostTeach(t, l, p)
	}
	var table strings.Builder
	table.WriteString("| hostNetwork pod | stock | node-local |\n|---|---|---|\n")
	for i, p := range hostPods {
		got, n := hostLookups(t, l, p, hostNames)
		q[i].nodeLocal = n
		reportDiffs(t, "node-local", stock[i], got)
		fmt.Fprintf(&table, "| %s | %d | %d |\n", p.name, q[i].stock, q[i].nodeLocal)
		if n > q[i].stock {
			t.Errorf("%s: Expected no more queries with raceguard than the %d of stock, got %d", p.name, q[i].stock, n)
		}
	}
	declined := nodeSum(t, l, "coredns_raceguard_search_declined_total", map[string]string{"reason": "other_namespace"})
	t.Logf("Queries of %d names, each looked up by glibc and musl for AF_UNSPEC, AF_INET and AF_INET6, from the node's address (%v first tries declined as another namespace's):\n%s",
		len(hostNames), declined, table.String())
	if declined != 0 {
		t.Errorf("Expected no list learned for the node's own address, so no first try declined as another namespace's, got %v", declined)
	}
	if q[0].nodeLocal >= q[0].stock {
		t.Errorf("Expected the node-local server to complete for the hostNetwork pod within its namespace's hierarchy, got %d queries against %d", q[0].nodeLocal, q[0].stock)
	}
}

// hostTeach makes the node-local server learn pod's list, as teach does for the lab's client.
func hostTeach(t *testing.T, l *lab.Lab, pod hostPod) {
	t.Helper()
	if _, _, err := l.LookupHostNetwork(lab.Glibc, lab.Unspec, pod.rc, 1, "learn.nosuch.example"); err != nil {
		t.Fatal(err)
	}
}

// TestHostNetworkSameNamespace: two hostNetwork pods of namespace default share the node's
// address, one with ClusterFirstWithHostNet and one with dnsPolicy None and no node domain. A
// server that learned the first pod's list from that address would complete the second pod's
// lookups of names found only in the node's domain (the jira.eu) where its own resolver
// ends with EAI_NONAME; it learns no list for the node's own addresses, and both get what stock
// gives them.
func TestHostNetworkSameNamespace(t *testing.T) {
	l := testenv.NewLab(t)
	first := hostPod{"default", hostResolvConf("default")}
	none := lab.PolicyNone(clusterSearch, "ndots:5")
	none.Nameserver = lab.NodeIP
	second := hostPod{"default, dnsPolicy None", none}
	names := []string{"jira.eu", "registry", "srv.corp"}

	stop := startNodeLocal(t, l, lab.StockCorefile)
	stock, _ := hostLookups(t, l, second, names)
	stop()
	startNodeLocal(t, l, withNodeLocal(lab.RaceguardCorefile))
	hostTeach(t, l, first)
	got, _ := hostLookups(t, l, second, names)
	reportDiffs(t, "node-local", stock, got)
}
