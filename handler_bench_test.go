package raceguard

import (
	"context"
	"net"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/testkit"
)

// answerer is a next plugin that answers every query from a prepared reply, as a cache hit does.
type answerer struct{ reply *dns.Msg }

func (a answerer) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := a.reply.Copy()
	m.SetReply(r)
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (answerer) Name() string { return "answerer" }

// BenchmarkHitPath measures what raceguard adds to a query it does not complete: the cache-hit
// path every query of a cluster takes.
func BenchmarkHitPath(b *testing.B) {
	reply := new(dns.Msg)
	reply.Answer = []dns.RR{test.A("web.default.svc.cluster.local. 30 IN A 10.96.12.34")}
	next := answerer{reply}

	rg := started(b, "raceguard {\n node_search lab.internal\n}", next)

	for _, bc := range []struct {
		name string
		h    plugin.Handler
		q    string
	}{
		{"stock/service", next, "web.default.svc.cluster.local."},
		{"raceguard/service", rg, "web.default.svc.cluster.local."},
		{"stock/external", next, "example.org."},
		{"raceguard/external", rg, "example.org."},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := new(dns.Msg).SetQuestion(bc.q, dns.TypeA)
			w := &testkit.Writer{Addr: &net.UDPAddr{IP: net.IPv4(10, 32, 1, 2), Port: 40212}}
			ctx := context.Background()
			b.ReportAllocs()
			id := uint16(0)
			for b.Loop() {
				id++
				r.Id = id // each lookup has an ID of its own
				bc.h.ServeDNS(ctx, w, r)
			}
		})
	}
}
