package differential

import (
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// The lab runs a Corefile in one of two layouts: a cluster Deployment (the two DNS servers behind
// the ClusterIP's random DNAT, so a client's tries spread over both) or a node-local server (one
// server in the node's namespace, the only one the ClusterIP leads to, which sees every try).

// startDeployment runs corefile on both DNS servers behind the ClusterIP.
func startDeployment(t *testing.T, l *lab.Lab, corefile string) {
	t.Helper()
	if err := backends(l); err != nil {
		t.Fatal(err)
	}
	testenv.StartDNS(t, l, corefile)
}

// backends leads the ClusterIP to the two DNS servers, and no flow to the node-local server.
func backends(l *lab.Lab) error { return l.SetBackends(len(lab.DNSIPs)) }

// startNodeLocal runs corefile as the node's own DNS server, and returns the function that stops
// it and leads the ClusterIP back to the DNS servers (also called when the test ends).
func startNodeLocal(t *testing.T, l *lab.Lab, corefile string) (stop func()) {
	t.Helper()
	p, err := l.StartNodeDNS(corefile)
	if err != nil {
		t.Fatal(err)
	}
	stop = func() {
		p.Stop()
		if err := backends(l); err != nil {
			t.Error(err)
		}
	}
	t.Cleanup(stop)
	return stop
}

// clusterPodWatch is the pod watch of a cluster Deployment: every pod's list, through the lab's
// Kubernetes API (no node_local: replicas behind the ClusterIP each see some of a client's tries).
const clusterPodWatch = "search pods\n        kubeconfig {{.Kubeconfig}}"

// startDeploymentFor runs corefile, its raceguard block with the cluster pod watch, on both DNS
// servers for the lab client as a pod whose resolv.conf is rc, once both watches have synced.
func startDeploymentFor(t *testing.T, l *lab.Lab, corefile string, rc lab.ResolvConf) {
	t.Helper()
	if err := l.SetClientPod(rc); err != nil {
		t.Fatal(err)
	}
	startDeployment(t, l, strings.Replace(corefile, "raceguard {", "raceguard {\n        "+clusterPodWatch, 1))
	for i, ip := range lab.DNSIPs {
		if err := lab.WaitPodWatchAt(l.DNS[i], ip+":9153"); err != nil {
			t.Fatal(err)
		}
	}
}

// withNodeLocal returns corefile with its raceguard block made a node-local server's that
// completes with the lab pods' exact lists (lab.PodWatchOptions).
func withNodeLocal(corefile string) string {
	return strings.Replace(corefile, "raceguard {", "raceguard {\n        "+lab.PodWatchOptions, 1)
}

// startNodeLocalFor runs corefile (withNodeLocal) as the node's own DNS server for the lab client
// as a pod whose resolv.conf is rc, once its pod watch has synced, and returns the function that
// stops it (startNodeLocal).
func startNodeLocalFor(t *testing.T, l *lab.Lab, corefile string, rc lab.ResolvConf) (stop func()) {
	t.Helper()
	if err := l.SetClientPod(rc); err != nil {
		t.Fatal(err)
	}
	stop = startNodeLocal(t, l, corefile)
	if err := l.WaitPodWatch(); err != nil {
		t.Fatal(err)
	}
	return stop
}

// nodeSum returns the sum of the node-local server's samples of metric name whose labels include
// labels.
func nodeSum(t *testing.T, l *lab.Lab, name string, labels map[string]string) float64 {
	t.Helper()
	m, err := l.ScrapeNode()
	if err != nil {
		t.Fatal(err)
	}
	return m.Sum(name, labels)
}

// reportDiffs fails t with each difference of got (with raceguard, in the run named what) from
// want (without).
func reportDiffs(t *testing.T, what string, want, got map[LookupKey]string) {
	t.Helper()
	for _, d := range DiffLookups(want, got) {
		t.Error(what + ": " + d)
	}
}
