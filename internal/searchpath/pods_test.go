package searchpath

import (
	"context"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/resolvconf"
)

// lists is a Lists of fixed pods: the search list and ndots the kubelet wrote for each address.
type lists map[netip.Addr]struct {
	search []string
	ndots  int
}

func (l lists) Lookup(a netip.Addr) ([]string, int, bool) {
	p, ok := l[a]
	return p.search, p.ndots, ok
}

// The pods of these tests: a ClusterFirst pod in default on a node whose resolv.conf has
// corp.internal, and a dnsPolicy None pod with a list of its own.
var (
	podA     = netip.MustParseAddr("10.244.1.2")
	podB     = netip.MustParseAddr("10.244.1.3")
	stranger = netip.MustParseAddr("10.244.9.9")
	kubelet  = []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "corp.internal."}
	custom   = []string{"default.svc.cluster.local.", "apps.example.net."}
)

// podsWalker returns a Walker that plans walks with the pods' exact lists, and the namespace's
// own hierarchy for any other client, on a node-local server (one-label bases too).
func podsWalker(t *testing.T, z *zone) *Walker {
	wk := newWalker(t, z)
	wk.Source = &Pods{
		Lists:    lists{podA: {kubelet, 5}, podB: {custom, 2}},
		Else:     &Infer{ClusterDomains: []string{"cluster.local."}, Node: resolvconf.New([]string{"corp.internal."})},
		EveryTry: true,
	}
	return wk
}

// lookupFrom sends name and qtype from the client at addr through wk, as the handler does.
func lookupFrom(t *testing.T, wk *Walker, addr netip.Addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r := new(dns.Msg).SetQuestion(name, qtype)
	r.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: addr.String()})
	serve(context.Background(), wk, rec, r)
	return rec.Msg
}

// target returns the name a completion's CNAME points at, or "" for a reply that is no completion.
func targetOf(m *dns.Msg) string {
	if m == nil || len(m.Answer) == 0 {
		return ""
	}
	if c, ok := m.Answer[0].(*dns.CNAME); ok {
		return c.Target
	}
	return ""
}

func TestPodsComplete(t *testing.T) {
	// With the pod's exact list, every lookup completes where its own walk would stop: a one-label
	// name at a node domain, an external name at the name itself, a service's full name written
	// without its trailing dot at itself, a node domain's own name at itself.
	z := newZone("redis.corp.internal. 30 IN A 10.1.1.2", "example.org. 300 IN A 192.0.2.10",
		"kubernetes.default.svc.cluster.local. 30 IN A 10.96.0.1", "db.corp.internal. 30 IN A 10.1.1.3")
	wk := podsWalker(t, z)
	for _, tc := range []struct{ first, target string }{
		{"redis.default.svc.cluster.local.", "redis.corp.internal."},
		{"example.org.default.svc.cluster.local.", "example.org."},
		{"kubernetes.default.svc.cluster.local.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local."},
		{"db.corp.internal.default.svc.cluster.local.", "db.corp.internal."},
	} {
		if m := lookupFrom(t, wk, podA, tc.first, dns.TypeA); targetOf(m) != tc.target || len(m.Answer) != 2 {
			t.Errorf("%s: Expected a completion to %s, got %v", tc.first, tc.target, m)
		}
	}
	// The custom list: www.example.org with ndots:2 is asked as is first, so its name under the
	// first domain is no first try; a one-label name completes under the pod's own domain.
	z.add(test.A("wiki.apps.example.net. 30 IN A 10.2.2.2"))
	if m := lookupFrom(t, wk, podB, "wiki.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "wiki.apps.example.net." {
		t.Errorf("Expected wiki completed within the pod's own list, got %v", m)
	}
	z.add(test.A("www.example.org. 30 IN A 192.0.2.11"))
	if m := lookupFrom(t, wk, podB, "www.example.org.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "" || m.Rcode != dns.RcodeNameError {
		t.Errorf("Expected a name of ndots dots answered as asked, got %v", m)
	}
	// A client the API does not know: the namespace's hierarchy only, no one-label name.
	if m := lookupFrom(t, wk, stranger, "redis.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "" {
		t.Errorf("Expected no one-label completion for an unknown client, got %v", m)
	}
	if m := lookupFrom(t, wk, stranger, "example.org.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "" {
		t.Errorf("Expected no completion beyond the namespace's hierarchy for an unknown client, got %v", m)
	}
}

func TestPodsSpoofedTriesTeachNothing(t *testing.T) {
	// Another pod sends, with the victim's address, the tries of a walk through a domain of its
	// choosing (a wildcard zone). Nothing the victim's address sends decides its list: its lookups
	// complete with its own list, or, if the forged tries vetoed it, as without raceguard; never
	// into the attacker's zone.
	z := newZone("*.evil.test. 30 IN A 6.6.6.6", "example.org. 300 IN A 192.0.2.10")
	wk := podsWalker(t, z)
	for _, d := range []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "evil.test.", ""} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			lookupFrom(t, wk, podA, "zz1."+d, qt)
		}
	}
	for _, name := range []string{"example.org.default.svc.cluster.local.", "nosuch.default.svc.cluster.local.", "www.example.org.default.svc.cluster.local."} {
		m := lookupFrom(t, wk, podA, name, dns.TypeA)
		for _, rr := range m.Answer {
			if a, ok := rr.(*dns.A); ok && a.A.String() == "6.6.6.6" {
				t.Errorf("%s: Expected no answer from the attacker's zone, got %v", name, m)
			}
		}
	}
	if n := z.count("example.org.evil.test.", dns.TypeA) + z.count("nosuch.evil.test.", dns.TypeA); n != 0 {
		t.Errorf("Expected no walk through the attacker's domain, got %d queries there", n)
	}
}

func TestPodsTwoLookupsAddNoDomain(t *testing.T) {
	// A pod looks up wiki.eu (found at wiki.eu.corp.internal), then wiki.eu.example.net: the
	// second lookup's tries are its own walk, and example.net never joins the pod's list.
	z := newZone("wiki.eu.corp.internal. 30 IN A 10.3.3.3", "*.example.net. 30 IN A 7.7.7.7", "example.org. 300 IN A 192.0.2.10")
	wk := podsWalker(t, z)
	if m := lookupFrom(t, wk, podA, "wiki.eu.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "wiki.eu.corp.internal." {
		t.Fatalf("Expected wiki.eu completed at corp.internal, got %v", m)
	}
	lookupFrom(t, wk, podA, "wiki.eu.example.net.default.svc.cluster.local.", dns.TypeA)
	if m := lookupFrom(t, wk, podA, "example.org.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "example.org." {
		t.Errorf("Expected example.org completed at itself, not under example.net, got %v", m)
	}
}

func TestPodsLongerNameNotAbsorbed(t *testing.T) {
	// api.shop is found at api.shop.svc.cluster.local, A only: the walk is kept for the client
	// (its AAAA is NODATA). Then api.shop.default: its first try is no try of api.shop's walk, and
	// its second try, api.shop.default.svc.cluster.local, is that lookup's own, never completed
	// as a first try of api.shop: the client ends with NXDOMAIN, as without raceguard.
	z := newZone("api.shop.svc.cluster.local. 30 IN A 10.96.40.2")
	z.records["shop.svc.cluster.local."] = nil
	wk := podsWalker(t, z)
	if m := lookupFrom(t, wk, podA, "api.shop.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "api.shop.svc.cluster.local." {
		t.Fatalf("Expected api.shop completed, got %v", m)
	}
	lookupFrom(t, wk, podA, "api.shop.default.svc.cluster.local.", dns.TypeAAAA)
	for _, name := range []string{"api.shop.default.default.svc.cluster.local.", "api.shop.default.svc.cluster.local."} {
		if m := lookupFrom(t, wk, podA, name, dns.TypeA); targetOf(m) != "" || m.Rcode != dns.RcodeNameError {
			t.Errorf("%s: Expected NXDOMAIN, as the client's own walk of api.shop.default gets, got %v", name, m)
		}
	}
}

func TestPodsVeto(t *testing.T) {
	// The pod walks on by itself through a domain its list from the API does not have (it
	// rewrote its resolv.conf): its walks of that list stop for vetoTTL, and are counted.
	z := newZone()
	wk, clk := newWalkerClock(t, z)
	wk.Source = podsWalker(t, z).Source
	lookupFrom(t, wk, podA, "nosuch.example.default.svc.cluster.local.", dns.TypeA) // exhausted: the client walks on
	before := testutil.ToFloat64(vetoes.WithLabelValues(""))
	lookupFrom(t, wk, podA, "nosuch.example.svc.cluster.local.", dns.TypeA)
	lookupFrom(t, wk, podA, "nosuch.example.mine.example.", dns.TypeA)
	if got := testutil.ToFloat64(vetoes.WithLabelValues("")) - before; got != 1 {
		t.Fatalf("Expected the contradiction counted, got %v", got)
	}
	z.add(test.A("example.org. 300 IN A 192.0.2.10"))
	declinedBefore := testutil.ToFloat64(declined.WithLabelValues("", "vetoed"))
	if m := lookupFrom(t, wk, podA, "example.org.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "" {
		t.Errorf("Expected no completion for a vetoed client, got %v", m)
	}
	if got := testutil.ToFloat64(declined.WithLabelValues("", "vetoed")) - declinedBefore; got != 1 {
		t.Errorf("Expected the first try declined as vetoed, got %v", got)
	}
	clk.Step(vetoTTL)
	if m := lookupFrom(t, wk, podA, "example.org.default.svc.cluster.local.", dns.TypeA); targetOf(m) != "example.org." {
		t.Errorf("Expected completions back after %s, got %v", vetoTTL, m)
	}
}

func TestInferLongerNameNotAbsorbed(t *testing.T) {
	z := newZone("api.shop.svc.cluster.local. 30 IN A 10.96.40.2", "api.shop.svc.cluster.local. 30 IN AAAA fd00:96::40:2")
	z.records["shop.svc.cluster.local."] = nil
	z.records["default.svc.cluster.local."] = nil
	wk := podsWalker(t, z)
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if m := lookupFrom(t, wk, stranger, "api.shop.default.svc.cluster.local.", qt); targetOf(m) != "api.shop.svc.cluster.local." {
			t.Fatalf("Expected api.shop completed, got %v", m)
		}
	}
	for _, name := range []string{"api.shop.default.default.svc.cluster.local.", "api.shop.default.svc.cluster.local."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if m := lookupFrom(t, wk, stranger, name, qt); targetOf(m) != "" || m.Rcode != dns.RcodeNameError {
				t.Errorf("%s %d: Expected NXDOMAIN, got %v", name, qt, m)
			}
		}
	}
}
