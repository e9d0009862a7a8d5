package differential

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	corev1 "k8s.io/api/core/v1"
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
// no one client's: the pod watch answers it as shared, and the server completes its walks as a
// Deployment does, within each namespace's own hierarchy, for both pods. (On a Deployment, completions follow
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

	startHostPods(t, l, "default", "kube-system")
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
	shared := nodeSum(t, l, "coredns_raceguard_pod_lookups_total", map[string]string{"state": "shared"})
	known := nodeSum(t, l, "coredns_raceguard_pod_lookups_total", map[string]string{"state": "known"})
	t.Logf("Queries of %d names, each looked up by glibc and musl for AF_UNSPEC, AF_INET and AF_INET6, from the node's address (%v lookups of its list answered shared):\n%s",
		len(hostNames), shared, table.String())
	if shared == 0 || known != 0 {
		t.Errorf("Expected the node's own address answered as shared by the pod watch, never with one pod's list, got %v shared and %v known", shared, known)
	}
	if q[0].nodeLocal >= q[0].stock {
		t.Errorf("Expected the node-local server to complete for the hostNetwork pod within its namespace's hierarchy, got %d queries against %d", q[0].nodeLocal, q[0].stock)
	}
}

// startHostPods starts a node-local raceguard with the pod watch, whose API has a hostNetwork pod
// of each namespace on the node (at the node's address).
func startHostPods(t *testing.T, l *lab.Lab, namespaces ...string) {
	t.Helper()
	for _, ns := range namespaces {
		if err := l.PutPod(kubeapi.Pod{Namespace: ns, Name: "host-" + ns, IP: lab.NodeIP, HostNetwork: true, DNSPolicy: corev1.DNSClusterFirstWithHostNet}); err != nil {
			t.Fatal(err)
		}
	}
	startNodeLocal(t, l, withNodeLocal(lab.RaceguardCorefile))
	if err := l.WaitPodWatch(); err != nil {
		t.Fatal(err)
	}
}

// TestHostNetworkSameNamespace: two hostNetwork pods of namespace default share the node's
// address, one with ClusterFirstWithHostNet and one with dnsPolicy None and no node domain. A
// server that took the first pod's list for that address would complete the second pod's lookups
// of names found only in the node's domain (jira.eu) where its own resolver ends with EAI_NONAME;
// the pod watch answers the node's address as shared, and both get what stock gives them.
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
	startHostPods(t, l, "default")
	hostLookups(t, l, first, names) // the first pod's lookups come first
	got, _ := hostLookups(t, l, second, names)
	reportDiffs(t, "node-local", stock, got)
}
