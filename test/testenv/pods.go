package testenv

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/raceguard/raceguard/test/kubeapi"
)

// Node is the node the pods of PodWatch run on, and the node-local server's node.
const Node = "node-1"

// PodWatch serves pods (with no node given, on Node) from a fake Kubernetes API on loopback for
// the test, and returns the raceguard options that complete with their exact lists: search pods
// through the API's kubeconfig, as the server of Node, with node_search (a resolv.conf path or
// domains, "none" for no node domains).
func PodWatch(t testing.TB, nodeSearch string, pods ...kubeapi.Pod) (options string, api *kubeapi.API) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for i := range pods {
		if pods[i].Node == "" {
			pods[i].Node = Node
		}
	}
	api = kubeapi.Serve(ln, kubeapi.Sample(pods...))
	t.Cleanup(api.Close)
	kubeconfig, err := api.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return "search pods\n        kubeconfig " + kubeconfig + "\n        node " + Node + "\n        node_search " + nodeSearch, api
}

// WaitPodWatch waits until every pod watch of this process answers lookups
// (coredns_raceguard_pod_watch_up 1), and fails the test if none does within 10 s.
func WaitPodWatch(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		mfs, err := prometheus.DefaultGatherer.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "coredns_raceguard_pod_watch_up" && len(mf.Metric) == 1 && mf.Metric[0].GetGauge().GetValue() == 1 {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("Timed out waiting for the pod watch to sync")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
