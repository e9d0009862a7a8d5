/*
Package collapse implements the collapse directive of the raceguard CoreDNS plugin module: identical
queries in flight at the same time share one resolution.

Stock CoreDNS sends every cache miss down the chain, so a burst of pods asking one name, or a
client retransmitting while the first try is still out, becomes a burst of identical upstream
queries (coredns#2879, kubernetes/dns#387): more conntrack entries, more load, and more chances
for a spoofed reply to win (CVE-2023-30464). collapse sits just after cache, so it only sees
misses and never a query acl refused, and joins identical ones the way Unbound, PowerDNS and BIND
do.

# The key

Two queries share a resolution only if nothing that can change the answer, or whether a client may
accept it, differs between them (see key.go): the name case-insensitively (RFC 4343), type and
class; DO (RRSIGs or not, RFC 3225); CD (CVE-2024-0874); RD; the transport and the EDNS buffer size
class, because forward asks upstream over the client's transport with the client's size, and a
reply truncated for one must not reach a client that can take more. The server block and view are
implicit: each has its own Collapse. Queries with a client subnet (ECS, RFC 7871 §11.2: sharing
them defeats the point of ECS and revives birthday attacks) or a non-QUERY opcode are never joined.

# The flight

The first query for a key leads: its resolution runs down the chain in a goroutine of its own,
detached from the leader's context and bounded by timeout, so the leader's client going away fails
no one else. Every query, leader included, waits for the resolution or its own deadline, whichever
comes first. The leader gets the reply exactly as the chain wrote it; each waiter gets a deep copy
made into its own reply (its ID, its question bytes, its OPT record; see package reply) and the
server truncates it to its own size. A truncated reply is not shared: waiters resolve on their
own. A resolution that wrote nothing (an error: a dead upstream, a timeout) failed for all of its
queries alike: the waiters try once more together, as a new flight, and if that fails too each
gets SERVFAIL, as without collapse, but after two upstream tries instead of one per client. A retransmission (same client
address, port, ID and question) joins the flight like any waiter and is counted as one.

Waiters per flight and flights in total are capped; a query over either cap passes through, and is
counted. A flight is forgotten the moment its resolution ends: nothing is cached here.
*/
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
	"github.com/raceguard/raceguard/plugin/bounded"
	"github.com/raceguard/raceguard/plugin/query"
	"github.com/raceguard/raceguard/plugin/reply"
	"github.com/raceguard/raceguard/plugin/sibling"
)

// pluginName is the directive's name, used for registration, errors and logs. Metrics use the
// module's subsystem, "raceguard".
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

	flights *bounded.Map[key, *flight] // set by Start
	trigger sibling.Trigger            // raceguard's sibling prefetch, when configured
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

	waiters int              // joined queries; guarded by the shard lock
	clients []netip.AddrPort // who joined, by address and ID, to spot retransmissions; ditto
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
	f, role := c.join(k, w, r)
	switch role {
	case roleOverflow:
		overflows.WithLabelValues(server).Inc()
		return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
	case roleLeader:
		c.start(ctx, k, w, r, f, server)
		if c.trigger != nil && !sibling.NoPrefetch(ctx) {
			c.trigger.PrefetchSibling(ctx, w, r)
		}
	case roleWaiter, roleRetransmit:
		coalesced.WithLabelValues(server, dns.TypeToString[k.qtype]).Inc()
		if role == roleRetransmit {
			retransmits.WithLabelValues(server).Inc()
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

// join finds or starts the flight for k and says how r takes part in it.
func (c *Collapse) join(k key, w dns.ResponseWriter, r *dns.Msg) (*flight, role) {
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

	// A flight in the table is shared only if someone joined it; a retry flight, which is not in
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
