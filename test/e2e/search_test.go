package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// searchServer starts CoreDNS in-process with raceguard completing the lab's search list, the
// sample cluster zone, and a forwarder to an in-process upstream serving the lab's external zone.
func searchServer(t *testing.T, extra string) (udp, tcp string, up *lab.Upstream) {
	t.Helper()
	up = testenv.LoopbackUpstream(t)
	zone := testenv.ClusterZone(t)
	if !strings.Contains(extra, "node_search") {
		extra = "node_search lab.internal\n        " + extra
	}
	corefile := `.:0 {
    prometheus localhost:0
    raceguard {
        ` + extra + `
    }
    cache 30
    collapse
    file ` + zone + ` cluster.local
    forward . ` + up.Addr + `
}`
	i, udp, tcp, err := testenv.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("Could not start CoreDNS: %v", err)
	}
	t.Cleanup(func() { testenv.Stop(i) })
	return udp, tcp, up
}

// exchange sends one query and checks the reply echoes its ID and exact question.
func exchange(t *testing.T, network, addr, name string, qtype uint16, edns uint16, do bool) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, qtype)
	if edns > 0 {
		m.SetEdns0(edns, do)
	}
	c := &dns.Client{Net: network, Timeout: 5 * time.Second, UDPSize: 65535}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s %s: %v", network, name, dns.TypeToString[qtype], err)
	}
	if r.Id != m.Id || len(r.Question) != 1 || r.Question[0] != m.Question[0] {
		t.Errorf("%s %s: Expected ID %d and question %v echoed, got ID %d and %v", network, name, m.Id, m.Question, r.Id, r.Question)
	}
	return r
}

// metric returns the sum of the samples of name whose labels include labels, from this process's
// registry, which the in-process servers' prometheus plugins serve.
func metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := prometheus.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for _, mf := range mfs {
		if _, err := expfmt.MetricFamilyToText(&text, mf); err != nil {
			t.Fatal(err)
		}
	}
	return lab.ParseMetrics(text.String()).Sum(name, labels)
}

// TestSearchCompletion: a cluster Deployment (replicas behind a ClusterIP) completes within the
// namespace's own hierarchy only; names the client finds beyond it pass through.
func TestSearchCompletion(t *testing.T) {
	udp, _, up := searchServer(t, "")

	// Another namespace's service, found at the second name: a CNAME from the exact asked name.
	r := exchange(t, "udp", udp, "Api.Shop.default.svc.cluster.local.", dns.TypeA, 0, false)
	if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "Api.Shop.svc.cluster.local." || r.IsEdns0() != nil {
		t.Errorf("Expected CNAME to Api.Shop.svc.cluster.local. (the client's case) and no OPT for a client without EDNS, got %v", r)
	}

	// An external name: the client's list beyond the cluster domains is unknown, so its first
	// try gets its own NXDOMAIN and the client walks; the names the walk tried answer it.
	passed := metric(t, "coredns_raceguard_search_passed_total", map[string]string{"reason": "untrusted"})
	if r := exchange(t, "udp", udp, "ExAmPlE.oRg.DeFaUlT.sVc.cLuStEr.LoCaL.", dns.TypeA, 1232, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("Expected the first try's own NXDOMAIN, got %v", r)
	}
	if got := metric(t, "coredns_raceguard_search_passed_total", map[string]string{"reason": "untrusted"}) - passed; got != 1 {
		t.Errorf("Expected one walk passed through as untrusted, got %v", got)
	}
	before := up.Total()
	for _, name := range []string{"example.org.svc.cluster.local.", "example.org.cluster.local.", "example.org.lab.internal.", "example.org."} {
		exchange(t, "udp", udp, name, dns.TypeA, 1232, false)
	}
	if up.Total() != before {
		t.Errorf("Expected the client's own tries answered from the walk and the cache, got %d upstream queries", up.Total()-before)
	}

	// One-label names are answered as asked; names outside the search list pass through.
	if r := exchange(t, "udp", udp, "Web.default.svc.cluster.local.", dns.TypeA, 0, false); len(r.Answer) != 1 || r.Answer[0].(*dns.A).A.String() != "10.96.12.34" {
		t.Errorf("Expected web.default A as asked, got %v", r)
	}
	if r := exchange(t, "udp", udp, "gateway.default.svc.cluster.local.", dns.TypeA, 0, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("Expected a one-label base never completed (NXDOMAIN), got %v", r)
	}

	// A later try of a longer name, seen by a server that never saw its first try: the inferred
	// namespace "cnn" does not exist, so it is answered as asked, never completed to the
	// www.example.org. that a pod looking up "www.example.org.cnn" must not get.
	for _, tail := range []string{"www.example.org.cnn.svc.cluster.local.", "api.shop.cnn.svc.cluster.local."} {
		if r := exchange(t, "udp", udp, tail, dns.TypeA, 0, false); r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("Expected %s answered as asked (NXDOMAIN), got %v", tail, r)
		}
	}
}

// TestSearchCompletionNodeLocal: a node-local server that knows its client's exact list from the
// pod watch (::1, where exchange's queries to the wildcard listener come from, is pod
// default/client, ClusterFirst, on a node whose resolv.conf searches lab.internal) completes within it: external names, one-label names, and names it walks to their
// end, whose tries it answers from memory as the client walks on.
func TestSearchCompletionNodeLocal(t *testing.T) {
	pods, _ := testenv.PodWatch(t, lab.NodeDomain, kubeapi.Pod{Namespace: "default", Name: "client", IP: "::1"})
	udp, tcp, up := searchServer(t, pods+"\n        node_local on")
	testenv.WaitPodWatch(t)

	// A name that exists nowhere: the walk is exhausted, the client walks on, and its tries are
	// answered from memory.
	remembered := metric(t, "coredns_raceguard_search_remembered_total", nil)
	r := exchange(t, "udp", udp, "NoSuCh.ExAmPlE.oRg.DeFaUlT.sVc.ClUsTeR.lOcAl.", dns.TypeA, 1232, false)
	if r.Rcode != dns.RcodeNameError {
		t.Errorf("Expected NXDOMAIN, got %v", r)
	}
	for _, name := range []string{"nosuch.example.org.SVC.cluster.local.", "nosuch.example.org.cluster.local.", "nosuch.example.org.lab.internal.", "NOSUCH.example.org."} {
		if r := exchange(t, "udp", udp, name, dns.TypeA, 1232, false); r.Rcode != dns.RcodeNameError {
			t.Errorf("Expected NXDOMAIN for %s, got %v", name, r)
		}
	}
	if got := metric(t, "coredns_raceguard_search_remembered_total", nil) - remembered; got != 4 {
		t.Errorf("Expected 4 answers from memory, got %v", got)
	}
	// The walk passed through once the cluster names were NXDOMAIN, with the names beyond still
	// in flight; the client's tries waited for them: each went upstream once, for the walk.
	for _, name := range []string{"nosuch.example.org.lab.internal.", "nosuch.example.org."} {
		if n := up.Queries(name, dns.TypeA); n != 1 {
			t.Errorf("Expected %s A asked upstream once (by the walk; the client's try remembered), got %d", name, n)
		}
	}

	// An external name is completed, over UDP and TCP, with the client's case.
	const q = "ExAmPlE.oRg.DeFaUlT.sVc.cLuStEr.LoCaL."
	for _, network := range []string{"udp", "tcp"} {
		addr := map[string]string{"udp": udp, "tcp": tcp}[network]
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r := exchange(t, network, addr, q, qt, 1232, false)
			if r.Rcode != dns.RcodeSuccess || len(r.Answer) != 2 {
				t.Fatalf("%s %s: Expected CNAME and address, got %v", network, dns.TypeToString[qt], r)
			}
			if c, ok := r.Answer[0].(*dns.CNAME); !ok || c.Hdr.Name != q || c.Target != "ExAmPlE.oRg." {
				t.Errorf("Expected CNAME %s -> ExAmPlE.oRg. first, got %v", q, r.Answer[0])
			}
			if o := r.IsEdns0(); o == nil || o.UDPSize() != 1232 || o.Do() || r.AuthenticatedData {
				t.Errorf("Expected the client's own OPT (1232, no DO) and no AD, got %v", r)
			}
		}
	}
	if n := up.Queries("example.org.", dns.TypeA); n != 1 {
		t.Errorf("Expected the upstream asked example.org. A once (then cache), got %d", n)
	}

	// A one-label name of a client whose list is known: gateway.lab.internal.
	if r := exchange(t, "udp", udp, "gateway.default.svc.cluster.local.", dns.TypeA, 0, false); len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "gateway.lab.internal." {
		t.Errorf("Expected gateway completed to gateway.lab.internal., got %v", r)
	}
	// A name under another namespace than the client's is no first try of it: as asked.
	if r := exchange(t, "udp", udp, "example.org.shop.svc.cluster.local.", dns.TypeA, 0, false); r.Rcode != dns.RcodeNameError {
		t.Errorf("Expected a name of another namespace answered as asked, got %v", r)
	}

	// Truncation: the completion of a big answer does not fit 512 bytes, so that client gets its
	// first try's NXDOMAIN and finds the name itself (truncated, then whole over TCP, as without
	// raceguard); over TCP and with a large EDNS buffer the completion is whole.
	const big = "big.example.com.default.svc.cluster.local."
	if r := exchange(t, "udp", udp, big, dns.TypeA, 0, false); r.Rcode != dns.RcodeNameError || r.Truncated {
		t.Errorf("Expected the first try's own NXDOMAIN for a 512-byte UDP client, got %v", r)
	}
	if r := exchange(t, "tcp", tcp, big, dns.TypeA, 0, false); r.Truncated || len(r.Answer) != 41 {
		t.Errorf("Expected the whole answer (CNAME + 40 A) over TCP, got TC=%v, %d records", r.Truncated, len(r.Answer))
	}
	if r := exchange(t, "udp", udp, big, dns.TypeA, 4096, false); r.Truncated || len(r.Answer) != 41 {
		t.Errorf("Expected the whole answer for a 4096-byte EDNS client, got TC=%v, %d records", r.Truncated, len(r.Answer))
	}
	// A validating client (DO) is never completed.
	if r := exchange(t, "udp", udp, big, dns.TypeA, 4096, true); r.Rcode != dns.RcodeNameError || !r.IsEdns0().Do() {
		t.Errorf("Expected the first try's own NXDOMAIN with DO echoed for a validating client, got %v", r)
	}

	if got := metric(t, "coredns_raceguard_search_queries_saved_total", nil); got < 8 {
		t.Errorf("Expected saved queries counted, got %v", got)
	}
}

func TestSearchErrorPath(t *testing.T) {
	blackhole := blackhole(t)
	zone := testenv.ClusterZone(t)
	// Everything outside cluster.local goes to a server that never answers.
	i, udp, _, err := testenv.CoreDNSServerAndPorts(`.:0 {
    raceguard {
        node_search none
    }
    file ` + zone + ` cluster.local
    forward . ` + blackhole + ` {
        read_timeout 200ms
        max_connect_attempts 1
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(i)
	// The walk fails at example.org.: the client gets its first name's NXDOMAIN and walks on
	// itself, to meet the same failure it would have met without raceguard.
	r := exchange(t, "udp", udp, "Example.Org.Default.Svc.Cluster.Local.", dns.TypeA, 1232, false)
	if r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
		t.Errorf("Expected the first name's NXDOMAIN, got %v", r)
	}
	if r := exchange(t, "udp", udp, "Example.Org.", dns.TypeA, 1232, false); r.Rcode != dns.RcodeServerFailure {
		t.Errorf("Expected the client's own try of example.org. to fail, got %v", r)
	}
}

// wireLen is the size of m on the wire, compressed as servers send it.
func wireLen(m *dns.Msg) int {
	c := m.Copy()
	c.Compress = true
	return c.Len()
}
