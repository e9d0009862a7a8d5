package searchpath

import (
	"context"
	"fmt"
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
)

func overflowsFor(table string) prometheus.Collector { return bounded.Overflows(table) }

// zone is a fake rest of the chain: answers per lower-cased name and type; every name not listed
// is NXDOMAIN with an SOA. It counts the queries it serves.
type zone struct {
	records map[string][]dns.RR // name -> records (all types)
	rcodes  map[string]int      // name/TYPE -> rcode to return unwritten (SERVFAIL...)
	silent  map[string]bool     // name -> returns success without writing (as acl's drop)
	delay   time.Duration

	mu    sync.Mutex
	calls map[string]int // name/TYPE -> queries
}

func newZone(rrs ...string) *zone {
	z := &zone{records: map[string][]dns.RR{}, rcodes: map[string]int{}, silent: map[string]bool{}, calls: map[string]int{}}
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

func (z *zone) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	key := name + "/" + dns.TypeToString[q.Qtype]
	z.mu.Lock()
	z.calls[key]++
	z.mu.Unlock()
	if z.delay > 0 {
		time.Sleep(z.delay)
	}
	if rc, ok := z.rcodes[key]; ok {
		return rc, nil
	}
	if z.silent[name] {
		return dns.RcodeSuccess, nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	rrs, exists := z.records[name]
	for _, rr := range rrs {
		if rr.Header().Rrtype == q.Qtype || rr.Header().Rrtype == dns.TypeCNAME {
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if !exists {
		m.Rcode = dns.RcodeNameError
	}
	if len(m.Answer) == 0 {
		soa, _ := dns.NewRR("example. 30 IN SOA ns.example. hostmaster.example. 1 7200 1800 86400 5")
		m.Ns = []dns.RR{soa}
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (z *zone) Name() string { return "zone" }

// query sends a query for name and qtype through wk and returns the recorded reply.
func ask(t *testing.T, wk *Walker, name string, qtype uint16, id uint16) (*dns.Msg, int, error) {
	t.Helper()
	r := new(dns.Msg).SetQuestion(name, qtype)
	r.Id = id
	r.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	ctx := context.Background()
	if m, tail := wk.Recall(ctx, rec, r, strings.ToLower(name)); m != nil {
		return m, dns.RcodeSuccess, nil
	} else if tail {
		rcode, err := wk.Next.ServeDNS(ctx, rec, r)
		return rec.Msg, rcode, err
	}
	walk, ok := Expand(strings.ToLower(name), podList)
	if !ok {
		rcode, err := wk.Next.ServeDNS(ctx, rec, r)
		return rec.Msg, rcode, err
	}
	rcode, err := wk.Complete(ctx, rec, r, walk)
	return rec.Msg, rcode, err
}

func newWalker(t *testing.T, z *zone) *Walker {
	wk := New(z, 1000, 1000)
	t.Cleanup(wk.Close)
	return wk
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
		if !ok || c.Hdr.Name != q || c.Target != "example.org." || c.Hdr.Ttl != tc.ttl {
			t.Errorf("Expected CNAME %s -> example.org. with TTL %d first, got %v", q, tc.ttl, m.Answer[0])
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
	if m, tail := wk.Recall(context.Background(), dnstest.NewRecorder(&test.ResponseWriter{}), r, "store.example.shop.svc.cluster.local."); m == nil && !tail {
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
	z.delay = 20 * time.Millisecond
	wk := newWalker(t, z)
	const q = "example.org.default.svc.cluster.local."
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
	}
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
	z.delay = 200 * time.Millisecond
	wk := newWalker(t, z)
	const q = "example.org.default.svc.cluster.local."
	walk, _ := Expand(q, podList)

	done := make(chan *dns.Msg)
	go func() {
		m, _, _ := ask(t, wk, q, dns.TypeA, 1)
		done <- m
	}()
	time.Sleep(20 * time.Millisecond) // the A leads
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	r := new(dns.Msg).SetQuestion(q, dns.TypeAAAA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if _, err := wk.Complete(ctx, rec, r, walk); err == nil {
		t.Error("Expected the waiter to give up at its own deadline")
	}
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
	walk.Verify = list[0]
	r := new(dns.Msg).SetQuestion("api.shop.cnn.svc.cluster.local.", dns.TypeA)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	wk.Complete(context.Background(), rec, r, walk)
	if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError || len(rec.Msg.Answer) != 0 {
		t.Errorf("Expected no completion for a namespace that does not exist, got %v", rec.Msg)
	}

	list[0] = "shop.svc.cluster.local."
	walk, _ = Expand("example.org.shop.svc.cluster.local.", list)
	walk.Verify = list[0]
	r = new(dns.Msg).SetQuestion("example.org.shop.svc.cluster.local.", dns.TypeA)
	rec = dnstest.NewRecorder(&test.ResponseWriter{})
	wk.Complete(context.Background(), rec, r, walk)
	if rec.Msg == nil || len(rec.Msg.Answer) != 2 {
		t.Errorf("Expected completion in an existing namespace, got %v", rec.Msg)
	}
}

func TestTablesCapped(t *testing.T) {
	z := newZone()
	wk := New(z, 64, 128) // tiny tables: 64 walks shared, 128 remembered names
	defer wk.Close()
	before := testutil.ToFloat64(overflowsFor("search_memory"))

	// 2000 clients each exhaust a walk: each would leave 4 names to remember.
	for i := range 2000 {
		r := new(dns.Msg).SetQuestion(fmt.Sprintf("n%d.example.default.svc.cluster.local.", i), dns.TypeA)
		w := &test.ResponseWriter{RemoteIP: fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}
		walk, _ := Expand(strings.ToLower(r.Question[0].Name), podList)
		wk.Complete(context.Background(), dnstest.NewRecorder(w), r, walk)
	}
	if n, c := wk.memory.Len(), wk.memory.Cap(); n > c || c != 128 {
		t.Errorf("Expected at most %d remembered names, got %d", c, n)
	}
	if n, c := wk.pairs.Len(), wk.pairs.Cap(); n > c {
		t.Errorf("Expected at most %d shared walks, got %d", c, n)
	}
	if got := testutil.ToFloat64(overflowsFor("search_memory")) - before; got < 2000*4-128 {
		t.Errorf("Expected the refused names counted as overflows, got %v", got)
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
	wk := newWalker(t, z)
	const q = "example.org.default.svc.cluster.local."
	deadline := time.Now().Add(pairTTL + 500*time.Millisecond)
	for time.Now().Before(deadline) {
		ask(t, wk, q, dns.TypeA, 1)
		time.Sleep(100 * time.Millisecond)
	}
	if c := z.count("example.org.", dns.TypeA); c < 2 {
		t.Errorf("Expected a new walk once the shared one was %s old, got %d walks", pairTTL, c)
	}
}
