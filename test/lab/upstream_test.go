package lab

import (
	"testing"

	"github.com/miekg/dns"
)

func TestUpstreamSpreadTTLs(t *testing.T) {
	u, err := StartUpstream("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ask := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		r, err := dns.Exchange(m, u.Addr)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	zoneTTL := ask("many.example.com.", dns.TypeA).Answer[0].Header().Ttl

	u.SpreadTTLs(10, 30)
	seen := map[uint32]bool{}
	for _, name := range []string{"many.example.com.", "a.wild.example.com.", "b.wild.example.com.", "c.wild.example.com.", "d.wild.example.com."} {
		r := ask(name, dns.TypeA)
		if len(r.Answer) == 0 {
			t.Fatalf("%s: Expected an answer, got %v", name, r)
		}
		ttl := r.Answer[0].Header().Ttl
		for _, rr := range r.Answer {
			if rr.Header().Ttl != ttl || ttl < 10 || ttl > 30 {
				t.Errorf("%s: Expected one TTL in [10, 30] on every record, got %v", name, r.Answer)
			}
		}
		if again := ask(dns.Fqdn(name), dns.TypeA).Answer[0].Header().Ttl; again != ttl {
			t.Errorf("%s: Expected the same TTL each time, got %d then %d", name, ttl, again)
		}
		seen[ttl] = true
	}
	if len(seen) < 2 {
		t.Errorf("Expected different names to get different TTLs, got %v (the zone's is %d)", seen, zoneTTL)
	}
	// A negative answer's caching TTL is the SOA's: spread too.
	nx := ask("nowhere.example.invalid.", dns.TypeA)
	if nx.Rcode != dns.RcodeNameError || len(nx.Ns) == 0 {
		t.Fatalf("Expected NXDOMAIN with an SOA, got %v", nx)
	}
	soa, ok := nx.Ns[0].(*dns.SOA)
	if !ok || soa.Hdr.Ttl < 10 || soa.Hdr.Ttl > 30 || soa.Minttl != soa.Hdr.Ttl {
		t.Errorf("Expected the SOA's TTL and minimum spread alike, got %v", nx.Ns[0])
	}
}
