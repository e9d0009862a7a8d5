package searchpath

import (
	"context"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestWalkDecided(t *testing.T) {
	// A completed lookup again, from the same client: answered from the decision, no walk; with
	// the client's own ID and case. Another client walks its own. The decision lives no longer
	// than the shortest TTL the walk met (here the address's, 2 s).
	z := newZone("example.org. 2 IN A 192.0.2.10", "example.org. 2 IN AAAA 2001:db8::10")
	wk, clk := newWalkerClock(t, z)
	lookup := func(ip, name string, qtype uint16, id uint16) *dns.Msg {
		r := new(dns.Msg).SetQuestion(name, qtype)
		r.Id = id
		rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: ip})
		serve(context.Background(), wk, rec, r)
		return rec.Msg
	}
	lookup("10.0.0.1", "example.org.default.svc.cluster.local.", dns.TypeA, 1)
	walked := z.total()
	before := testutil.ToFloat64(decidedCount.WithLabelValues(""))
	m := lookup("10.0.0.1", "Example.Org.default.svc.cluster.local.", dns.TypeAAAA, 2)
	if z.total() != walked || m.Id != 2 || m.Question[0].Name != "Example.Org.default.svc.cluster.local." ||
		len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "Example.Org." {
		t.Errorf("Expected the AAAA answered from the decision, with the client's ID and case, got %v after %d more queries", m, z.total()-walked)
	}
	if got := testutil.ToFloat64(decidedCount.WithLabelValues("")) - before; got != 1 {
		t.Errorf("Expected one decided answer counted, got %v", got)
	}
	lookup("10.0.0.2", "example.org.default.svc.cluster.local.", dns.TypeA, 3)
	if z.total() == walked {
		t.Error("Expected another client to walk its own lookup")
	}
	clk.Step(2100 * time.Millisecond)
	walked = z.total()
	lookup("10.0.0.1", "example.org.default.svc.cluster.local.", dns.TypeA, 4)
	if z.total() == walked {
		t.Error("Expected a new walk once the decision's TTL passed")
	}
}
