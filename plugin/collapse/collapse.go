package collapse

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
)

// pluginName is the directive's name, used for registration and errors. Metrics use the
// module's subsystem (module.Name).
const pluginName = "collapse"

// Defaults for New.
const (
	defaultMaxKeys    = 10000
	defaultMaxWaiters = 1000
	defaultTimeout    = 10 * time.Second
)

// Collapse is the collapse plugin.
type Collapse struct {
	Next  plugin.Handler
	Zones []string

	maxKeys    int           // flights at once
	maxWaiters int           // queries waiting on one flight, retransmissions included
	timeout    time.Duration // bound on one resolution

	flights    *bounded.Map[key, *flight] // set by Start
	prefetcher SiblingPrefetcher          // found in the server block at startup; may be nil
}

// SiblingPrefetcher is implemented by a plugin of the same server block, above cache, that
// resolves the other address type of a query that missed the cache: raceguard with
// sibling_prefetch on. collapse is the plugin that knows a query missed, so it calls
// PrefetchSibling for every resolution it leads, except for queries raceguard makes on its own
// behalf (query.Own), which never set off a prefetch.
type SiblingPrefetcher interface {
	PrefetchSibling(ctx context.Context, w dns.ResponseWriter, r *dns.Msg)
}

// New returns a Collapse with every option at its default.
func New() *Collapse {
	return &Collapse{maxKeys: defaultMaxKeys, maxWaiters: defaultMaxWaiters, timeout: defaultTimeout}
}

// Start makes the flight table; Stop releases it.
func (c *Collapse) Start() { c.flights = bounded.NewNamed[key, *flight]("collapse_flights", c.maxKeys) }

// Stop releases the flight table.
func (c *Collapse) Stop() {
	if c.flights != nil {
		c.flights.Close()
	}
}

// flight is one resolution and the queries waiting for it. done is closed once every other field
// but waiters and clients is set; those two are only touched under the flight table's shard lock.
type flight struct {
	done chan struct{}

	leader *dns.Msg // the reply as the chain wrote it, for the leader alone
	shared *dns.Msg // a copy of it for the waiters; nil when it must not be shared
	rcode  int
	err    error

	waiters int              // queries collapsed into it; guarded by the shard lock
	clients []netip.AddrPort // who, by address and ID, to spot retransmissions; ditto
	ids     []uint16

	retryOnce sync.Once
	retry     *flight // the waiters' one retry after a failure without a reply; set by retryOnce
}

// role is how a query takes part in a flight.
type role int

const (
	roleLeader role = iota
	roleWaiter
	roleRetransmit // a waiter that is a retransmission of a query already in the flight
	roleOverflow   // over a cap: resolve alone
)

// ServeDNS implements the plugin.Handler interface.
func (c *Collapse) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	k, ok := keyFor(w, r, c.Zones)
	if !ok || c.flights == nil {
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	}
	server := metrics.WithServer(ctx)
	f, role := c.enter(k, w, r)
	switch role {
	case roleOverflow:
		overflows.WithLabelValues(server).Inc()
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	case roleLeader:
		c.start(ctx, k, w, r, f, server)
		if c.prefetcher != nil && !query.Own(ctx) {
			c.prefetcher.PrefetchSibling(ctx, w, r)
		}
	case roleWaiter, roleRetransmit:
		collapsed.WithLabelValues(server, dns.TypeToString[k.qtype]).Inc()
		if role == roleRetransmit {
			collapsedRetransmits.WithLabelValues(server).Inc()
		}
	}
	if !f.wait(ctx) {
		if role != roleLeader {
			waiterTimeouts.WithLabelValues(server).Inc()
		}
		return dns.RcodeServerFailure, ctx.Err()
	}

	if role == roleLeader {
		if f.leader == nil {
			return f.rcode, f.err
		}
		if err := w.WriteMsg(f.leader); err != nil {
			return dns.RcodeServerFailure, err
		}
		return f.rcode, f.err
	}
	if f.shared == nil && f.leader != nil {
		// Truncated: a waiter of the same size class may still fit a reply of its own.
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	}
	if f.shared == nil {
		// The resolution failed without a reply, for all of its queries alike (the leader's own
		// client going away does not stop it). Its waiters try once more together: one retry
		// flight per failed flight, not one resolution each, which would multiply the load on an
		// upstream that is failing.
		f.retryOnce.Do(func() {
			f.retry = &flight{done: make(chan struct{})}
			c.start(ctx, k, w, r, f.retry, server)
		})
		f = f.retry
		if !f.wait(ctx) {
			waiterTimeouts.WithLabelValues(server).Inc()
			return dns.RcodeServerFailure, ctx.Err()
		}
		if f.leader == nil {
			// Failed twice: the server answers SERVFAIL, with this client's ID and question.
			return f.rcode, f.err
		}
		if f.shared == nil {
			return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
		}
	}
	if err := w.WriteMsg(reply.For(f.shared, r)); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

// start runs f's resolution for r in a goroutine of its own. The resolution gets its own copy of
// r: forward rewrites a query's ID while it is upstream, and r is read meanwhile (sibling
// prefetch, the leader's reply).
func (c *Collapse) start(ctx context.Context, k key, w dns.ResponseWriter, r *dns.Msg, f *flight, server string) {
	inflight.WithLabelValues(server).Inc()
	rq := r.Copy()
	go func() {
		c.resolve(ctx, k, w, rq, f)
		inflight.WithLabelValues(server).Dec()
	}()
}

// wait waits for f's resolution or ctx, and reports whether the resolution came first.
func (f *flight) wait(ctx context.Context) bool {
	select {
	case <-f.done:
		return true
	case <-ctx.Done():
		return false
	}
}

// enter finds or starts the flight for k and says how r takes part in it.
func (c *Collapse) enter(k key, w dns.ResponseWriter, r *dns.Msg) (*flight, role) {
	mine := &flight{done: make(chan struct{})}
	from := query.ClientAddrPort(w)
	rl := roleOverflow
	f, ok := c.flights.Update(k, c.timeout+time.Second, func(old *flight, found bool) *flight {
		if !found {
			rl = roleLeader
			mine.clients, mine.ids = append(mine.clients, from), append(mine.ids, r.Id)
			return mine
		}
		if old.waiters >= c.maxWaiters {
			return old // stays roleOverflow
		}
		rl = roleWaiter
		for i := range old.clients {
			if old.clients[i] == from && old.ids[i] == r.Id {
				rl = roleRetransmit
				break
			}
		}
		old.waiters++
		if rl == roleWaiter {
			old.clients, old.ids = append(old.clients, from), append(old.ids, r.Id)
		}
		return old
	})
	if !ok {
		return nil, roleOverflow
	}
	return f, rl
}

// resolve runs the flight's resolution down the chain and hands out the reply.
func (c *Collapse) resolve(ctx context.Context, k key, w dns.ResponseWriter, r *dns.Msg, f *flight) {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	nw := nonwriter.New(w)
	rcode, err := plugin.NextOrFailure(c.Name(), c.Next, rctx, nw, r)

	// A flight in the table is shared only if a query was collapsed into it; a retry flight, which is not in
	// the table, only has waiters.
	waiters, inTable := 0, false
	c.flights.DeleteIf(k, func(g *flight) bool {
		if g != f {
			return false
		}
		waiters, inTable = f.waiters, true
		return true
	})
	f.leader, f.rcode, f.err = nw.Msg, rcode, err
	if (waiters > 0 || !inTable) && nw.Msg != nil && !nw.Msg.Truncated {
		f.shared = nw.Msg.Copy()
	}
	close(f.done)
}

// Name implements the Handler interface.
func (c *Collapse) Name() string { return pluginName }
