package sibling

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/metrics/vars"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/dispatch"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// next records the queries it gets and holds them until released.
type next struct {
	gate  chan struct{}
	mu    sync.Mutex
	seen  []dns.Question
	marks []bool // whether each query's context was marked as raceguard's own
	n     atomic.Int32
}

func (n *next) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	n.mu.Lock()
	n.seen = append(n.seen, r.Question[0])
	n.marks = append(n.marks, query.Own(ctx))
	n.mu.Unlock()
	n.n.Add(1)
	<-n.gate
	m := new(dns.Msg)
	m.SetReply(r)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (*next) Name() string { return "next" }

func TestPrefetch(t *testing.T) {
	nx := &next{gate: make(chan struct{})}
	p := New(&dispatch.Dispatcher{Next: nx}, 2)
	defer p.Close()
	ctx := context.Background()
	q := func(name string, qtype uint16) *dns.Msg { return new(dns.Msg).SetQuestion(name, qtype) }
	w := &test.ResponseWriter{}

	p.PrefetchSibling(ctx, w, q("Example.ORG.", dns.TypeA))
	p.PrefetchSibling(ctx, w, q("example.org.", dns.TypeA)) // within the window: deduplicated
	p.PrefetchSibling(ctx, w, q("c.example.", dns.TypeMX))  // no sibling
	p.PrefetchSibling(ctx, w, q("d.example.", dns.TypeAAAA))
	before := testutil.ToFloat64(skipped.WithLabelValues("", "busy"))
	p.PrefetchSibling(ctx, w, q("e.example.", dns.TypeA)) // two in flight already: skipped
	if got := testutil.ToFloat64(skipped.WithLabelValues("", "busy")) - before; got != 1 {
		t.Errorf("Expected one prefetch skipped over the in-flight bound, got %v", got)
	}
	testkit.Eventually(t, "two prefetches at next", func() bool { return nx.n.Load() >= 2 })
	close(nx.gate)
	testkit.Eventually(t, "the prefetches to end", func() bool { return len(p.sem) == 0 })

	nx.mu.Lock()
	defer nx.mu.Unlock()
	if len(nx.seen) != 2 {
		t.Fatalf("Expected 2 prefetches, got %v", nx.seen)
	}
	want := map[string]uint16{"Example.ORG.": dns.TypeAAAA, "d.example.": dns.TypeA}
	for i, s := range nx.seen {
		if want[s.Name] != s.Qtype {
			t.Errorf("Unexpected prefetch %v", s)
		}
		if !nx.marks[i] {
			t.Errorf("Expected the prefetch of %s marked so it triggers no other", s.Name)
		}
	}

	// The client asks the prefetched sibling: a hit, counted once.
	hitsBefore := testutil.ToFloat64(hits.WithLabelValues("", "AAAA"))
	p.Seen(ctx, "example.org.", q("example.org.", dns.TypeAAAA))
	p.Seen(ctx, "example.org.", q("example.org.", dns.TypeAAAA))
	if got := testutil.ToFloat64(hits.WithLabelValues("", "AAAA")) - hitsBefore; got != 1 {
		t.Errorf("Expected one hit, got %v", got)
	}
}

// families says a fixed set of clients asked AAAA.
type families map[netip.Addr]bool

func (f families) Asked(client netip.Addr, qtype uint16) bool {
	return qtype != dns.TypeAAAA || f[client]
}

func TestPrefetchOnlyForClientsThatAsk(t *testing.T) {
	nx := &next{gate: make(chan struct{})}
	close(nx.gate)
	p := New(&dispatch.Dispatcher{Next: nx}, 8)
	defer p.Close()
	p.Families = families{netip.MustParseAddr("10.0.0.2"): true}
	v4only := &test.ResponseWriter{RemoteIP: "10.0.0.1"}
	dual := &test.ResponseWriter{RemoteIP: "10.0.0.2"}
	before := testutil.ToFloat64(skipped.WithLabelValues("", "unasked"))
	p.PrefetchSibling(context.Background(), v4only, new(dns.Msg).SetQuestion("a.example.", dns.TypeA))
	p.PrefetchSibling(context.Background(), dual, new(dns.Msg).SetQuestion("b.example.", dns.TypeA))
	testkit.Eventually(t, "the prefetch to end", func() bool { return len(p.sem) == 0 && nx.n.Load() >= 1 })
	nx.mu.Lock()
	defer nx.mu.Unlock()
	if len(nx.seen) != 1 || nx.seen[0].Name != "b.example." {
		t.Errorf("Expected the AAAA prefetched for the client that asks AAAA only, got %v", nx.seen)
	}
	if got := testutil.ToFloat64(skipped.WithLabelValues("", "unasked")) - before; got != 1 {
		t.Errorf("Expected one prefetch skipped for a client that does not ask AAAA, got %v", got)
	}
}

func TestUnusedPrefetches(t *testing.T) {
	nx := &next{gate: make(chan struct{})}
	close(nx.gate)
	p := New(&dispatch.Dispatcher{Next: nx}, 8)
	defer p.Close()
	w := &test.ResponseWriter{}
	p.PrefetchSibling(context.Background(), w, new(dns.Msg).SetQuestion("used.example.", dns.TypeA))
	p.PrefetchSibling(context.Background(), w, new(dns.Msg).SetQuestion("unused.example.", dns.TypeA))
	testkit.Eventually(t, "the prefetches to end", func() bool { return len(p.sem) == 0 && nx.n.Load() >= 2 })
	p.Seen(context.Background(), "used.example.", new(dns.Msg).SetQuestion("used.example.", dns.TypeAAAA))
	before := testutil.ToFloat64(unused.WithLabelValues("", "AAAA"))
	p.sweep(time.Now()) // within the window: nothing is unused yet
	p.sweep(time.Now().Add(p.window))
	if got := testutil.ToFloat64(unused.WithLabelValues("", "AAAA")) - before; got != 1 {
		t.Errorf("Expected the one prefetch nobody asked for counted unused, got %v", got)
	}
	p.Start()
	p.Stop() // and the sweeper starts and stops cleanly (goleak checks it)
}

// TestPrefetchPanic: a plugin below that panics on a prefetched sibling fails that prefetch alone:
// the panic is recovered in the prefetch's goroutine and counted, and the process lives on.
func TestPrefetchPanic(t *testing.T) {
	var calls atomic.Int32
	p := New(&dispatch.Dispatcher{Next: test.HandlerFunc(func(_ context.Context, _ dns.ResponseWriter, r *dns.Msg) (int, error) {
		calls.Add(1)
		panic("boom on " + r.Question[0].Name)
	})}, 8)
	defer p.Close()
	before := testutil.ToFloat64(vars.Panic)
	p.PrefetchSibling(context.Background(), &test.ResponseWriter{}, new(dns.Msg).SetQuestion("boom.example.", dns.TypeA))
	testkit.Eventually(t, "the prefetch to end", func() bool { return calls.Load() == 1 && len(p.sem) == 0 })
	if got := testutil.ToFloat64(vars.Panic) - before; got != 1 {
		t.Errorf("Expected coredns_panics_total up by 1, got %v", got)
	}
}
