package searchpath

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/dispatch"
	"github.com/raceguard/raceguard/internal/query"
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
	wk := New(Fixed(podList), &dispatch.Dispatcher{Next: z}, DefaultMaxWalks, 1000, 1000)
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

// qOf returns the facts of r from w, as the handler makes them.
func qOf(w dns.ResponseWriter, r *dns.Msg) *query.Query {
	q := query.New(w, r, query.Lower(r.Question[0].Name))
	return &q
}

// named returns the facts of a query for name alone, for a Source's Plan.
func named(name string) query.Query { return query.Query{Name: name} }

// completeWalk completes r from w as the first try of walk, and, where the Walker leaves it, sends
// it down the chain as the handler would: what a client gets for a first try admitted as walk.
func completeWalk(ctx context.Context, wk *Walker, w dns.ResponseWriter, r *dns.Msg, walk Walk) (int, error) {
	rcode, err, done := wk.complete(ctx, qOf(w, r), walk)
	if !done {
		return plugin.NextOrFailure("test", wk.Dispatch.Next, ctx, w, r)
	}
	return rcode, err
}

// serve sends r from w through wk as the handler does, and down the chain where wk leaves it.
func serve(ctx context.Context, wk *Walker, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	rcode, err, done := wk.Serve(ctx, qOf(w, r))
	if !done {
		return plugin.NextOrFailure("test", wk.Dispatch.Next, ctx, w, r)
	}
	return rcode, err
}

// localOnly is a fixed list trusted in its first domain's own hierarchy only, as Infer plans its
// walks, without Infer's check that the namespace exists.
type localOnly []string

// Plan implements Source.
func (l localOnly) Plan(q query.Query) (Walk, bool) {
	walk, ok := Expand(q.Name, l)
	walk.Trusted = walk.Local
	return walk, ok
}
