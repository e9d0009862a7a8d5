package collapse

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"

	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/testkit"
)

// instant is a next plugin that answers at once, as a cache miss answered by a fast upstream.
type instant struct{}

func (instant) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg).SetReply(r)
	m.Answer = []dns.RR{test.A(r.Question[0].Name + " 30 IN A 192.0.2.1")}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (instant) Name() string { return "instant" }

// BenchmarkCollapseParallel measures the in-flight table every query that reaches collapse (a
// cache miss) enters and leaves, under goroutines each asking names of their own (run with -cpu
// 1,2,4,8): time per query should stay flat as they grow.
func BenchmarkCollapseParallel(b *testing.B) {
	c := New()
	c.Next = instant{}
	c.Zones = []string{"."}
	c.Start()
	defer c.Stop()
	ctx := context.Background()
	var seed atomic.Int32
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		g := seed.Add(1)
		w := &testkit.Writer{Addr: &net.UDPAddr{IP: net.IPv4(10, 0, byte(g), 1), Port: 40000}}
		names := make([]*dns.Msg, 64)
		for i := range names {
			names[i] = new(dns.Msg).SetQuestion(fmt.Sprintf("n%d-%d.example.org.", g, i), dns.TypeA)
		}
		i := 0
		for pb.Next() {
			c.ServeDNS(ctx, w, names[i%len(names)])
			i++
		}
	})
}
