package e2e

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestSearchNamesAsIsTeachNothing: a client asks two names as is, as a program that looks a
// service up in several namespaces by its full name does: db.default.svc.cluster.local. (none)
// and db.shop.svc.cluster.local. The first is also the first try of a search walk of "db" in its
// namespace, kept for the client, which does not continue it; the second is that base under
// shop.svc.cluster.local, a domain its list does not have. When raceguard learned lists from
// tries, it took the second for the client's next try, and completed the client's next lookup of
// "api" to api.shop.svc.cluster.local, where the client's own walk ends with NXDOMAIN. Its list
// now comes from the pod watch, and the lookup ends as without raceguard.
func TestSearchNamesAsIsTeachNothing(t *testing.T) {
	pods, _ := testenv.PodWatch(t, lab.NodeDomain, kubeapi.Pod{Namespace: "default", Name: "client", IP: clientOK})
	udp, _, _ := searchServer(t, pods+"\n        node_local on")
	testenv.WaitPodWatch(t)
	for _, name := range []string{"db.default.svc.cluster.local.", "db.shop.svc.cluster.local."} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			exchangeFrom(t, clientOK, udp, name, qtype)
		}
	}
	if got, _ := walkLookup(t, clientOK, udp, "api", clusterFirst); got != "NXDOMAIN" {
		t.Errorf("Expected the lookup of api from namespace default to end with NXDOMAIN, as without raceguard, got %s", got)
	}
}
