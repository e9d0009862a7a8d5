package searchpath

import (
	"context"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/dispatch"
	"github.com/raceguard/raceguard/internal/query"
	"k8s.io/utils/clock"
)

// Defaults for New.
const (
	DefaultPairs    = 10000                  // walks in flight or just done, shared by a pair
	DefaultClients  = 20000                  // clients whose walks or search lists are remembered
	DefaultTrails   = 20000                  // walks remembered for the clients that continue them
	DefaultTimeout  = 5 * time.Second        // a whole walk
	DefaultDeadline = 200 * time.Millisecond // how much longer than its first try's own answer a client waits
	DefaultMaxWalks = 128                    // walks running at once, in the whole server block

	// hedge is how long a try of a walk tried in order may go unanswered before the next one
	// starts: this server's own plugins answer in microseconds, so a try that takes longer went
	// upstream, and waiting for it before asking the next would add up round trips.
	hedge = 10 * time.Millisecond

	pairTTL            = 2 * time.Second  // how long a finished walk waits for the other of its pair
	trailTTL           = 30 * time.Second // how long a walk the client continues itself is kept for it
	clientTTL          = 10 * time.Minute // how long a client's budget and veto are kept
	maxRememberTTL     = 10 * time.Second // cap on answering an NXDOMAIN from memory
	minRememberTTL     = 1 * time.Second
	defaultRememberTTL = 5 * time.Second // when an NXDOMAIN has no SOA to say
)

// Walker completes search walks. Its exported fields are set before it serves.
type Walker struct {
	// Source plans the walks: it says which queries are the first try of one.
	Source Source
	// Dispatch sends the tries of a walk where the client's own queries for them would go.
	Dispatch *dispatch.Dispatcher
	// Parallel tries the names beyond the first domain's own hierarchy at once, and hedges the
	// tries before them; without it every try waits for the one before.
	Parallel bool
	// Timeout bounds a whole walk, including the tries it makes for a client that walks on.
	Timeout time.Duration
	// Deadline is how much longer than its first try's own answer a client waits for the walk to
	// decide; then it gets its first try's own answer and walks on, its later tries answered from
	// what the walk resolved meanwhile.
	Deadline time.Duration
	// Families, when set, says which address types a client asks: a walk resolves the type its
	// first try asks, and the other only for a client that asked it recently, so that a client
	// asking one type alone is walked as its own resolver walks, at its own upstream cost. When
	// the other type of the lookup comes after all, it is completed at the same name (sibling).
	Families Families
	// Budget bounds the walks each client may start (see Budget); the zero value bounds nothing.
	Budget Budget

	clock       clock.Clock   // the real one, or a test's (SetClock)
	inflight    chan struct{} // one token per walk running; its capacity is the cap
	pausedUntil atomic.Int64  // unix nanoseconds: no walk starts before (see unwalked)
	pairs       *bounded.Map[key, *pair]
	clients     *bounded.Map[netip.Addr, *client]
	trails      *bounded.Map[trailKey, *trail]
	completions *bounded.Map[key, *completion]
}

// Families is what a Walker needs to know of the address types a client asks (family.Tracker).
type Families interface {
	// Asked reports whether client asked qtype (dns.TypeA or dns.TypeAAAA) recently.
	Asked(client netip.Addr, qtype uint16) bool
}

// Budget is a token bucket per client: a walk costs a token, and Rate tokens a second come back,
// up to Burst. A client out of tokens gets its first tries passed on untouched, exactly as without
// raceguard: whatever it sends, it costs upstream what it would cost without a walk.
type Budget struct {
	Rate  float64 // tokens a second; 0: no budget
	Burst float64
}

// New returns a Walker of the walks source plans, that runs at most maxWalks walks at once, and
// whose tables hold pairs walks and clients clients at most.
func New(source Source, d *dispatch.Dispatcher, maxWalks, pairs, clients int) *Walker {
	return &Walker{
		Source:      source,
		Dispatch:    d,
		Parallel:    true,
		Timeout:     DefaultTimeout,
		Deadline:    DefaultDeadline,
		clock:       clock.RealClock{},
		inflight:    make(chan struct{}, maxWalks),
		pairs:       bounded.NewNamed[key, *pair]("search_pairs", pairs),
		clients:     bounded.NewNamed[netip.Addr, *client]("search_clients", clients),
		trails:      bounded.NewNamed[trailKey, *trail]("search_trails", DefaultTrails),
		completions: bounded.NewNamed[key, *completion]("search_decisions", DefaultCompletions),
	}
}

// SetClock makes the Walker and its tables read the time, and wait, on c: for tests, with a fake
// clock. Call it before the Walker serves.
func (wk *Walker) SetClock(c clock.Clock) {
	wk.clock = c
	wk.pairs.SetClock(c.Now)
	wk.clients.SetClock(c.Now)
	wk.trails.SetClock(c.Now)
	wk.completions.SetClock(c.Now)
}

// Close releases the Walker's tables.
func (wk *Walker) Close() {
	wk.pairs.Close()
	wk.clients.Close()
	wk.trails.Close()
	wk.completions.Close()
}

// Serve is the Walker's part of q, a client's A or AAAA query in its zones. In order: a later
// try of a walk the client continues itself is answered from what that walk resolved, or left as
// it is (recall); a first try of a walk (Source) is answered from a completion decided for the
// same client moments before (completed), or, if the walk may run for this client (admit), by
// completing it (complete). It reports whether it answered q (done), with the plugin.Handler
// contract's rcode and error; a query it did not answer goes down the chain as it is.
func (wk *Walker) Serve(ctx context.Context, q *query.Query) (rcode int, err error, done bool) {
	m, tail := wk.recall(ctx, q)
	if m != nil {
		if err := q.W.WriteMsg(m); err != nil {
			return dns.RcodeServerFailure, err, true
		}
		return dns.RcodeSuccess, nil, true
	}
	if tail {
		return 0, nil, false
	}
	walk, ok := wk.Source.Plan(*q)
	if !ok {
		return 0, nil, false
	}
	if rcode, err, ok := wk.completed(ctx, q, walk); ok {
		return rcode, err, true
	}
	if walk, ok = wk.admit(ctx, q, walk); !ok {
		return 0, nil, false
	}
	return wk.complete(ctx, q, walk)
}

// key identifies a client's lookup: the walk the A and the AAAA of one lookup share (qtype 0), or
// a completion remembered for one of them. It holds everything of the query that can change the
// walk's answers or whether they fit; a Walker serves one server block, so the server and view
// are the same for all its keys.
type key struct {
	client netip.Addr
	name   string // lower-cased
	qtype  uint16
	query.Flags
}

// keyOf returns the key of q's walk (qtype 0) or of its own completion (qtype q.Type).
func keyOf(q *query.Query, name string, qtype uint16) key {
	return key{client: q.Client, name: name, qtype: qtype, Flags: q.Flags()}
}

// admit decides whether q, the first try of walk, may be completed for its client; a query it
// refuses goes down the chain untouched.
func (wk *Walker) admit(ctx context.Context, q *query.Query, walk Walk) (Walk, bool) {
	if walk.OneLabel && !walk.Exact {
		// A one-label base is ambiguous unless the client's list is exactly known and every try
		// of its client is seen (see Expand): most queries of a cluster have one (a service in
		// the pod's own namespace), and pass here.
		return walk, false
	}
	// A validating client (DO), or one that asks for the AD bit, gets answers it can check: a
	// synthesized CNAME has no signature, so it would be bogus or unauthenticated. A query with a
	// TSIG signature is the client's own, byte for byte.
	if q.Flags().DO || q.R.AuthenticatedData || q.R.IsTsig() != nil {
		return wk.decline(ctx, walk, "dnssec")
	}
	if walk.Exact {
		if c, ok := wk.clients.Get(q.Client); ok && wk.vetoed(c) {
			return wk.decline(ctx, walk, "vetoed")
		}
	}
	return walk, true
}

// acquire takes a slot of the walks running at once, if one is free.
func (wk *Walker) acquire() bool {
	select {
	case wk.inflight <- struct{}{}:
		return true
	default:
		return false
	}
}

// start decides whether addr may start a walk now, and if so takes a token of its walk budget.
// It returns why not ("full", "crowded" or "budget"), or "".
func (wk *Walker) start(addr netip.Addr) string {
	now := wk.clock.Now()
	if now.UnixNano() < wk.pausedUntil.Load() {
		return "full"
	}
	c, ok := wk.clients.Update(addr, clientTTL, func(c *client, found bool) *client {
		if !found {
			c = &client{}
		}
		return c
	})
	if !ok {
		wk.pause() // no room to remember the client's trails
		return "full"
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Before(c.crowded) {
		// Still as busy: no walk for trailTTL after its last first try.
		c.crowded = now.Add(trailTTL)
		return "crowded"
	}
	if !c.has(wk.Budget, now) {
		return "budget"
	}
	c.charge(wk.Budget, 1, now)
	return ""
}

// decline counts a first try served as without raceguard, and why.
func (wk *Walker) decline(ctx context.Context, walk Walk, reason string) (Walk, bool) {
	declined.WithLabelValues(metrics.WithServer(ctx), reason).Inc()
	return walk, false
}

// pause stops walks from starting for trailTTL.
func (wk *Walker) pause() {
	wk.pausedUntil.Store(wk.clock.Now().Add(trailTTL).UnixNano())
}
