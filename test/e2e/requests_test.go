package e2e

import (
	"testing"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/testkit"
)

// TestRequestsCountWhatClientsSent: raceguard's own queries (a walk's tries, a prefetch) go
// through the server and are counted by the prometheus plugin too; each is also counted in
// coredns_raceguard_own_requests_total with the same server, zone and type, so that the
// difference moves exactly as the client's packets do.
func TestRequestsCountWhatClientsSent(t *testing.T) {
	udp, _, _ := searchServer(t, "")
	clients := func() float64 {
		return metric(t, "coredns_dns_requests_total", nil) - metric(t, "coredns_raceguard_own_requests_total", nil)
	}
	total := func() float64 { return metric(t, "coredns_dns_requests_total", nil) }

	for _, tc := range []struct {
		name  string
		qtype uint16
	}{
		{"Api.Shop.default.svc.cluster.local.", dns.TypeA},    // completed: a walk of several names
		{"Api.Shop.default.svc.cluster.local.", dns.TypeAAAA}, // the other of the pair
		{"example.org.default.svc.cluster.local.", dns.TypeA}, // passed through; the walk goes on
		{"web.default.svc.cluster.local.", dns.TypeA},         // as asked
		{"nosuch.cluster.local.", dns.TypeMX},                 // not an address query
	} {
		before, beforeTotal := clients(), total()
		exchange(t, "udp", udp, tc.name, tc.qtype, 1232, false)
		// A walk may go on after the client's reply (the names it left for the client's own
		// tries): wait for the two counters to settle, each own query counted in both.
		testkit.Eventually(t, "requests less raceguard's own to move by the one client query", func() bool { return clients()-before == 1 })
		if tc.name == "Api.Shop.default.svc.cluster.local." && tc.qtype == dns.TypeA && total()-beforeTotal < 2 {
			t.Errorf("Expected the walk's own queries counted in coredns_dns_requests_total too, got %v in all", total()-beforeTotal)
		}
	}
}
