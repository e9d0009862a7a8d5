package searchpath

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/dispatch"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/testkit"
	testingclock "k8s.io/utils/clock/testing"
)

// BenchmarkWalkTablesParallel measures the Walker's shared tables on the query path under
// goroutines that each play a client of their own (run with -cpu 1,2,4,8): time per query should
// stay flat as they grow.
//
//   - recall: a later try of a walk the client continues (clients, then trails: a remembered
//     NXDOMAIN), what every A and AAAA of a client with trails meets;
//   - decided: a first try answered from the decision of an earlier walk (decisions);
//   - pair: the pair table's share and a decided walk's answer, the A and AAAA of one lookup.
func BenchmarkWalkTablesParallel(b *testing.B) {
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	wk := New(Fixed(podList), &dispatch.Dispatcher{Next: z}, DefaultMaxWalks, DefaultPairs, DefaultClients)
	defer wk.Close()
	clk := testingclock.NewFakeClock(time.Unix(1_800_000_000, 0))
	wk.SetClock(clk)
	const clients = 64
	ctx := context.Background()
	ip := func(g int) string { return fmt.Sprintf("10.1.%d.%d", g/250, g%250+1) }
	ask := func(g int, name string, qtype uint16) {
		serve(ctx, wk, dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: ip(g)}), new(dns.Msg).SetQuestion(name, qtype))
	}
	// Each client completes example.org (a decision), and walks nosuch.example to its end (a
	// trail whose NXDOMAINs answer its later tries for 5 s, the zone's negative TTL: each round of
	// the benchmark walks again).
	setup := func(b *testing.B) {
		for g := range clients {
			ask(g, "example.org.default.svc.cluster.local.", dns.TypeA)
			ask(g, "example.org.default.svc.cluster.local.", dns.TypeAAAA)
			ask(g, "nosuch.example.default.svc.cluster.local.", dns.TypeA)
		}
		clk.Step(pairTTL) // the walks' pairs are done with
		b.ResetTimer()
	}
	for _, bc := range []struct {
		name string
		f    func(w dns.ResponseWriter, r *dns.Msg)
		q    string
	}{
		{"recall", func(w dns.ResponseWriter, r *dns.Msg) {
			wk.recall(ctx, qOf(w, r))
		}, "nosuch.example.svc.cluster.local."},
		{"decided", func(w dns.ResponseWriter, r *dns.Msg) {
			walk, _ := Expand(r.Question[0].Name, podList)
			wk.completed(ctx, qOf(w, r), walk)
		}, "example.org.default.svc.cluster.local."},
		{"pair", func(w dns.ResponseWriter, r *dns.Msg) {
			walk, _ := Expand(r.Question[0].Name, podList)
			wk.share(key{client: query.ClientAddr(w), name: walk.Name}, bothTypes)
		}, "example.org.default.svc.cluster.local."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			setup(b)
			var seed atomic.Int32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				g := int(seed.Add(1)-1) % clients
				w := &testkit.Writer{Addr: &net.UDPAddr{IP: net.ParseIP(ip(g)), Port: 40000}}
				r := new(dns.Msg).SetQuestion(bc.q, dns.TypeA)
				for pb.Next() {
					bc.f(w, r)
				}
			})
		})
	}
}
