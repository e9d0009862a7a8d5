package collapse

import (
	"context"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"

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

	maxKeys int   // flights at once
	group   group // the flights; its table is made by Start

	prefetcher SiblingPrefetcher // found in the server block at startup; may be nil
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
	return &Collapse{maxKeys: defaultMaxKeys, group: group{maxWaiters: defaultMaxWaiters, timeout: defaultTimeout}}
}

// Start makes the flight table; Stop releases it.
func (c *Collapse) Start() {
	c.group.flights = bounded.NewNamed[key, *flight]("collapse_flights", c.maxKeys)
}

// Stop releases the flight table.
func (c *Collapse) Stop() {
	if c.group.flights != nil {
		c.group.flights.Close()
	}
}

// ServeDNS implements the plugin.Handler interface.
func (c *Collapse) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	k, ok := keyFor(w, r, c.Zones)
	if !ok || c.group.flights == nil {
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	}
	server := metrics.WithServer(ctx)
	f, role := c.group.join(k, query.ClientAddrPort(w), r.Id)
	switch role {
	case roleOverflow:
		overflows.WithLabelValues(server).Inc()
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	case roleLeader:
		c.group.run(ctx, k, w, f, c.resolution(r))
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
	if f.shared == nil && !f.panicked {
		// The resolution failed without a reply, for all of its queries alike (the leader's own
		// client going away does not stop it). Its waiters try once more together: one retry
		// flight per failed flight, not one resolution each, which would multiply the load on an
		// upstream that is failing.
		f = c.group.retried(ctx, k, w, f, c.resolution(r))
		if !f.wait(ctx) {
			waiterTimeouts.WithLabelValues(server).Inc()
			return dns.RcodeServerFailure, ctx.Err()
		}
		if f.shared == nil && f.leader != nil {
			return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
		}
	}
	if f.shared == nil {
		// Failed twice, or panicked once: the server answers SERVFAIL, with this client's ID and
		// question.
		return f.rcode, f.err
	}
	if err := w.WriteMsg(reply.For(f.shared, r)); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

// resolution returns the work of a flight for r: r down the rest of the chain. It gets its own
// copy of r: forward rewrites a query's ID while it is upstream, and r is read meanwhile (sibling
// prefetch, the leader's reply).
func (c *Collapse) resolution(r *dns.Msg) resolution {
	rq := r.Copy()
	return func(ctx context.Context, w dns.ResponseWriter) (int, error) {
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, rq)
	}
}

// Name implements the Handler interface.
func (c *Collapse) Name() string { return pluginName }
