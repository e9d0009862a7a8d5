package searchpath

import (
	"testing"

	"github.com/coredns/coredns/plugin/metrics/vars"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWalkPanic: a plugin below that panics on a name a walk tries fails that try alone, as
// dnsserver fails the query of a chain that panics: a later name's panic makes the walk pass
// through (the client gets its first try's own answer and walks itself), the first name's gives
// the client SERVFAIL; each is counted, and the process lives on.
func TestWalkPanic(t *testing.T) {
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 120 IN AAAA 2001:db8::10")
	z.panics["example.org.cluster.local."] = true
	z.panics["www.boom.default.svc.cluster.local."] = true
	wk := newWalker(t, z)

	before := testutil.ToFloat64(vars.Panic)
	m, rcode, err := ask(t, wk, "example.org.default.svc.cluster.local.", dns.TypeA, 7)
	if err != nil || m == nil || m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 {
		t.Errorf("Expected the first try's own NXDOMAIN when a later try panics, got rcode %d, error %v, reply %v", rcode, err, m)
	}
	// The A and AAAA of the panicking name, each recovered on its own.
	if got := testutil.ToFloat64(vars.Panic) - before; got != 2 {
		t.Errorf("Expected coredns_panics_total up by 2, got %v", got)
	}

	m, rcode, err = ask(t, wk, "www.boom.default.svc.cluster.local.", dns.TypeA, 8)
	if rcode != dns.RcodeServerFailure || err == nil || m != nil {
		t.Errorf("Expected SERVFAIL left to the server to write when the first try panics, got rcode %d, error %v, reply %v", rcode, err, m)
	}
}
