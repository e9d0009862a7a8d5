package searchpath

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/testkit"
	testingclock "k8s.io/utils/clock/testing"
)

func overflowsFor(table string) prometheus.Collector { return bounded.Overflows(table) }

// zone is a fake rest of the chain: answers per lower-cased name and type; every name not listed
// is NXDOMAIN with an SOA. It counts the queries it serves.
type zone struct {
	records map[string][]dns.RR      // name -> records (all types)
	rcodes  map[string]int           // name/TYPE -> rcode to return unwritten (SERVFAIL...)
	silent  map[string]bool          // name -> returns success without writing (as acl's drop)
	panics  map[string]bool          // name -> panics, as a buggy plugin below would
	gates   map[string]chan struct{} // name -> held until closed (hold, release)
	entered chan string              // receives name/TYPE as each held query arrives
	ad      bool                     // set AD on every reply, as an upstream that validated

	mu    sync.Mutex
	calls map[string]int // name/TYPE -> queries
}

func newZone(rrs ...string) *zone {
	z := &zone{records: map[string][]dns.RR{}, rcodes: map[string]int{}, silent: map[string]bool{}, panics: map[string]bool{},
		gates: map[string]chan struct{}{}, entered: make(chan string, 64), calls: map[string]int{}}
	for _, s := range rrs {
		rr, err := dns.NewRR(s)
		if err != nil {
			panic(err)
		}
		n := strings.ToLower(rr.Header().Name)
		z.records[n] = append(z.records[n], rr)
	}
	return z
}

// add adds records to the zone while it serves.
func (z *zone) add(rrs ...dns.RR) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, rr := range rrs {
		n := strings.ToLower(rr.Header().Name)
		z.records[n] = append(z.records[n], rr)
	}
}

// hold makes the queries for names wait until release: an upstream that has not answered yet.
// Each held query reports name/TYPE on z.entered when it arrives.
func (z *zone) hold(names ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, n := range names {
		z.gates[n] = make(chan struct{})
	}
}

// release answers the queries held for names, and those that come later.
func (z *zone) release(names ...string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	for _, n := range names {
		if g := z.gates[n]; g != nil {
			close(g)
			delete(z.gates, n)
		}
	}
}

// waitEntered waits for a held query for name/TYPE to arrive.
func (z *zone) waitEntered(t *testing.T, want string) {
	t.Helper()
	deadline := time.After(testkit.WaitTimeout)
	for {
		select {
		case got := <-z.entered:
			if got == want {
				return
			}
		case <-deadline:
			t.Fatalf("Timed out waiting for %s to reach the zone", want)
		}
	}
}

func (z *zone) count(name string, qtype uint16) int {
	z.mu.Lock()
	defer z.mu.Unlock()
	return z.calls[name+"/"+dns.TypeToString[qtype]]
}

func (z *zone) total() int {
	z.mu.Lock()
	defer z.mu.Unlock()
	n := 0
	for _, c := range z.calls {
		n += c
	}
	return n
}

func (z *zone) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	key := name + "/" + dns.TypeToString[q.Qtype]
	z.mu.Lock()
	z.calls[key]++
	z.mu.Unlock()
	z.mu.Lock()
	gate := z.gates[name]
	z.mu.Unlock()
	if gate != nil {
		z.entered <- key
		select {
		case <-gate:
		case <-ctx.Done():
			return dns.RcodeServerFailure, ctx.Err()
		}
	}
	if rc, ok := z.rcodes[key]; ok {
		return rc, nil
	}
	if z.silent[name] {
		return dns.RcodeSuccess, nil
	}
	if z.panics[name] {
		panic("zone: boom on " + name)
	}
	m := new(dns.Msg)
	m.SetReply(r)
	z.mu.Lock()
	rrs, exists := z.records[name]
	z.mu.Unlock()
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	m.AuthenticatedData = z.ad
	if len(m.Answer) == 0 {
		soa, _ := dns.NewRR("example. 30 IN SOA ns.example. hostmaster.example. 1 7200 1800 86400 5")
		m.Ns = []dns.RR{soa}
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (z *zone) Name() string { return "zone" }

// ask sends a query for name and qtype from the default client through wk, as the handler does,
// and returns the reply.
func ask(t *testing.T, wk *Walker, name string, qtype uint16, id uint16) (*dns.Msg, int, error) {
	t.Helper()
	r := new(dns.Msg).SetQuestion(name, qtype)
	r.Id = id
	r.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	rcode, err := serve(context.Background(), wk, rec, r)
	return rec.Msg, rcode, err
}

// newWalker returns a Walker of podList in front of z, on a fake clock: its deadline and hedges
// fire only when a test steps the clock (newWalkerClock), so no test depends on how fast this
// machine is.
func newWalker(t *testing.T, z *zone) *Walker {
	wk, _ := newWalkerClock(t, z)
	return wk
}

// newWalkerClock is newWalker with its clock.
func newWalkerClock(t *testing.T, z *zone) (*Walker, *testingclock.FakeClock) {
	wk := New(Fixed(podList), z, DefaultMaxWalks, 1000, 1000)
	clk := testingclock.NewFakeClock(time.Unix(1_800_000_000, 0))
	wk.SetClock(clk)
	t.Cleanup(wk.Close)
	return wk, clk
}

func checkEcho(t *testing.T, m *dns.Msg, name string, id uint16) {
	t.Helper()
	if m == nil {
		t.Fatal("Expected a reply, got none")
	}
	if m.Id != id || len(m.Question) != 1 || m.Question[0].Name != name {
		t.Errorf("Expected ID %d and question %q, got ID %d and %v", id, name, m.Id, m.Question)
	}
	if o := m.IsEdns0(); o == nil || o.UDPSize() != 1232 {
		t.Errorf("Expected the client's OPT with size 1232, got %v", o)
	}
}

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

func TestWalkNoDataTail(t *testing.T) {
	// store.example.shop has an A only: an AAAA lookup gets a plain NODATA at the first try and
	// walks on. Its next try looks like a first try of its own in namespace shop (base
	// store.example), whose walk would find store.example.'s AAAA: it must get what it would
	// have got without raceguard, NXDOMAIN.
	z := newZone("store.example.shop. 30 IN A 192.0.2.90", "store.example. 30 IN A 192.0.2.91", "store.example. 30 IN AAAA 2001:db8::91")
	z.records["shop.svc.cluster.local."] = nil
	wk := newWalker(t, z)
	m, _, _ := ask(t, wk, "store.example.shop.default.svc.cluster.local.", dns.TypeAAAA, 1)
	if m.Rcode != dns.RcodeSuccess || len(m.Answer) != 0 {
		t.Fatalf("Expected a plain NODATA, got %v", m)
	}
	// The tail: ask() would Expand it with podList (namespace default); Recall must pass it
	// through before any expansion.
	r := new(dns.Msg).SetQuestion("store.example.shop.svc.cluster.local.", dns.TypeAAAA)
	if m, tail := wk.recall(context.Background(), qOf(dnstest.NewRecorder(&test.ResponseWriter{}), r)); m == nil && !tail {
		t.Error("Expected the walk's tail remembered after a NODATA completion")
	}
	m, _, _ = ask(t, wk, "store.example.shop.svc.cluster.local.", dns.TypeAAAA, 2)
	if m.Rcode != dns.RcodeNameError {
		t.Errorf("Expected the tail's own NXDOMAIN, got %v", m)
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

func TestTablesCapped(t *testing.T) {
	z := newZone()
	wk := New(Fixed(podList), z, DefaultMaxWalks, 64, 128) // tiny tables: 64 walks shared, 128 clients remembered
	defer wk.Close()
	before := testutil.ToFloat64(overflowsFor("search_clients"))

	// 2000 clients each exhaust a walk: each would leave a trail to remember.
	for i := range 2000 {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("n%d.example.default.svc.cluster.local.", i), dns.TypeA)
		w := &test.ResponseWriter{RemoteIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		walk, _ := Expand(strings.ToLower(r.Question[0].Name), podList)
		completeWalk(context.Background(), wk, dnstest.NewRecorder(w), r, walk)
	}
	if n, c := wk.clients.Len(), wk.clients.Cap(); n > c || c != 128 {
		t.Errorf("Expected at most %d remembered clients, got %d", c, n)
	}
	if n, c := wk.pairs.Len(), wk.pairs.Cap(); n > c {
		t.Errorf("Expected at most %d shared walks, got %d", c, n)
	}
	if got := testutil.ToFloat64(overflowsFor("search_clients")) - before; got < 2000-128 {
		t.Errorf("Expected the refused clients counted as overflows, got %v", got)
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
	wk.Next = servfail
	m, rcode, _ := ask(t, wk, "a.b.default.svc.cluster.local.", dns.TypeA, 1)
	if m == nil || m.Rcode != dns.RcodeServerFailure || rcode != dns.RcodeSuccess {
		t.Errorf("Expected the written SERVFAIL and a success rcode, got %v, %d", m, rcode)
	}
}

func TestWalkNotKeptAlive(t *testing.T) {
	// A client asking the same name more often than pairTTL must not be served one walk forever.
	z := newZone("example.org. 300 IN A 192.0.2.10")
	wk, clk := newWalkerClock(t, z)
	const q = "example.org.default.svc.cluster.local."
	for range 4 {
		ask(t, wk, q, dns.TypeA, 1)
		clk.Step(pairTTL / 4)
	}
	if c := z.count("example.org.", dns.TypeA); c != 1 {
		t.Errorf("Expected one walk shared within %s, got %d", pairTTL, c)
	}
	for range 4 {
		ask(t, wk, q, dns.TypeA, 1)
		clk.Step(pairTTL / 4)
	}
	if c := z.count("example.org.", dns.TypeA); c != 2 {
		t.Errorf("Expected a new walk once the shared one was %s old, got %d walks", pairTTL, c)
	}
}

// walkOf plans q through the client's pod list and admits it, as the handler does.
func walkOf(t *testing.T, wk *Walker, w dns.ResponseWriter, r *dns.Msg) (Walk, bool) {
	t.Helper()
	walk, ok := Expand(strings.ToLower(r.Question[0].Name), podList)
	if !ok {
		return walk, false
	}
	return wk.admit(context.Background(), qOf(w, r), walk)
}

// complete admits and completes r from w, and reports whether a walk ran for it: whether it was
// not declined for the walk budget or the cap on walks.
func complete(t *testing.T, wk *Walker, w dns.ResponseWriter, r *dns.Msg) bool {
	t.Helper()
	walk, ok := walkOf(t, wk, w, r)
	if !ok {
		return false
	}
	before := testutil.ToFloat64(declined.WithLabelValues("", "budget")) + testutil.ToFloat64(declined.WithLabelValues("", "busy"))
	completeWalk(context.Background(), wk, dnstest.NewRecorder(w), r, walk)
	after := testutil.ToFloat64(declined.WithLabelValues("", "budget")) + testutil.ToFloat64(declined.WithLabelValues("", "busy"))
	return after == before
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

func TestWalkLearnsTheClientsList(t *testing.T) {
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10",
		"jira.eu.corp.test. 30 IN A 10.1.1.1")
	wk := newWalker(t, z)
	wk.Learn = true
	wk.Source = localOnly{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "lab.internal."}
	client := &test.ResponseWriter{RemoteIP: "10.32.1.2"}
	lookup := func(name string, qtype uint16) *dns.Msg {
		t.Helper()
		rec := dnstest.NewRecorder(client)
		serve(context.Background(), wk, rec, new(dns.Msg).SetQuestion(name, qtype))
		return rec.Msg
	}
	// A client without the node's domain, and with one of its own (a dnsConfig with
	// dnsPolicy None): default.svc.cluster.local svc.cluster.local cluster.local corp.test.
	walkItself := func(base string) {
		t.Helper()
		for _, d := range []string{"svc.cluster.local.", "cluster.local.", "corp.test.", ""} {
			for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
				if m := lookup(base+d, qt); m != nil && m.Rcode == dns.RcodeSuccess && len(m.Answer) > 0 {
					return
				}
			}
		}
	}
	// An unknown client: nothing beyond the cluster domains is completed. It walks on itself,
	// and its tries show its list.
	if m := lookup("example.net.default.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError {
		t.Fatalf("Expected the first try's NXDOMAIN for a client whose list is unknown, got %v", m)
	}
	walkItself("example.net.")
	// Learned: the client's list ends after corp.test. example.org completes to the name itself;
	// jira.eu to jira.eu.corp.test, a domain the inferred list did not have.
	if m := lookup("example.org.default.svc.cluster.local.", dns.TypeA); len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "example.org." {
		t.Errorf("Expected a completion to example.org. once the list is learned, got %v", m)
	}
	if m := lookup("jira.eu.default.svc.cluster.local.", dns.TypeA); len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "jira.eu.corp.test." {
		t.Errorf("Expected a completion to jira.eu.corp.test. within the learned list, got %v", m)
	}
	if c := z.count("jira.eu.lab.internal.", dns.TypeA); c != 0 {
		t.Errorf("Expected the learned list walked, not the node's, got jira.eu.lab.internal. asked %d times", c)
	}
	// A one-label name of a known client is completed; a name in another namespace is not this
	// client's first try.
	z.add(test.A("redis.corp.test. 30 IN A 10.1.1.2"))
	if m := lookup("redis.default.svc.cluster.local.", dns.TypeA); len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "redis.corp.test." {
		t.Errorf("Expected a one-label completion for a client whose list is known, got %v", m)
	}
	z.add(test.A("db-0.db.svc.cluster.local. 30 IN A 10.1.1.3"))
	before := z.total()
	if m := lookup("db-0.db.shop.svc.cluster.local.", dns.TypeA); m.Rcode != dns.RcodeNameError || z.total() != before+1 {
		t.Errorf("Expected a name under another namespace answered as asked, in one query, got %v after %d queries", m, z.total()-before)
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

func TestWalkAsIsName(t *testing.T) {
	// A client asked x.y.default.svc.cluster.local as is (an absolute name, or ndots dots or
	// more): after its NXDOMAIN it searches below the name. Those tries are counted and teach
	// nothing of its list.
	z := newZone()
	wk := newWalker(t, z)
	wk.Learn = true
	const q = "x.y.default.svc.cluster.local."
	ask(t, wk, q, dns.TypeA, 1)
	before := testutil.ToFloat64(asIsCount.WithLabelValues(""))
	for _, d := range []string{"default.svc.cluster.local.", "svc.cluster.local."} {
		r := new(dns.Msg).SetQuestion(q+d, dns.TypeA)
		if m, tail := wk.recall(context.Background(), qOf(&test.ResponseWriter{}, r)); m != nil || tail {
			t.Errorf("Expected %s no later try of the walk, got %v, %v", q+d, m, tail)
		}
	}
	if got := testutil.ToFloat64(asIsCount.WithLabelValues("")) - before; got != 1 {
		t.Errorf("Expected one name asked as is counted, got %v", got)
	}
	c, _ := wk.clients.Get(netip.MustParseAddr("10.240.0.1"))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lists) != 0 {
		t.Errorf("Expected nothing learned from a name asked as is, got %+v", c.lists[0])
	}
}

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

func TestWalkBudget(t *testing.T) {
	z := newZone()
	for i := range 10 {
		z.add(test.A(fmt.Sprintf("r%d.example. 30 IN A 192.0.2.%d", i, i+1)))
	}
	wk := newWalker(t, z)
	wk.Budget = Budget{Rate: 1, Burst: 3}
	before := testutil.ToFloat64(declined.WithLabelValues("", "budget"))
	walked := 0
	for i := range 10 {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("r%d.example.default.svc.cluster.local.", i), dns.TypeA)
		if complete(t, wk, &test.ResponseWriter{}, r) {
			walked++
		}
	}
	if walked != 3 {
		t.Errorf("Expected the burst of 3 walks, then none, got %d", walked)
	}
	if got := testutil.ToFloat64(declined.WithLabelValues("", "budget")) - before; got != 7 {
		t.Errorf("Expected 7 first tries declined over budget, got %v", got)
	}
	// Another client has a budget of its own.
	r := new(dns.Msg).SetQuestion("other.example.default.svc.cluster.local.", dns.TypeA)
	if !complete(t, wk, &test.ResponseWriter{RemoteIP: "10.9.9.9"}, r) {
		t.Error("Expected another client's walk to run")
	}
}

func TestWalkCap(t *testing.T) {
	// Two walks may run at once: the third lookup is served as without raceguard, at once.
	z := newZone()
	wk := New(Fixed(podList), z, 2, 1000, 1000)
	defer wk.Close()
	z.hold("busy0.example.default.svc.cluster.local.", "busy1.example.default.svc.cluster.local.")
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Go(func() { ask(t, wk, fmt.Sprintf("busy%d.example.default.svc.cluster.local.", i), dns.TypeA, 1) })
	}
	testkit.Eventually(t, "two walks running", func() bool { return len(wk.inflight) == 2 })
	before := testutil.ToFloat64(declined.WithLabelValues("", "busy"))
	m, _, _ := ask(t, wk, "third.example.default.svc.cluster.local.", dns.TypeA, 3)
	if m == nil || m.Rcode != dns.RcodeNameError || z.count("third.example.svc.cluster.local.", dns.TypeA) != 0 {
		t.Errorf("Expected the third lookup answered as asked, unwalked, got %v", m)
	}
	if got := testutil.ToFloat64(declined.WithLabelValues("", "busy")) - before; got != 1 {
		t.Errorf("Expected one lookup declined over the cap, got %v", got)
	}
	z.release("busy0.example.default.svc.cluster.local.", "busy1.example.default.svc.cluster.local.")
	wg.Wait()
}

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

func TestWalkBudgetFruitless(t *testing.T) {
	// Walks that complete nothing (every name NXDOMAIN: a random-name flood) cost five tokens
	// each: a burst of 10 admits two of them. Walks that complete cost one.
	z := newZone("example.org. 300 IN A 192.0.2.10")
	wk := newWalker(t, z)
	wk.Budget = Budget{Rate: 0.001, Burst: 10}
	flood := &test.ResponseWriter{RemoteIP: "10.0.0.66"}
	walked := 0
	for i := range 6 {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("r%d.example.default.svc.cluster.local.", i), dns.TypeA)
		if complete(t, wk, flood, r) { // the walk charges its client before it answers
			walked++
		}
	}
	if walked != 2 {
		t.Errorf("Expected two fruitless walks out of a burst of 10, got %d", walked)
	}
	lookup := &test.ResponseWriter{RemoteIP: "10.0.0.67"}
	walked = 0
	for i := range 6 {
		r := new(dns.Msg).SetQuestion("example.org.default.svc.cluster.local.", dns.TypeA)
		r.Id = uint16(i)
		if complete(t, wk, lookup, r) {
			walked++
		}
	}
	if walked != 6 {
		t.Errorf("Expected six completing lookups within the same burst, got %d", walked)
	}
	// The A and the AAAA of one lookup are one walk: one token, not two.
	pair := &test.ResponseWriter{RemoteIP: "10.0.0.68"}
	wk.Budget = Budget{Rate: 0.001, Burst: 1}
	for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
		r := new(dns.Msg).SetQuestion("example.org.default.svc.cluster.local.", qt)
		if !complete(t, wk, pair, r) {
			t.Errorf("Expected the %s of a lookup walked with one token for the pair", dns.TypeToString[qt])
		}
	}
}

func TestWalkDeclinedKeepsItsTail(t *testing.T) {
	// A first try served as it is for the budget is still a walk the client continues: its second
	// try, registry.default.svc.cluster.local, is also the first try of "registry" from a pod in
	// default, and must go down the chain as it is even once the budget is back, not be completed
	// to registry.lab.internal (where the client's own walk of "registry.default" never goes).
	z := newZone("registry.lab.internal. 30 IN A 10.32.0.60")
	wk, clk := newWalkerClock(t, z)
	wk.Budget = Budget{Rate: 1000, Burst: 1}
	wk.Families = only(dns.TypeA)
	client := &test.ResponseWriter{RemoteIP: "10.0.0.9"}
	// The budget's one token goes to another lookup.
	other := new(dns.Msg).SetQuestion("other.example.default.svc.cluster.local.", dns.TypeA)
	complete(t, wk, client, other)
	first := new(dns.Msg).SetQuestion("registry.default.default.svc.cluster.local.", dns.TypeA)
	if complete(t, wk, client, first) {
		t.Fatal("Expected the first try declined for the budget")
	}
	clk.Step(10 * time.Millisecond) // the budget refills
	second := new(dns.Msg).SetQuestion("registry.default.svc.cluster.local.", dns.TypeA)
	rec := dnstest.NewRecorder(client)
	if m, tail := wk.recall(context.Background(), qOf(rec, second)); m != nil || !tail {
		t.Fatalf("Expected the second try recognised as the tail of the declined walk, got %v, tail %v", m, tail)
	}
}

func TestWalkCrowdedClient(t *testing.T) {
	// A client with more walks it continues than it can keep trails for (in settledAge) starts no
	// walk for a while: the later tries of the trail it lost could not be told from first tries.
	z := newZone()
	wk := newWalker(t, z)
	wk.Families = only(dns.TypeA)
	client := &test.ResponseWriter{RemoteIP: "10.0.0.10"}
	for i := range maxTrails {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("n%d.example.default.svc.cluster.local.", i), dns.TypeA)
		if !complete(t, wk, client, r) {
			t.Fatalf("Expected walk %d to run", i)
		}
	}
	before := testutil.ToFloat64(declined.WithLabelValues("", "crowded"))
	for i := range 2 {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("m%d.example.default.svc.cluster.local.", i), dns.TypeA)
		walk, _ := walkOf(t, wk, client, r)
		completeWalk(context.Background(), wk, dnstest.NewRecorder(client), r, walk)
	}
	if got := testutil.ToFloat64(declined.WithLabelValues("", "crowded")) - before; got != 1 {
		t.Errorf("Expected the walk after the one that dropped a trail declined as crowded, got %v", got)
	}
	// Another client walks.
	r := new(dns.Msg).SetQuestion("x.example.default.svc.cluster.local.", dns.TypeA)
	if !complete(t, wk, &test.ResponseWriter{RemoteIP: "10.0.0.11"}, r) {
		t.Error("Expected another client's walk to run")
	}
}

func TestWalkPausedWhenTrailsFull(t *testing.T) {
	// No room in the trail table: walks pause for every client, and first tries are served as
	// they are, counted as full.
	z := newZone()
	wk := newWalker(t, z)
	wk.trails.Close()
	wk.trails = bounded.NewNamed[trailKey, *trail]("search_trails", 1)
	wk.Families = only(dns.TypeA)
	before := testutil.ToFloat64(declined.WithLabelValues("", "full"))
	for i := range 3 {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("p%d.example.default.svc.cluster.local.", i), dns.TypeA)
		complete(t, wk, &test.ResponseWriter{RemoteIP: fmt.Sprintf("10.0.1.%d", i+1)}, r)
	}
	if got := testutil.ToFloat64(declined.WithLabelValues("", "full")) - before; got != 1 {
		t.Errorf("Expected the third walk declined as full after the second found no room, got %v", got)
	}
}

// firstTry sends the first try name of a client at w through wk, with its walk planned from list
// as Infer plans it (trusted in the namespace's hierarchy), and returns the reply.
func firstTry(wk *Walker, w dns.ResponseWriter, name string, list []string) *dns.Msg {
	ctx := context.Background()
	r := new(dns.Msg).SetQuestion(name, dns.TypeA)
	walk, _ := Expand(name, list)
	walk.Trusted = walk.Local
	rec := dnstest.NewRecorder(w)
	if walk, ok := wk.admit(ctx, qOf(w, r), walk); ok {
		completeWalk(ctx, wk, rec, r, walk)
	}
	return rec.Msg
}

func TestWalkLearnsTriesOtherBlocksServe(t *testing.T) {
	// A client's try under corp.test goes to another server block (a stub domain): this Walker
	// hears of it through ObserveTry (package tries) and learns it in its place in the list. The
	// walk of wiki.eu then stops at wiki.eu.corp.test, as the client's own does, not at the
	// public wiki.eu.
	z := newZone("wiki.eu. 30 IN A 192.0.2.93", "wiki.eu.corp.test. 30 IN A 10.8.0.91")
	wk := newWalker(t, z)
	wk.Learn = true
	w := &test.ResponseWriter{RemoteIP: "10.32.1.7"}
	addr := netip.MustParseAddr("10.32.1.7")
	ctx := context.Background()
	list := []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "lab.internal.", "corp.test."}
	// The client's first lookup walks on by itself.
	firstTry(wk, w, "learn.nosuch.example.default.svc.cluster.local.", list[:4])
	for _, d := range list[1:] {
		name := "learn.nosuch.example." + d
		if d == "corp.test." {
			wk.ObserveTry(ctx, addr, name) // served by the corp.test block
			continue
		}
		wk.recall(ctx, qOf(dnstest.NewRecorder(w), new(dns.Msg).SetQuestion(name, dns.TypeA)))
	}
	wk.recall(ctx, qOf(dnstest.NewRecorder(w), new(dns.Msg).SetQuestion("learn.nosuch.example.", dns.TypeA)))

	r := new(dns.Msg).SetQuestion("wiki.eu.default.svc.cluster.local.", dns.TypeA)
	walk, _ := Expand(r.Question[0].Name, list[:4])
	if walk, ok := wk.admit(ctx, qOf(w, r), walk); !ok || !slices.Equal(walk.Rest, list[1:]) {
		t.Fatalf("Expected the walk to follow the learned list %v, got %v", list[1:], walk.Rest)
	}
	if m := firstTry(wk, w, r.Question[0].Name, list[:4]); m == nil || len(m.Answer) != 2 || m.Answer[0].(*dns.CNAME).Target != "wiki.eu.corp.test." {
		t.Errorf("Expected a completion to wiki.eu.corp.test., got %v", m)
	}
}

func TestWalkLearnsNothingFromNamesAsIs(t *testing.T) {
	// A client that asks db.default.svc.cluster.local. as is (none), then db.shop.svc.cluster.local.:
	// the second cannot be the next try of a walk from namespace default (that is
	// svc.cluster.local), so it is counted as a name asked as is, and the list stays.
	z := newZone()
	wk := newWalker(t, z)
	wk.Learn = true
	w := &test.ResponseWriter{RemoteIP: "10.32.1.8"}
	ctx := context.Background()
	teach(wk, w, "learn.nosuch.example.")
	firstTry(wk, w, "db.default.svc.cluster.local.", podList)
	before := testutil.ToFloat64(asIsCount.WithLabelValues(""))
	const next = "db.shop.svc.cluster.local."
	if _, tail := wk.recall(ctx, qOf(dnstest.NewRecorder(w), new(dns.Msg).SetQuestion(next, dns.TypeA))); !tail {
		t.Error("Expected the name to go down the chain as it is")
	}
	if got := testutil.ToFloat64(asIsCount.WithLabelValues("")) - before; got != 1 {
		t.Errorf("Expected one name asked as is counted, got %v", got)
	}
	c, _ := wk.clients.Get(netip.MustParseAddr("10.32.1.8"))
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lists) != 1 || !slices.Equal(c.lists[0].domains, podList[1:]) {
		t.Errorf("Expected the client's list as it was taught, got %+v", c.lists)
	}
}

// teach makes wk learn the client at w's list, podList: the client walks base to its end itself.
func teach(wk *Walker, w dns.ResponseWriter, base string) {
	ctx := context.Background()
	firstTry(wk, w, base+podList[0], podList)
	for _, d := range append(podList[1:], "") {
		wk.recall(ctx, qOf(dnstest.NewRecorder(w), new(dns.Msg).SetQuestion(base+d, dns.TypeA)))
	}
}

func TestWalkSharedAddress(t *testing.T) {
	// The node's own address is shared by its hostNetwork pods: no list is learned for it, and
	// its walks are those of a client whose list is unknown (no one-label names, the namespace's
	// hierarchy trusted only).
	z := newZone("registry.lab.internal. 30 IN A 10.32.0.60")
	wk := newWalker(t, z)
	wk.Learn = true
	node := netip.MustParseAddr("10.32.0.1")
	wk.Shared = func(a netip.Addr) bool { return a == node }
	w := &test.ResponseWriter{RemoteIP: "10.32.0.1"}
	ctx := context.Background()
	teach(wk, w, "learn.nosuch.example.")
	if c, ok := wk.clients.Get(node); ok {
		c.mu.Lock()
		n := len(c.lists)
		c.mu.Unlock()
		if n != 0 {
			t.Errorf("Expected no list learned for the node's address, got %d", n)
		}
	}
	r := new(dns.Msg).SetQuestion("registry.default.svc.cluster.local.", dns.TypeA)
	walk, _ := Expand(r.Question[0].Name, podList)
	if _, ok := wk.admit(ctx, qOf(w, r), walk); ok {
		t.Error("Expected a one-label name of the node's address not walked")
	}
}

func TestTrailFollows(t *testing.T) {
	tr := &trail{first: "default.svc.cluster.local."}
	for _, tc := range []struct {
		domain string
		want   bool
	}{
		{"shop.svc.cluster.local.", false},
		{"cluster.local.", false},
		{"svc.cluster.local.", true},
	} {
		if got := tr.follows(tc.domain); got != tc.want {
			t.Errorf("follows(%q) after nothing = %v, want %v", tc.domain, got, tc.want)
		}
	}
	tr.observe("svc.cluster.local.")
	if !tr.follows("svc.cluster.local.") || !tr.follows("cluster.local.") || tr.follows("lab.internal.") {
		t.Error("Expected the same try again, or the cluster domain, after svc.cluster.local.")
	}
	tr.observe("cluster.local.")
	if !tr.follows("corp.test.") || !tr.follows("") {
		t.Error("Expected any domain after the namespace's hierarchy")
	}
	// A list that does not start with a namespace domain (search with a fixed list) has no rule.
	if fixed := (&trail{first: "corp.test."}); !fixed.follows("lab.internal.") {
		t.Error("Expected no rule after a first domain that is no namespace's")
	}
}
