package searchpath

import (
	"context"
	"net/netip"
	"slices"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
)

// recall looks up what an earlier walk of q's client left for q, and, where the Walker learns,
// notes the try. It returns the reply to write when the name's NXDOMAIN is remembered, with the
// client's ID and question and TTLs aged; or tail, when the name is a later try of a walk the
// client continues itself, which must go down the chain as it is and never be completed. Neither:
// the query is new.
func (wk *Walker) recall(ctx context.Context, q *query.Query) (m *dns.Msg, tail bool) {
	if wk.clients.Empty() {
		return nil, false // the hit path of a server with no walk in memory
	}
	c, ref, t, domain, ok := wk.trailOf(ctx, q.Client, q.Name)
	if !ok {
		return nil, false
	}
	wk.learnFrom(ctx, c, q.Client, ref, t, domain)

	i := slices.Index(t.domains, domain)
	f := q.Flags()
	if i < 0 || t.futures[i] == nil || f.DO != t.do || f.CD != t.cd {
		return nil, true
	}
	fu := t.futures[i]
	select {
	case <-fu.done:
	case <-ctx.Done():
		return nil, true
	}
	a := fu.p[query.PairIndex(q.Type)]
	if a.class() != classNX || wk.clock.Since(fu.at) > negativeTTL(a.msg) {
		return nil, true
	}
	m = reply.For(a.msg, q.R)
	ageTTLs(m, wk.clock.Since(fu.at))
	rememberedCount.WithLabelValues(metrics.WithServer(ctx)).Inc()
	return m, false
}

// ObserveTry notes the try of name (lower-cased) by the client at addr that another server block
// of this Walker's listener serves (package tries): where the Walker learns, the client's tries
// there belong to its list as much as those it sees itself.
func (wk *Walker) ObserveTry(ctx context.Context, addr netip.Addr, name string) {
	if !wk.Learn {
		return
	}
	if c, ref, t, domain, ok := wk.trailOf(ctx, addr, name); ok {
		wk.learnFrom(ctx, c, addr, ref, t, domain)
	}
}

// trailOf returns the trail of the client at addr that name is a later try of, and the domain it
// tries. A name below the trail's first try shows the first try was a name asked as is: it is
// counted once, and is no later try.
func (wk *Walker) trailOf(ctx context.Context, addr netip.Addr, name string) (c *client, ref trailRef, t *trail, domain string, ok bool) {
	if wk.clients.Empty() {
		return nil, ref, nil, "", false
	}
	if c, ok = wk.clients.Get(addr); !ok {
		return nil, ref, nil, "", false
	}
	now := wk.clock.Now()
	c.mu.Lock()
	ref, domain, below, ok := c.match(name, now)
	c.mu.Unlock()
	if !ok {
		return nil, ref, nil, "", false
	}
	if t, ok = wk.trails.Get(trailKey{client: addr, base: ref.base}); !ok {
		return nil, ref, nil, "", false // expired, or the table had to drop it: the try is served as new
	}
	if below {
		wk.asIs(ctx, t)
		return nil, ref, nil, "", false
	}
	return c, ref, t, domain, true
}

// learnFrom notes that the client at addr tried ref's base under domain, and learns the list its
// tries show so far, where the Walker learns and the address is one client's (see Shared). A try
// that cannot be the next of the walk (see trail.follows) shows a name asked as is: counted, and
// nothing of the trail is learned.
func (wk *Walker) learnFrom(ctx context.Context, c *client, addr netip.Addr, ref trailRef, t *trail, domain string) {
	if !wk.Learn || wk.shared(addr) {
		return
	}
	if !t.follows(domain) {
		wk.asIs(ctx, t)
		return
	}
	if domains, ended, changed := t.observe(domain); changed {
		c.mu.Lock()
		c.learn(ref.first, domains, ended, wk.clock.Now())
		c.mu.Unlock()
		wk.clients.Put(addr, c, learnTTL) // keeps what was learned for its whole lifetime
	}
}

// asIs marks t's first try as a name asked as is, counted once.
func (wk *Walker) asIs(ctx context.Context, t *trail) {
	if t.markAsIs() {
		asIsCount.WithLabelValues(metrics.WithServer(ctx)).Inc()
	}
}
