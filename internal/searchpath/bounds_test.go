package searchpath

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/dispatch"
	"github.com/raceguard/raceguard/internal/testkit"
)

func TestTablesCapped(t *testing.T) {
	z := newZone()
	wk := New(Fixed(podList), &dispatch.Dispatcher{Next: z}, DefaultMaxWalks, 64, 128) // tiny tables: 64 walks shared, 128 clients remembered
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
	wk := New(Fixed(podList), &dispatch.Dispatcher{Next: z}, 2, 1000, 1000)
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
