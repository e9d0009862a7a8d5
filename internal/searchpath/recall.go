package searchpath

import (
	"context"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
)

// vetoTTL is how long a client whose tries contradicted its exactly known list gets no walk of
// that list: its resolv.conf is not what the API says, until the pod (or the address's next pod)
// shows otherwise.
const vetoTTL = 10 * time.Minute

// recall looks up what an earlier walk of q's client left for q. It returns the reply to write
// when q is a later try of a walk the client continues itself and that try's NXDOMAIN is
// remembered, with the client's ID and question and TTLs aged; or tail, when q is a later try
// that must go down the chain as it is and never be completed. Neither: q is new.
//
// A later try that contradicts the client's exactly known list vetoes the client's walks of such
// lists for vetoTTL (see client.match), and goes down the chain as it is. That is all a client's
// packets can do here: a forged one only makes the client's lookups cost what they cost without
// raceguard.
func (wk *Walker) recall(ctx context.Context, q *query.Query) (m *dns.Msg, tail bool) {
	if wk.clients.Empty() {
		return nil, false // the hit path of a server with no walk in memory
	}
	c, ok := wk.clients.Get(q.Client)
	if !ok {
		return nil, false
	}
	now := wk.clock.Now()
	c.mu.Lock()
	ref, domain, what := c.match(q.Name, now)
	if what == tryVeto {
		c.vetoed = now.Add(vetoTTL)
	}
	c.mu.Unlock()
	switch what {
	case tryNone:
		return nil, false
	case tryAsIs:
		asIsCount.WithLabelValues(metrics.WithServer(ctx)).Inc()
		return nil, false
	case tryVeto:
		vetoes.WithLabelValues(metrics.WithServer(ctx)).Inc()
		return nil, true
	}
	t, ok := wk.trails.Get(trailKey{client: q.Client, base: ref.base})
	if !ok {
		return nil, false // expired, or the table had to drop it: the try is served as new
	}
	i := ref.index(domain)
	f := q.Flags()
	if t.futures == nil || t.futures[i] == nil || f.DO != t.do || f.CD != t.cd {
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

// vetoed reports whether walks of the client's exactly known list are vetoed (recall).
func (wk *Walker) vetoed(c *client) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return wk.clock.Now().Before(c.vetoed)
}
