package e2e

import (
	"testing"

	"github.com/miekg/dns"
)

// TestSearchLearnedListFromNamesAsIs is the smallest reproduction of a node-local raceguard
// learning a client's search list from names the client asked as is. The client's list is
// known (its first lookup walked on by itself). It then asks two names as is, as a program that
// looks a service up in several namespaces by its full name does: db.default.svc.cluster.local.
// (none) and db.shop.svc.cluster.local. The first is the first try of a search walk of "db" in
// its namespace, and its walk is kept for the client, which does not continue it; the second is
// that base under shop.svc.cluster.local, so raceguard takes it for the client's next try and
// learns the list default.svc.cluster.local, shop.svc.cluster.local. The client's next lookup of
// "api", which no domain of its real list has, is then completed to api.shop.svc.cluster.local,
// where its own walk ends with NXDOMAIN.
func TestSearchLearnedListFromNamesAsIs(t *testing.T) {
	udp, _, _ := searchServer(t, "node_local on")
	walkLookup(t, clientOK, udp, "learn.nosuch.example", clusterFirst)
	for _, name := range []string{"db.default.svc.cluster.local.", "db.shop.svc.cluster.local."} {
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			exchangeFrom(t, clientOK, udp, name, qtype)
		}
	}
	if got, _ := walkLookup(t, clientOK, udp, "api", clusterFirst); got != "NXDOMAIN" {
		t.Errorf("Expected the lookup of api from namespace default to end with NXDOMAIN, as without raceguard, got %s", got)
	}
}
