package family

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/slots"
)

// BenchmarkObserveParallel measures the family table, which every A and AAAA query writes, under
// goroutines that each play clients of their own (run with -cpu 1,2,4,8): time per query should
// stay flat as they grow. "known clients" is the steady state (a record less than a second old:
// two atomic reads); "new clients" writes a slot each time.
func BenchmarkObserveParallel(b *testing.B) {
	for _, bc := range []struct {
		name    string
		clients uint32
	}{
		{"known clients", 64},
		{"new clients", 1 << 16},
	} {
		b.Run(bc.name, func(b *testing.B) {
			tr := New(DefaultCapacity, func() int64 { return time.Now().UnixNano() })
			defer tr.Close()
			var seed atomic.Uint32
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				g := seed.Add(1)
				i := uint32(0)
				for pb.Next() {
					n := i % bc.clients
					client := slots.ClientOf(netip.AddrFrom4([4]byte{10, byte(g), byte(n >> 8), byte(n)}))
					tr.Observe(client, dns.TypeA+uint16(i&1)*(dns.TypeAAAA-dns.TypeA))
					i++
				}
			})
		})
	}
}
