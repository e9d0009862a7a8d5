package searchpath

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/testkit"
)

func TestWalkAnswersExternalName(t *testing.T) {
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 120 IN AAAA 2001:db8::10")
	wk := newWalker(t, z)
	const q = "ExAmPlE.oRg.DeFaUlT.sVc.ClUsTeR.lOcAl."

	for _, tc := range []struct {
		qtype uint16
		id    uint16
		ttl   uint32
	}{{dns.TypeA, 101, 300}, {dns.TypeAAAA, 102, 120}} {
		m, rcode, err := ask(t, wk, q, tc.qtype, tc.id)
		if err != nil || rcode != dns.RcodeSuccess {
			t.Fatalf("Expected success, got %d, %v", rcode, err)
		}
		checkEcho(t, m, q, tc.id)
		if len(m.Answer) != 2 {
			t.Fatalf("Expected a CNAME and an address, got %v", m.Answer)
		}
		c, ok := m.Answer[0].(*dns.CNAME)
		// The target keeps the client's own case (RFC 4343), so do the tries' answers.
		if !ok || c.Hdr.Name != q || c.Target != "ExAmPlE.oRg." || c.Hdr.Ttl != tc.ttl {
			t.Errorf("Expected CNAME %s -> ExAmPlE.oRg. with TTL %d first, got %v", q, tc.ttl, m.Answer[0])
		}
		if m.Answer[1].Header().Rrtype != tc.qtype {
			t.Errorf("Expected the address after the CNAME, got %v", m.Answer[1])
		}
	}
	// One walk for the pair: each name and type went down the chain once.
	for _, n := range []string{"example.org.default.svc.cluster.local.", "example.org.svc.cluster.local.", "example.org.cluster.local.", "example.org.lab.internal.", "example.org."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if c := z.count(n, qt); c != 1 {
				t.Errorf("Expected %s %s down the chain once, got %d", n, dns.TypeToString[qt], c)
			}
		}
	}
}

func TestWalkAsAsked(t *testing.T) {
	z := newZone("db-0.db.default.svc.cluster.local. 30 IN A 10.244.1.10")
	wk := newWalker(t, z)
	m, _, _ := ask(t, wk, "db-0.db.default.svc.cluster.local.", dns.TypeA, 7)
	checkEcho(t, m, "db-0.db.default.svc.cluster.local.", 7)
	if len(m.Answer) != 1 || m.Answer[0].Header().Rrtype != dns.TypeA {
		t.Errorf("Expected the name answered as asked, without a CNAME, got %v", m.Answer)
	}
	m, _, _ = ask(t, wk, "db-0.db.default.svc.cluster.local.", dns.TypeAAAA, 8)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Errorf("Expected NODATA as asked for the AAAA, got %v", m)
	}
	if z.total() != 2 {
		t.Errorf("Expected 2 queries down the chain (the pair of the first name), got %d", z.total())
	}
}

func TestWalkNoData(t *testing.T) {
	// api.shop.svc has only an A: the A is completed, the AAAA is a plain NODATA so that a
	// glibc AF_INET6 lookup goes on walking as it would have without raceguard.
	z := newZone("api.shop.svc.cluster.local. 30 IN A 10.96.40.2")
	wk := newWalker(t, z)
	const q = "api.shop.default.svc.cluster.local."
	m, _, _ := ask(t, wk, q, dns.TypeA, 1)
	if len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "api.shop.svc.cluster.local." {
		t.Errorf("Expected a CNAME to api.shop.svc.cluster.local. and its A, got %v", m.Answer)
	}
	m, _, _ = ask(t, wk, q, dns.TypeAAAA, 2)
	checkEcho(t, m, q, 2)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 || len(m.Ns) != 1 {
		t.Errorf("Expected a plain NODATA with its SOA, got %v", m)
	}
	// The local part (the cluster domains) is walked in order: nothing after the answering name
	// went down the chain.
	if c := z.count("api.shop.cluster.local.", dns.TypeA); c != 0 {
		t.Errorf("Expected the local part walked in order, got api.shop.cluster.local. asked %d times", c)
	}
}

func TestWalkPassedThrough(t *testing.T) {
	z := newZone("x.y.lab.internal. 30 IN A 10.1.1.1")
	z.rcodes["x.y.cluster.local./A"] = dns.RcodeServerFailure
	wk := newWalker(t, z)
	const q = "X.Y.default.svc.cluster.local."
	m, rcode, _ := ask(t, wk, q, dns.TypeA, 9)
	checkEcho(t, m, q, 9)
	if rcode != dns.RcodeSuccess || m.Rcode != dns.RcodeNameError {
		t.Errorf("Expected the first name's own NXDOMAIN written (rcode success returned), got %d, %v", rcode, m.Rcode)
	}
	// The client now walks: x.y.svc is remembered as NXDOMAIN; from the failing name on, its
	// queries go down the chain as they are: never completed, never answered from memory.
	m, _, _ = ask(t, wk, "x.y.svc.cluster.local.", dns.TypeA, 10)
	checkEcho(t, m, "x.y.svc.cluster.local.", 10)
	if c := z.count("x.y.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError || c != 1 {
		t.Errorf("Expected a remembered NXDOMAIN without a trip down the chain, got %v (asked %d times)", m.Rcode, c)
	}
	_, rcode, _ = ask(t, wk, "x.y.cluster.local.", dns.TypeA, 11)
	if rcode != dns.RcodeServerFailure || z.count("x.y.cluster.local.", dns.TypeA) != 2 {
		t.Errorf("Expected the failing name passed down the chain again, got rcode %d", rcode)
	}
}

func TestWalkExhausted(t *testing.T) {
	z := newZone()
	wk := newWalker(t, z)
	const q = "NoSuCh.ExAmple.default.svc.cluster.local."
	m, _, _ := ask(t, wk, q, dns.TypeA, 1)
	checkEcho(t, m, q, 1)
	if m.Rcode != dns.RcodeNameError {
		t.Errorf("Expected NXDOMAIN, got %v", m)
	}
	ask(t, wk, q, dns.TypeAAAA, 2)
	walked := z.total()
	if walked != 10 {
		t.Errorf("Expected one walk of 5 names x 2 types, got %d queries", walked)
	}
	// The client walks on: every later name is answered from memory, with its own ID and case.
	for i, n := range []string{"NOSUCH.example.svc.cluster.local.", "nosuch.EXAMPLE.cluster.local.", "nosuch.example.lab.internal.", "nosuch.example."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m, _, _ := ask(t, wk, n, qt, uint16(100+i))
			checkEcho(t, m, n, uint16(100+i))
			if m.Rcode != dns.RcodeNameError {
				t.Errorf("Expected NXDOMAIN for %s, got %v", n, m.Rcode)
			}
		}
	}
	if z.total() != walked {
		t.Errorf("Expected no trip down the chain for the remembered names, got %d", z.total()-walked)
	}
}

func TestWalkNothingWritten(t *testing.T) {
	// A plugin such as acl may return success without writing: nothing must be written then.
	z := newZone()
	z.silent["a.b.default.svc.cluster.local."] = true
	wk := newWalker(t, z)
	m, rcode, err := ask(t, wk, "a.b.default.svc.cluster.local.", dns.TypeA, 1)
	if m != nil || rcode != dns.RcodeSuccess || err != nil {
		t.Errorf("Expected nothing written and the chain's rcode, got %v, %d, %v", m, rcode, err)
	}
}

func TestWalkErrorKeepsQuestion(t *testing.T) {
	z := newZone()
	z.rcodes["a.b.default.svc.cluster.local./A"] = dns.RcodeServerFailure
	wk := newWalker(t, z)
	m, rcode, _ := ask(t, wk, "A.b.DEFAULT.svc.cluster.local.", dns.TypeA, 1)
	if m != nil || rcode != dns.RcodeServerFailure {
		t.Errorf("Expected SERVFAIL left for the server to write (with the client's question), got %v, %d", m, rcode)
	}
}

func TestWalkPairShared(t *testing.T) {
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	wk := newWalker(t, z)
	const q = "example.org.default.svc.cluster.local."
	z.hold(q) // the first arrives, then the second, while the walk is out
	var wg sync.WaitGroup
	var targets [2]atomic.Value
	for i, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m, _, _ := ask(t, wk, q, qt, uint16(i))
			if m != nil && len(m.Answer) > 0 {
				targets[i].Store(m.Answer[0].(*dns.CNAME).Target)
			}
		}()
		if i == 0 {
			z.waitEntered(t, q+"/A")
		}
	}
	// The second shares the walk whether it comes while the first try is out or after the walk
	// decided: on the fake clock, the walk is shared for as long as the test runs.
	z.release(q)
	wg.Wait()
	if targets[0].Load() != "example.org." || targets[1].Load() != "example.org." {
		t.Errorf("Expected both of the pair to name example.org., got %v and %v", targets[0].Load(), targets[1].Load())
	}
	if z.total() != 10 {
		t.Errorf("Expected one walk (10 queries) for the pair, got %d", z.total())
	}
}

func TestWalkWaiterContext(t *testing.T) {
	z := newZone("example.org. 300 IN A 192.0.2.10")
	wk := newWalker(t, z)
	const q = "example.org.default.svc.cluster.local."
	walk, _ := Expand(q, podList)
	z.hold(q)

	done := make(chan *dns.Msg)
	go func() {
		m, _, _ := ask(t, wk, q, dns.TypeA, 1)
		done <- m
	}()
	z.waitEntered(t, q+"/A") // the A leads, its first try out
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	r := new(dns.Msg).SetQuestion(q, dns.TypeAAAA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := completeWalk(ctx, wk, rec, r, walk); err == nil {
		t.Error("Expected the waiter to give up at its own deadline")
	}
	z.release(q)
	if m := <-done; m == nil || len(m.Answer) != 2 {
		t.Errorf("Expected the leader's answer unaffected by the waiter, got %v", m)
	}
}

func TestWalkVerify(t *testing.T) {
	// "shop.svc.cluster.local." exists (a namespace); "cnn.svc.cluster.local." does not.
	z := newZone("api.shop.svc.cluster.local. 30 IN A 10.96.40.2", "example.org. 300 IN A 192.0.2.10", "x.shop.svc.cluster.local. 30 IN A 10.96.40.9")
	z.records["shop.svc.cluster.local."] = nil
	wk := newWalker(t, z)
	list := []string{"cnn.svc.cluster.local.", "svc.cluster.local.", "cluster.local."}

	walk, _ := Expand("api.shop.cnn.svc.cluster.local.", list)
	walk.Verify = true
	r := new(dns.Msg).SetQuestion("api.shop.cnn.svc.cluster.local.", dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	completeWalk(context.Background(), wk, rec, r, walk)
	if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError || len(rec.Msg.Answer) != 0 {
		t.Errorf("Expected no completion for a namespace that does not exist, got %v", rec.Msg)
	}

	list[0] = "shop.svc.cluster.local."
	walk, _ = Expand("example.org.shop.svc.cluster.local.", list)
	walk.Verify = true
	r = new(dns.Msg).SetQuestion("example.org.shop.svc.cluster.local.", dns.TypeA)
	rec = dnstest.NewRecorder(&test.ResponseWriter{})
	completeWalk(context.Background(), wk, rec, r, walk)
	if rec.Msg == nil || len(rec.Msg.Answer) != 2 {
		t.Errorf("Expected completion in an existing namespace, got %v", rec.Msg)
	}
}

func TestWalkWrittenServfail(t *testing.T) {
	// A SERVFAIL the chain wrote is written once: the walker must not return SERVFAIL after it,
	// or the server writes a second reply.
	z := newZone()
	z.records["a.b.default.svc.cluster.local."] = nil
	wk := newWalker(t, z)
	servfail := test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeServerFailure)
		w.WriteMsg(m)
		return dns.RcodeServerFailure, nil
	})
	wk.Dispatch.Next = servfail
	m, rcode, _ := ask(t, wk, "a.b.default.svc.cluster.local.", dns.TypeA, 1)
	if m == nil || m.Rcode != dns.RcodeServerFailure || rcode != dns.RcodeSuccess {
		t.Errorf("Expected the written SERVFAIL and a success rcode, got %v, %d", m, rcode)
	}
}

func TestWalkUntrustedPassesThrough(t *testing.T) {
	// The inferred list is trusted in the namespace's own hierarchy only: a walk that would stop
	// at a node domain, or at the name itself, passes through, and the client walks.
	z := newZone("jira.eu.lab.internal. 30 IN A 10.1.1.1", "example.org. 300 IN A 192.0.2.10")
	wk := newWalker(t, z)
	for _, q := range []string{"jira.eu.default.svc.cluster.local.", "example.org.default.svc.cluster.local."} {
		r := new(dns.Msg).SetQuestion(q, dns.TypeA)
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		walk, _ := Expand(q, podList)
		walk.Trusted = walk.Local
		completeWalk(context.Background(), wk, rec, r, walk)
		if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError {
			t.Errorf("%s: Expected the first try's own NXDOMAIN, got %v", q, rec.Msg)
		}
	}
}

func TestWalkDeadline(t *testing.T) {
	// The walk's later names are slow (held), the deadline passes while its first try is out:
	// the client gets its first try's own NXDOMAIN as soon as that is there, without waiting for
	// the rest, and walks on; its later tries are answered from what the walk resolved meanwhile,
	// without another trip down the chain.
	z := newZone()
	wk, clk := newWalkerClock(t, z)
	const base = "nosuch.example."
	later := []string{base + "svc.cluster.local.", base + "cluster.local.", base + "lab.internal.", base}
	z.hold(append([]string{base + "default.svc.cluster.local."}, later...)...)

	got := make(chan *dns.Msg)
	go func() {
		m, _, _ := ask(t, wk, base+"default.svc.cluster.local.", dns.TypeA, 1)
		got <- m
	}()
	z.waitEntered(t, base+"default.svc.cluster.local./A")
	testkit.Eventually(t, "the walk's deadline timer", clk.HasWaiters)
	clk.Step(wk.Deadline)
	z.release(base + "default.svc.cluster.local.")
	select {
	case m := <-got:
		if m == nil || m.Rcode != dns.RcodeNameError {
			t.Fatalf("Expected the first try's own NXDOMAIN, got %v", m)
		}
	case <-time.After(testkit.WaitTimeout):
		t.Fatal("Expected the first try's own answer while the later names are still out")
	}
	z.release(later...)
	for _, n := range later {
		if m, _, _ := ask(t, wk, n, dns.TypeA, 2); m == nil || m.Rcode != dns.RcodeNameError {
			t.Errorf("%s: Expected NXDOMAIN, got %v", n, m)
		}
		if c := z.count(n, dns.TypeA); c != 1 {
			t.Errorf("%s: Expected the client's try answered from the walk's one trip, got %d trips", n, c)
		}
	}
}

func TestWalkTruncation(t *testing.T) {
	// many.example has 30 addresses: 512 bytes hold them for the name itself, not with the long
	// first try's name and a CNAME in front. A 512-byte client must get its first try's NXDOMAIN
	// and find the whole answer itself; a 1232-byte client gets the completion.
	var rrs []string
	for i := range 30 {
		rrs = append(rrs, fmt.Sprintf("many.example. 30 IN A 192.0.2.%d", i+1))
	}
	z := newZone(rrs...)
	wk := newWalker(t, z)
	const q = "many.example.default.svc.cluster.local."
	for _, tc := range []struct {
		edns     uint16
		complete bool
	}{{0, false}, {1232, true}} {
		r := new(dns.Msg).SetQuestion(q, dns.TypeA)
		if tc.edns > 0 {
			r.SetEdns0(tc.edns, false)
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: fmt.Sprintf("10.0.0.%d", tc.edns%250)})
		walk, _ := walkOf(t, wk, rec, r)
		completeWalk(context.Background(), wk, rec, r, walk)
		if got := rec.Msg != nil && len(rec.Msg.Answer) == 31; got != tc.complete {
			t.Errorf("EDNS %d: Expected completion %v, got %v", tc.edns, tc.complete, rec.Msg)
		}
	}
	direct := new(dns.Msg).SetQuestion("many.example.", dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	z.ServeDNS(context.Background(), rec, direct)
	rec.Msg.Compress = true
	if rec.Msg.Len() > 512 {
		t.Fatalf("Test premise: expected the name's own reply within 512 bytes, got %d", rec.Msg.Len())
	}
}

func TestWalkDNSSEC(t *testing.T) {
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	z.ad = true // an upstream that validated
	wk := newWalker(t, z)
	const q = "example.org.default.svc.cluster.local."
	// A validating client (DO), or one asking for AD, is never completed.
	for _, set := range []func(*dns.Msg){
		func(r *dns.Msg) { r.SetEdns0(1232, true) },
		func(r *dns.Msg) { r.AuthenticatedData = true },
	} {
		r := new(dns.Msg).SetQuestion(q, dns.TypeA)
		set(r)
		if _, ok := walkOf(t, wk, &test.ResponseWriter{}, r); ok {
			t.Errorf("Expected no completion for %v", r)
		}
	}
	// A completion never carries AD: its CNAME has no signature.
	m, _, _ := ask(t, wk, q, dns.TypeA, 1)
	if len(m.Answer) != 2 || m.AuthenticatedData {
		t.Errorf("Expected a completion without AD, got %v", m)
	}
}
