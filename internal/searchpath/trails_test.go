package searchpath

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

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

func TestWalkAsIsName(t *testing.T) {
	// A client asked x.y.default.svc.cluster.local as is (an absolute name, or ndots dots or
	// more): after its NXDOMAIN it searches below the name. Those tries are no later tries of the
	// walk, and are counted once.
	z := newZone()
	wk := newWalker(t, z)
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

func TestClientTrails(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	rest := []string{"svc.cluster.local.", "cluster.local.", "lab.internal."}
	ref := func(base string, expires time.Time) trailRef {
		return trailRef{base: base, first: "default.svc.cluster.local.", rest: rest, expires: expires}
	}
	fill := func(c *client, age time.Duration) {
		for i := range maxTrails {
			c.add(ref(fmt.Sprintf("n%d.example.", i), now.Add(trailTTL-age)), now.Add(-age))
		}
	}
	next := ref("new.example.", now.Add(trailTTL))

	// Full of trails whose clients are done: the oldest makes room, and walks go on.
	settled := &client{}
	fill(settled, settledAge+time.Second)
	settled.add(next, now)
	if !settled.crowded.IsZero() || len(settled.trails) != maxTrails {
		t.Errorf("Expected room made without crowding, got crowded %v and %d trails", settled.crowded, len(settled.trails))
	}
	if _, _, what := settled.match("new.example.svc.cluster.local.", now); what != tryLater {
		t.Error("Expected the new trail matched")
	}

	// Full of trails younger than settledAge: the client is crowded for trailTTL.
	busy := &client{}
	fill(busy, time.Second)
	busy.add(next, now)
	if !busy.crowded.Equal(now.Add(trailTTL)) {
		t.Errorf("Expected the client crowded until %v, got %v", now.Add(trailTTL), busy.crowded)
	}

	// match: only the base under a domain of the trail's list (or the base itself) is a later
	// try, of the newer of two trails whose bases start the name; never the first try itself; a
	// name below the first try is a name asked as is, once.
	c := &client{}
	c.add(ref("a.", now.Add(time.Second)), now)
	c.add(ref("a.b.", now.Add(2*time.Second)), now)
	for _, tc := range []struct {
		name, base, domain string
		what               try
	}{
		{"a.b.svc.cluster.local.", "a.b.", "svc.cluster.local.", tryLater},
		{"a.b.", "a.b.", "", tryLater},
		{"a.b.lab.internal.", "a.b.", "lab.internal.", tryLater},
		{"a.c.svc.cluster.local.", "", "", tryNone},         // not a.'s list: a name of its own
		{"a.b.default.svc.cluster.local.", "", "", tryNone}, // a.b.'s first try: a new lookup
		{"a.b.c.default.svc.cluster.local.", "", "", tryNone},
		{"a.b.evil.test.", "", "", tryNone}, // not in the list, and the list is not exact
		{"a.b.default.svc.cluster.local.lab.internal.", "a.b.", "", tryAsIs},
		{"a.b.default.svc.cluster.local.cluster.local.", "", "", tryNone}, // counted once
	} {
		ref, domain, what := c.match(tc.name, now)
		if what != tc.what || ref.base != tc.base || domain != tc.domain {
			t.Errorf("match(%q) = %q, %q, %v; want %q, %q, %v", tc.name, ref.base, domain, what, tc.base, tc.domain, tc.what)
		}
	}
	if _, _, what := c.match("a.b.svc.cluster.local.", now.Add(3*time.Second)); what != tryNone {
		t.Error("Expected expired trails not matched")
	}
}

func TestClientVeto(t *testing.T) {
	// An exactly known list: a try under a domain the list does not have, in the middle of the
	// client's walk, contradicts it. The base itself before the list's last domain does not: it
	// may be another lookup of the name as is (example.org. beside example.org), or the domains
	// between went to another replica.
	now := time.Unix(1_800_000_000, 0)
	rest := []string{"svc.cluster.local.", "cluster.local.", "lab.internal."}
	for _, tc := range []struct {
		tries []string // after the first try
		what  try      // of the last
	}{
		{[]string{"svc.cluster.local.", "cluster.local.", "lab.internal.", ""}, tryLater},
		{[]string{"svc.cluster.local.", "evil.test."}, tryVeto},
		{[]string{"svc.cluster.local.", "cluster.local.", ""}, tryLater},
		{[]string{""}, tryLater},          // a. asked as is beside the walk of a.
		{[]string{"evil.test."}, tryNone}, // not in the middle of its walk
		{[]string{"svc.cluster.local.", "x.default.svc.cluster.local."}, tryNone},                        // a new first try of x.a.
		{[]string{"svc.cluster.local.", "cluster.local.", "lab.internal.", "", "example.org."}, tryNone}, // after its walk
	} {
		c := &client{}
		c.add(trailRef{base: "a.", first: "default.svc.cluster.local.", rest: rest, exact: true, expires: now.Add(trailTTL)}, now)
		var what try
		for _, d := range tc.tries {
			_, _, what = c.match("a."+d, now)
		}
		if what != tc.what {
			t.Errorf("%v: Expected %v for the last, got %v", tc.tries, tc.what, what)
		}
	}
}
