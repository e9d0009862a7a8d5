package differential

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// bursts sends each of a few queries 20 times at once to raceguard, every copy with its own ID
// and 0x20 case, while the upstream is slow, so that collapse joins them and the sibling prefetch
// runs; every reply is judged against stock's reply to the same wire message, which stock gets
// (as a burst too) just before. The names are new to both servers' caches. Some bursts mix A and
// AAAA, some mix every EDNS, CD and transport setting: only queries that may share an answer
// must share one.
func (d *harness) bursts(up *lab.Upstream) {
	const n = 20
	type burst struct {
		q                  query
		mixTypes, mixFlags bool
	}
	cases := []burst{
		{q: query{name: "burst-a.wild.example.com.", qtype: dns.TypeA, edns: 1232, rd: true, net: "udp"}},
		{q: query{name: "burst-b.wild.example.com.", qtype: dns.TypeAAAA, rd: true, net: "tcp"}},
		{q: query{name: "burst-c.wild.example.com.default.svc.cluster.local.", qtype: dns.TypeA, rd: true, net: "udp"}},
		{q: query{name: "burst-d.wild.example.com.default.svc.cluster.local.", qtype: dns.TypeAAAA, edns: 4096, do: true, rd: true, net: "udp"}},
		{q: query{name: "nosuch-burst.example.org.", qtype: dns.TypeA, edns: 4096, do: true, rd: true, net: "udp"}},
		{q: query{name: "nosuch-burst.example.org.default.svc.cluster.local.", qtype: dns.TypeA, edns: 512, rd: true, net: "udp"}},
		{q: query{name: "v4only.example.net.", qtype: dns.TypeAAAA, edns: 1232, cd: true, rd: true, net: "udp"}},
		{q: query{name: "burst-e.wild.example.com.", edns: 512, rd: true, net: "udp"}, mixTypes: true},
		{q: query{name: "burst-f.wild.example.com.default.svc.cluster.local.", rd: true, net: "tcp"}, mixTypes: true},
		// Truncated answers are never shared; a 512-byte client must get TC, a larger one all.
		{q: query{name: "big.example.com.", qtype: dns.TypeA}, mixFlags: true},
		{q: query{name: "big.example.com.default.svc.cluster.local.", qtype: dns.TypeA}, mixFlags: true},
		{q: query{name: "burst-g.wild.example.com."}, mixTypes: true, mixFlags: true},
		{q: query{name: "empty.example.com.", qtype: dns.TypeAAAA}, mixFlags: true},
	}
	rng := rand.New(rand.NewPCG(20, 20))
	combos := flagCombos()
	up.SetDelay(100 * time.Millisecond)
	defer up.SetDelay(0)
	for _, c := range cases {
		qs := make([]query, n)
		wires := make([][]byte, n)
		perm := rng.Perm(len(combos))
		for i := range qs {
			qs[i] = c.q
			if c.mixFlags {
				f := combos[perm[i%len(perm)]]
				qs[i].edns, qs[i].do, qs[i].cd, qs[i].rd, qs[i].net = f.edns, f.do, f.cd, f.rd, f.net
			}
			if c.mixTypes {
				qs[i].qtype = [...]uint16{dns.TypeA, dns.TypeAAAA}[i%2]
			}
			qs[i].name, qs[i].id = mixCase(rng, c.q.name), uint16(rng.Uint32())
			wires[i], _ = qs[i].msg().Pack()
		}
		stock, rg := make([]*reply, n), make([]*reply, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for _, srv := range []*server{d.stock, d.rg} {
			for i := range qs {
				wg.Go(func() {
					r, err := exchange(qs[i].net, srv.addr, wires[i])
					if srv == d.stock {
						stock[i] = r
					} else {
						rg[i] = r
					}
					if err != nil {
						errs[i] = fmt.Errorf("%s: %w", srv.name, err)
					}
				})
			}
			wg.Wait() // stock's burst first, then raceguard's
		}
		for i := range qs {
			d.burstQueries++
			if errs[i] != nil {
				d.compared++
				d.fail(qs[i], stock[i], rg[i], []string{errs[i].Error()})
				continue
			}
			d.judge(qs[i], wires[i], stock[i], rg[i])
		}
	}
}
