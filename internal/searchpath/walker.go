package searchpath

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
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
	learnTTL           = 10 * time.Minute // how long a learned search list lives unconfirmed
	maxRememberTTL     = 10 * time.Second // cap on answering an NXDOMAIN from memory
	minRememberTTL     = 1 * time.Second
	defaultRememberTTL = 5 * time.Second // when an NXDOMAIN has no SOA to say
)

// Walker completes search walks. Its exported fields are set before it serves.
type Walker struct {
	// Next is the rest of the chain: the tries of a walk go there only when the query did not
	// come through a CoreDNS server (a chain under test); otherwise each goes where the client's
	// own query for it would go (see dispatch).
	Next plugin.Handler
	// Parallel tries the names beyond the first domain's own hierarchy at once, and hedges the
	// tries before them; without it every try waits for the one before.
	Parallel bool
	// Timeout bounds a whole walk, including the tries it makes for a client that walks on.
	Timeout time.Duration
	// Deadline is how much longer than its first try's own answer a client waits for the walk to
	// decide; then it gets its first try's own answer and walks on, its later tries answered from
	// what the walk resolved meanwhile.
	Deadline time.Duration
	// Learn is set where this server sees every try of its clients (a node-local deployment): it
	// learns each client's search list from the walks it continues itself, and completes beyond
	// the namespace's own hierarchy, and one-label names, only within a learned list. The tries
	// that other server blocks of the listener serve come in through ObserveTry.
	Learn bool
	// Shared, when set, reports whether an address is one several clients share: the node's own,
	// its hostNetwork pods'. Where the Walker learns, it learns no list for such an address and
	// completes its walks as for a client whose list is unknown.
	Shared func(netip.Addr) bool
	// Families, when set, says which address types a client asks: a walk resolves the type its
	// first try asks, and the other only for a client that asked it recently, so that a client
	// asking one type alone is walked as its own resolver walks, at its own upstream cost. When
	// the other type of the lookup comes after all, it is completed at the same name (sibling).
	Families Families
	// Budget bounds the walks each client may start (see Budget); the zero value bounds nothing.
	Budget Budget

	inflight    chan struct{} // one token per walk running; its capacity is the cap
	pausedUntil atomic.Int64  // unix nanoseconds: no walk starts before (see unwalked)
	pairs       *bounded.Map[pairKey, *shared]
	clients     *bounded.Map[netip.Addr, *client]
	trails      *bounded.Map[trailKey, *trail]
	decisions   *bounded.Map[decisionKey, *decision]
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

// New returns a Walker that runs at most maxWalks walks at once, and whose tables hold pairs walks
// and clients clients at most.
func New(next plugin.Handler, maxWalks, pairs, clients int) *Walker {
	return &Walker{
		Next:      next,
		Parallel:  true,
		Timeout:   DefaultTimeout,
		Deadline:  DefaultDeadline,
		inflight:  make(chan struct{}, maxWalks),
		pairs:     bounded.NewNamed[pairKey, *shared]("search_pairs", pairs),
		clients:   bounded.NewNamed[netip.Addr, *client]("search_clients", clients),
		trails:    bounded.NewNamed[trailKey, *trail]("search_trails", DefaultTrails),
		decisions: bounded.NewNamed[decisionKey, *decision]("search_decisions", DefaultDecisions),
	}
}

// Close releases the Walker's tables.
func (wk *Walker) Close() {
	wk.pairs.Close()
	wk.clients.Close()
	wk.trails.Close()
	wk.decisions.Close()
}

// Recall looks up what an earlier walk of this client left for its A or AAAA query r for name
// (lower-cased), and, where the Walker learns, notes the try. It returns the reply to write when
// the name's NXDOMAIN is remembered, with the client's ID and question and TTLs aged; or tail, when
// the name is a later try of a walk the client continues itself, which must go down the chain as
// it is and never be completed. Neither: the query is new.
func (wk *Walker) Recall(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (m *dns.Msg, tail bool) {
	if wk.clients.Empty() {
		return nil, false // the hit path of a server with no walk in memory
	}
	addr := query.ClientAddr(w)
	c, ref, t, domain, ok := wk.trailOf(ctx, addr, name)
	if !ok {
		return nil, false
	}
	wk.learnFrom(ctx, c, addr, ref, t, domain)

	i := slices.Index(t.domains, domain)
	do, cd := query.DNSSECBits(r)
	if i < 0 || t.futures[i] == nil || do != t.do || cd != t.cd {
		return nil, true
	}
	f := t.futures[i]
	select {
	case <-f.done:
	case <-ctx.Done():
		return nil, true
	}
	a := f.p[query.PairIndex(r.Question[0].Qtype)]
	if a.class() != classNX || time.Since(f.at) > negativeTTL(a.msg) {
		return nil, true
	}
	m = reply.For(a.msg, r)
	ageTTLs(m, time.Since(f.at))
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
	now := time.Now()
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
		c.learn(ref.first, domains, ended, time.Now())
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

// shared reports whether addr is an address several clients share (Shared).
func (wk *Walker) shared(addr netip.Addr) bool { return wk.Shared != nil && wk.Shared(addr) }

// Admit decides whether the query r, the first try of walk, may be completed for its client, and
// returns the walk to run: where the Walker learns and knows the client's own search list, the
// walk follows that list and trusts all of it. A query it refuses goes down the chain untouched.
func (wk *Walker) Admit(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk) (Walk, bool) {
	addr := query.ClientAddr(w)
	learns := wk.Learn && !wk.shared(addr)
	if walk.OneLabel && !learns {
		// A one-label base is ambiguous unless every try of its client is seen (see Expand): most
		// queries of a cluster have one (a service in the pod's own namespace), and pass here.
		return walk, false
	}
	// A validating client (DO), or one that asks for the AD bit, gets answers it can check: a
	// synthesized CNAME has no signature, so it would be bogus or unauthenticated. A query with a
	// TSIG signature is the client's own, byte for byte.
	if o := r.IsEdns0(); o != nil && o.Do() || r.AuthenticatedData || r.IsTsig() != nil {
		return wk.decline(ctx, walk, "dnssec")
	}
	if !learns {
		return walk, true
	}
	now := time.Now()
	c, ok := wk.clients.Get(addr)
	if !ok {
		// Nothing learned of this client yet: its walks are those of a client whose list is
		// unknown.
		return walk, !walk.OneLabel
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.expire(now.Add(-learnTTL))
	switch l := c.list(walk.First); {
	case l != nil:
		walk.Rest, walk.Verify = l.domains, false // l.domains is never modified, only replaced
		walk.Trusted = len(l.domains) + 1
		if l.ended {
			walk.Trusted++
		}
		walk.Local = local(walk.First, walk.Rest)
	case c.knowsOther(walk.First):
		// This client's tries are under another namespace domain: this name is no first try of it
		// (a name asked as is), or a new pod took the address; either way, as asked.
		return wk.decline(ctx, walk, "other_namespace")
	case walk.OneLabel:
		return wk.decline(ctx, walk, "one_label")
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
	now := time.Now()
	if now.UnixNano() < wk.pausedUntil.Load() {
		return "full"
	}
	c, ok := wk.clients.Update(addr, learnTTL, func(c *client, found bool) *client {
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

// Complete answers the A or AAAA query r, the first try of walk (as Admit returned it), with the
// walk's answer, which the A and the AAAA of one lookup share. It writes the reply, with the
// plugin.Handler contract for the returned rcode and error.
func (wk *Walker) Complete(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk) (int, error) {
	do, cd := query.DNSSECBits(r)
	state := request.Request{W: w, Req: r}
	key := pairKey{client: query.ClientAddr(w), name: walk.Name, do: do, cd: cd, tcp: state.Proto() == "tcp", size: uint16(state.Size())}

	qtype := r.Question[0].Qtype
	ts := bothTypes
	if wk.Families != nil {
		ts = typesFor(qtype, wk.Families.Asked(key.client, sibling(qtype)))
	}
	sh, leader := wk.share(key, ts)
	if leader {
		// The budget and the cap are the leader's to meet: the other of the pair, whenever it
		// comes, shares the leader's fate, so the two are never answered differently.
		if !wk.acquire() {
			wk.unwalked(key, walk, sh, "busy")
		} else if why := wk.start(key.client); why != "" {
			<-wk.inflight
			wk.unwalked(key, walk, sh, why)
		} else {
			go wk.run(ctx, w, r, walk, sh, key)
		}
	}
	select {
	case <-sh.done:
	case <-ctx.Done():
		return dns.RcodeServerFailure, ctx.Err()
	}
	if !sh.res.untouched && !sh.res.types.has(qtype) && sh.res.outcome == outcomeAnswered {
		// Walked for the type its client asked alone so far, and completed; the client asks the
		// other type too after all.
		if res, ok := wk.completeSibling(ctx, w, r, walk, sh.res); ok {
			return wk.write(ctx, w, r, walk, res, 0)
		}
	}
	if sh.res.untouched || !sh.res.types.has(qtype) {
		// Not walked, or walked for the one type and not completed: the other type goes down the
		// chain as it is, and its client walks on from the first try's own answers of both.
		reason := sh.res.why
		if !sh.res.untouched {
			reason = "family"
		}
		declined.WithLabelValues(metrics.WithServer(ctx), reason).Inc()
		return plugin.NextOrFailure(module.Name, wk.Next, ctx, w, r)
	}
	return wk.write(ctx, w, r, walk, sh.res, time.Since(sh.started))
}

// unwalked decides the walk of sh not to run, for why: its first try goes down the chain as it
// is, and the client walks itself. Its later tries are still the tail of this walk, never first
// tries of their own: the walk is kept for the client as a trail with nothing resolved, so that
// they go down the chain as they are too (a second try of "registry.default" from namespace
// default is also the first try of "registry", and must not be completed as one).
//
// Where the tables have no room for a trail, no later try can be told from a first try: walks
// pause for as long as a client's later tries come (trailTTL), and their first tries are counted
// as declined for "full".
//
// A crowded client (see client.add) starts no walk while it stays that busy, so its tries need
// no trail.
func (wk *Walker) unwalked(key pairKey, walk Walk, sh *shared, why string) {
	if why != "crowded" {
		wk.keepTrail(key, walk, nil)
	}
	sh.finish(&result{untouched: true, why: why})
}

// pause stops walks from starting for trailTTL.
func (wk *Walker) pause() {
	wk.pausedUntil.Store(time.Now().Add(trailTTL).UnixNano())
}

// completeSibling completes r, of the type the walk res did not resolve, at the name res completed to,
// and reports whether it can. Every name before that one was NXDOMAIN for the walk's type, so it
// does not exist for any type (RFC 8020): a client asking both types stops there too, with both
// answers of that name, which this gives it. A reply for r's type at that name that is not clean
// (an error, NXDOMAIN beside the walk's records), or that does not fit, leaves r as it is.
func (wk *Walker) completeSibling(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk, res *result) (*result, bool) {
	qtype := r.Question[0].Qtype
	name := clientCase(res.names[res.k:res.k+1], r.Question[0].Name, len(walk.Base))[0]
	a := wk.resolve(ctx, w, r, name, qtype)
	if c := a.class(); c != classAnswer && c != classNoData {
		return nil, false
	}
	out := *res
	out.types = typesFor(qtype, false)
	out.answer[query.PairIndex(qtype)] = a
	if !fits(&out, r, walk, w) {
		return nil, false
	}
	return &out, true
}

// write sends r's reply from a decided walk, its TTLs lowered by age, the time since the walk
// began.
func (wk *Walker) write(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk, res *result, age time.Duration) (int, error) {
	t := query.PairIndex(r.Question[0].Qtype)
	a := res.answer[t]
	if a.msg == nil {
		// Not written where it went (an error, or acl dropping it): the server writes the error.
		return a.rcode, a.err
	}
	var m *dns.Msg
	if res.outcome == outcomeAnswered {
		m = completed(a.msg, r, target(r, walk, res.names[res.k]))
		queriesSaved.WithLabelValues(metrics.WithServer(ctx)).Add(float64(res.k))
	} else {
		m = reply.For(a.msg, r)
	}
	ageTTLs(m, age)
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	// Written: whatever the reply's rcode, the server must not write another (plugin.ClientWrite).
	return dns.RcodeSuccess, nil
}

// pairKey identifies one lookup's walk: everything that can change its answers or whether they
// fit. A Walker serves one server block, so the server and view are the same for all its keys.
type pairKey struct {
	client      netip.Addr
	name        string
	do, cd, tcp bool
	size        uint16 // the client's reply size: a completion must fit it
}

// shared is a walk in flight or decided. res is written once, before done is closed, and only
// read after.
type shared struct {
	started time.Time // when the walk began; it is not shared pairTTL later
	types   types     // the types the walk resolves, set by its leader
	done    chan struct{}
	res     *result
	once    sync.Once
}

func (s *shared) finish(res *result) {
	s.once.Do(func() {
		s.res = res
		close(s.done)
	})
}

// share returns the walk for key and whether the caller leads it. A walk is shared only within
// pairTTL of its start, however often it is asked for: its answers are that old at most (and
// aged accordingly), never kept alive by a client asking again and again. When the table is full
// the caller leads a walk of its own, unshared.
func (wk *Walker) share(key pairKey, ts types) (*shared, bool) {
	now := time.Now()
	var mine *shared
	got, ok := wk.pairs.UpdateAt(key, now, pairTTL, func(old *shared, found bool) *shared {
		if found && now.Sub(old.started) < pairTTL {
			return old
		}
		mine = &shared{started: now, types: ts, done: make(chan struct{})}
		return mine
	})
	if !ok {
		return &shared{started: now, types: ts, done: make(chan struct{})}, true
	}
	return got, got == mine
}

// ageTTLs lowers every TTL of m by age, as a cache does, never below zero.
func ageTTLs(m *dns.Msg, age time.Duration) {
	d := uint32(age / time.Second)
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(h.Ttl, d)
			}
		}
	}
}

// negativeTTL is how long an NXDOMAIN may be answered from memory: its SOA's TTL and minimum
// (RFC 2308), between minRememberTTL and maxRememberTTL.
func negativeTTL(m *dns.Msg) time.Duration {
	ttl := defaultRememberTTL
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			break
		}
	}
	return max(minRememberTTL, min(ttl, maxRememberTTL))
}
