package fingerprint

import (
	"context"
	"net/netip"
	"sync/atomic"
	"testing"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/slots"
)

// BenchmarkObserveParallel measures the fingerprint table, which every A and AAAA query writes, under
// goroutines that each play clients of their own (run with -cpu 1,2,4,8): time per query should
// stay flat as they grow. "same client" has every goroutine on one client and name, one slot.
func BenchmarkObserveParallel(b *testing.B) {
	tr := New(50000)
	defer tr.Close()
	ctx := context.Background()
	for _, bc := range []struct {
		name    string
		clients uint32 // distinct source ports per goroutine
	}{
		{"distinct clients", 1000},
		{"same client", 0},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var seed atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				g := seed.Add(1)
				client := slots.ClientOf(netip.AddrFrom4([4]byte{10, 0, byte(g), 1}))
				r := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
				i := uint32(0)
				for pb.Next() {
					port := uint16(40000)
					if bc.clients > 0 {
						port = uint16(g*bc.clients + i%bc.clients)
					}
					r.Id = uint16(i)
					r.Question[0].Qtype = dns.TypeA + uint16(i&1)*(dns.TypeAAAA-dns.TypeA)
					_, _, tok := tr.Observe(ctx, client, port, r, r.Question[0].Name)
					tr.Answered(tok)
					i++
				}
			})
		})
	}
}
