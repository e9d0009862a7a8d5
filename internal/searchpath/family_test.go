package searchpath

import (
	"net/netip"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// only is a Families that says every client asked one type alone.
type only uint16

func (o only) Asked(_ netip.Addr, qtype uint16) bool { return qtype == uint16(o) }

func TestWalkSingleFamily(t *testing.T) {
	// A client that asks A alone is walked for A only: its walk costs upstream what its own does.
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	wk := newWalker(t, z)
	wk.Families = only(dns.TypeA)
	const q = "example.org.default.svc.cluster.local."
	m, _, _ := ask(t, wk, q, dns.TypeA, 1)
	if len(m.Answer) != 2 {
		t.Fatalf("Expected a completion, got %v", m)
	}
	if a, aaaa := z.count("example.org.", dns.TypeA), z.count("example.org.", dns.TypeAAAA); a != 1 || aaaa != 0 {
		t.Errorf("Expected the walk to ask A only, got %d A and %d AAAA", a, aaaa)
	}
	if n := z.total(); n != 5 {
		t.Errorf("Expected 5 queries (one A per name), got %d", n)
	}
	// An AAAA of the same lookup after all (a new process in the pod, or glibc's
	// single-request): it is completed at the same name, with that name's own AAAA, as a client
	// asking both would stop there with both; one more query down the chain.
	m, _, _ = ask(t, wk, q, dns.TypeAAAA, 2)
	if len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "example.org." || m.Answer[1].(*dns.AAAA).AAAA.String() != "2001:db8::10" {
		t.Errorf("Expected the AAAA completed at example.org., got %v", m)
	}
	if n := z.total(); n != 6 || z.count("example.org.", dns.TypeAAAA) != 1 {
		t.Errorf("Expected one more query, example.org. AAAA, got %d in all", n)
	}
}

func TestWalkNewClientPair(t *testing.T) {
	// A client that asked nothing yet sends the A and the AAAA of a lookup at once: the walk
	// resolves the A alone, and the AAAA, which waited for it, is completed at the same name. Both
	// name the same target; the AAAA of the names before it is never asked.
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	wk := newWalker(t, z)
	wk.Families = only(0)
	const q = "example.org.default.svc.cluster.local."
	z.hold(q)
	var wg sync.WaitGroup
	var got [2]*dns.Msg
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Go(func() { got[i], _, _ = ask(t, wk, q, qt, uint16(i+1)) })
		if i == 0 {
			z.waitEntered(t, q+"/A") // the A leads; the AAAA comes while its walk is out
		}
	}
	z.release(q)
	wg.Wait()
	for i, m := range got {
		if m == nil || len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "example.org." {
			t.Fatalf("Expected reply %d completed at example.org., got %v", i, m)
		}
	}
	if aaaa := got[1].Answer[1].(*dns.AAAA).AAAA.String(); aaaa != "2001:db8::10" {
		t.Errorf("Expected the AAAA's own record, got %s", aaaa)
	}
	for _, n := range []string{"example.org.default.svc.cluster.local.", "example.org.svc.cluster.local.", "example.org.cluster.local.", "example.org.lab.internal."} {
		if c := z.count(n, dns.TypeAAAA); c != 0 {
			t.Errorf("Expected no AAAA of %s, got %d", n, c)
		}
	}
	if c := z.count("example.org.", dns.TypeAAAA); c != 1 {
		t.Errorf("Expected one AAAA of example.org., got %d", c)
	}
}

func TestWalkSingleFamilySiblingUnclean(t *testing.T) {
	// The AAAA of the name an A-only walk completed at fails: the AAAA is answered as asked, the
	// first try's own answer, as the walk would have passed had it resolved both.
	z := newZone("example.org. 300 IN A 192.0.2.10")
	z.rcodes["example.org./AAAA"] = dns.RcodeServerFailure
	wk := newWalker(t, z)
	wk.Families = only(dns.TypeA)
	const q = "example.org.default.svc.cluster.local."
	if m, _, _ := ask(t, wk, q, dns.TypeA, 1); len(m.Answer) != 2 {
		t.Fatalf("Expected a completion, got %v", m)
	}
	m, _, _ := ask(t, wk, q, dns.TypeAAAA, 2)
	if m.Rcode != dns.RcodeNameError || len(m.Answer) != 0 || m.Question[0].Name != q {
		t.Errorf("Expected the AAAA answered as asked, got %v", m)
	}
}
