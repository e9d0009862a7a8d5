package searchpath

import (
	"context"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
)

// pair is the walk the A and the AAAA of one lookup share, in flight or decided. res is written
// once, before done is closed, and only read after.
type pair struct {
	started time.Time // when the walk began; it is not shared pairTTL later
	types   types     // the types the walk resolves, set by its leader
	done    chan struct{}
	res     *result
	once    sync.Once
}

func (p *pair) finish(res *result) {
	p.once.Do(func() {
		p.res = res
		close(p.done)
	})
}

// complete answers q, the first try of walk (as admit returned it), with the walk's answer, which
// the A and the AAAA of one lookup share, and reports whether it did (done): a walk the budget or
// the cap did not let run, or run for the other type alone and not completed, leaves q to go down
// the chain as it is.
func (wk *Walker) complete(ctx context.Context, q *query.Query, walk Walk) (int, error, bool) {
	k := keyOf(q, walk.Name, 0)
	ts := bothTypes
	if wk.Families != nil {
		ts = typesFor(q.Type, wk.Families.Asked(q.Client, query.Sibling(q.Type)))
	}
	p, leader := wk.share(k, ts)
	if leader {
		// The budget and the cap are the leader's to meet: the other of the pair, whenever it
		// comes, shares the leader's fate, so the two are never answered differently.
		if !wk.acquire() {
			wk.unwalked(k, walk, p, "busy")
		} else if why := wk.start(q.Client); why != "" {
			<-wk.inflight
			wk.unwalked(k, walk, p, why)
		} else {
			go wk.run(ctx, *q, walk, p, k)
		}
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		return dns.RcodeServerFailure, ctx.Err(), true
	}
	res := p.res
	if !res.untouched && !res.types.has(q.Type) && res.outcome == outcomeAnswered {
		// Walked for the type its client asked alone so far, and completed; the client asks the
		// other type too after all.
		if res, ok := wk.completeSibling(ctx, q, walk, res); ok {
			return wk.write(ctx, q, walk, res, 0)
		}
	}
	if res.untouched || !res.types.has(q.Type) {
		// Not walked, or walked for the one type and not completed: the other type goes down the
		// chain as it is, and its client walks on from the first try's own answers of both.
		reason := res.why
		if !res.untouched {
			reason = "family"
		}
		declined.WithLabelValues(metrics.WithServer(ctx), reason).Inc()
		return 0, nil, false
	}
	return wk.write(ctx, q, walk, res, wk.clock.Since(p.started))
}

// unwalked decides the walk of p not to run, for why: its first try goes down the chain as it
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
func (wk *Walker) unwalked(k key, walk Walk, p *pair, why string) {
	if why != "crowded" {
		wk.keepTrail(k, walk, nil)
	}
	p.finish(&result{untouched: true, why: why})
}

// completeSibling completes q, of the type the walk res did not resolve, at the name res
// completed to, and reports whether it can. Every name before that one was NXDOMAIN for the
// walk's type, so it does not exist for any type (RFC 8020): a client asking both types stops
// there too, with both answers of that name, which this gives it. A reply for q's type at that
// name that is not clean (an error, NXDOMAIN beside the walk's records), or that does not fit,
// leaves q as it is.
func (wk *Walker) completeSibling(ctx context.Context, q *query.Query, walk Walk, res *result) (*result, bool) {
	name := clientCase(res.names[res.k:res.k+1], q.R.Question[0].Name, len(walk.Base))[0]
	a := wk.resolve(ctx, q, name, q.Type)
	if c := a.class(); c != classAnswer && c != classNoData {
		return nil, false
	}
	out := *res
	out.types = typesFor(q.Type, false)
	out.answer[query.PairIndex(q.Type)] = a
	if !fits(&out, q, walk) {
		return nil, false
	}
	return &out, true
}

// write sends q's reply from a decided walk, its TTLs lowered by age, the time since the walk
// began.
func (wk *Walker) write(ctx context.Context, q *query.Query, walk Walk, res *result, age time.Duration) (int, error, bool) {
	a := res.answer[query.PairIndex(q.Type)]
	if a.msg == nil {
		// Not written where it went (an error, or acl dropping it): the server writes the error.
		return a.rcode, a.err, true
	}
	var m *dns.Msg
	if res.outcome == outcomeAnswered {
		m = completed(a.msg, q.R, target(q.R, walk, res.names[res.k]))
		queriesSaved.WithLabelValues(metrics.WithServer(ctx)).Add(float64(res.k))
	} else {
		m = reply.For(a.msg, q.R)
	}
	ageTTLs(m, age)
	if err := q.W.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err, true
	}
	// Written: whatever the reply's rcode, the server must not write another (plugin.ClientWrite).
	return dns.RcodeSuccess, nil, true
}

// share returns the walk for k and whether the caller leads it. A walk is shared only within
// pairTTL of its start, however often it is asked for: its answers are that old at most (and
// aged accordingly), never kept alive by a client asking again and again. When the table is full
// the caller leads a walk of its own, unshared.
func (wk *Walker) share(k key, ts types) (*pair, bool) {
	now := wk.clock.Now()
	var mine *pair
	got, ok := wk.pairs.UpdateAt(k, now, pairTTL, func(old *pair, found bool) *pair {
		if found && now.Sub(old.started) < pairTTL {
			return old
		}
		mine = &pair{started: now, types: ts, done: make(chan struct{})}
		return mine
	})
	if !ok {
		return &pair{started: now, types: ts, done: make(chan struct{})}, true
	}
	return got, got == mine
}
