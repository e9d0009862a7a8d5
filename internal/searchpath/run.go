package searchpath

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/recovery"
)

// outcome is how a walk ended.
type outcome int

const (
	outcomeAnswered  outcome = iota // completed: a later name answers for the first
	outcomeAsAsked                  // the first name itself is not NXDOMAIN, or is no first try: answered as asked
	outcomePassed                   // not decided for the client: it gets its first try's own answer and walks
	outcomeExhausted                // every name is NXDOMAIN
)

func (o outcome) String() string {
	return [...]string{"answered", "as_asked", "passed_through", "exhausted"}[o]
}

// Why a walk passed through, as the reason label of search_passed_total.
const (
	passFailed    = "failed"    // a later name failed, or answered differently for A and AAAA
	passDeadline  = "deadline"  // not decided by the deadline
	passUntrusted = "untrusted" // every name it may stop at is NXDOMAIN: the rest the client's list may not have
	passTruncated = "truncated" // the completed reply would not fit the client's size
)

// class is what a client's resolver makes of one reply.
type class int

const (
	classNX     class = iota // NXDOMAIN: every resolver tries the next name
	classAnswer              // NOERROR with records
	classNoData              // NOERROR without records
	classFail                // an error, a truncated reply, or none written
)

// answer is what the chain gave for one name and type.
type answer struct {
	msg   *dns.Msg // nil when nothing was written
	rcode int
	err   error
}

func (a answer) class() class {
	switch {
	case a.err != nil || a.msg == nil || a.msg.Truncated:
		return classFail
	case a.msg.Rcode == dns.RcodeNameError:
		return classNX
	case a.msg.Rcode != dns.RcodeSuccess:
		return classFail
	case len(a.msg.Answer) > 0:
		return classAnswer
	}
	return classNoData
}

// future is the resolution of one name's A and AAAA. p and at are written once, before done is
// closed, and only read after.
type future struct {
	done chan struct{}
	p    [2]answer
	at   time.Time // when it was resolved
}

// result is a decided walk.
type result struct {
	untouched bool   // not walked: the query goes down the chain as it is
	why       string // why not: the reason label of search_declined_total
	types     types  // the types resolved
	outcome   outcome
	names     []string
	k         int       // the name that answers, for outcomeAnswered; where the walk stopped otherwise
	answer    [2]answer // A and AAAA: the k-th name's when answered, the first name's otherwise
}

// run resolves the names of walk for the query q, decides, and reports the decision to p. It runs detached from the query's context, bounded by the Walker's Timeout. When
// the client will walk on, the walk's names are kept for it (see trail) and every one not tried
// yet is tried at once, so that the client's own tries find their answers ready.
//
// A panic in the walk (its tries recover their own, in dispatch.Query) is recovered: the query
// and the other of its pair go down the chain as they are, and the client walks itself.
func (wk *Walker) run(ctx context.Context, q query.Query, walk Walk, p *pair, k key) {
	if err := recovery.Do(ctx, "walk", func() { wk.walk(ctx, &q, walk, p, k) }); err != nil {
		p.finish(&result{untouched: true, why: "panic"})
	}
}

// walk is run's work.
func (wk *Walker) walk(ctx context.Context, q *query.Query, walk Walk, p *pair, k key) {
	server := metrics.WithServer(ctx)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wk.Timeout)
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		cancel()
		<-wk.inflight // the walk's slot, taken by Complete
	}()

	names := walk.Names()
	qnames := clientCase(names, q.R.Question[0].Name, len(walk.Base))
	futures := make([]*future, len(names))
	begin := func(i int) {
		if futures[i] != nil {
			return
		}
		f := &future{done: make(chan struct{})}
		futures[i] = f
		wg.Go(func() {
			f.p = wk.resolveTypes(ctx, q, qnames[i], p.types)
			f.at = wk.clock.Now()
			close(f.done)
		})
	}

	res, reason := wk.decide(ctx, q, walk, p.types, names, futures, begin)
	if res.outcome == outcomeAnswered && !fits(res, q, walk) {
		res = &result{outcome: outcomePassed, types: p.types, names: names, k: res.k, answer: futures[0].p}
		reason = passTruncated
	}
	walkCount.WithLabelValues(server, res.outcome.String()).Inc()
	if res.outcome == outcomeAnswered {
		wk.remember(k, walk, res, futures)
	}
	if res.outcome == outcomePassed {
		passed.WithLabelValues(server, reason).Inc()
	}
	if res.outcome == outcomePassed || res.outcome == outcomeExhausted {
		wk.charge(k.client, fruitless)
	}
	if continues(res) {
		if wk.Parallel && res.outcome != outcomeAnswered {
			// The client walks on for sure: its tries find their answers ready. After a completion
			// with a NODATA it usually stops (glibc and musl take the pair if either type has
			// records), so nothing more is asked for it.
			for i := range futures {
				begin(i)
			}
		}
		wk.keepTrail(k, walk, futures)
	}
	p.finish(res)
	walkDuration.WithLabelValues(server).Observe(wk.clock.Since(p.started).Seconds())
}

// decide tries the names of walk in order, as a pair, and decides, as package searchpath's
// documentation says. begin starts the resolution of a name; futures hold them.
func (wk *Walker) decide(ctx context.Context, q *query.Query, walk Walk, ts types, names []string, futures []*future, begin func(int)) (*result, string) {
	n := len(names)
	res := &result{names: names, types: ts}
	asked := func(p [2]answer) (*result, string) {
		res.outcome, res.k, res.answer = outcomeAsAsked, 0, p
		return res, ""
	}
	pass := func(k int, why string) (*result, string) {
		res.outcome, res.k, res.answer = outcomePassed, k, futures[0].p
		return res, why
	}

	// An inferred namespace is checked beside the first name, at no extra latency.
	var verify chan answer
	if walk.Verify {
		verify = make(chan answer, 1)
		vq := q.R.Question[0].Name[len(walk.Base):] // the namespace domain, as the client wrote it
		go func() { verify <- wk.resolve(ctx, q, vq, dns.TypeA) }()
	}
	deadline := wk.clock.NewTimer(wk.Deadline)
	defer deadline.Stop()
	late := false
	next := 1 // the next name a hedge would start
	hedgeTimer := wk.clock.NewTimer(hedge)
	defer hedgeTimer.Stop()

	for i := range n {
		if i > 0 && i >= walk.Trusted {
			// Every name the walk may stop at is NXDOMAIN: whatever the rest answers, the
			// client gets its first try's own answer and walks on. It gets it now, not when the
			// rest answers (another replica may get its later tries); what the walk started of
			// the rest goes on, for those tries (see run).
			return pass(i, passUntrusted)
		}
		begin(i)
		if wk.Parallel && i >= walk.Local-1 {
			for j := i + 1; j < n; j++ {
				begin(j)
			}
		}
		next = max(next, i+1)
		hedgeTimer.Reset(hedge)
	wait:
		for {
			var hedgeC <-chan time.Time
			if wk.Parallel && next < n {
				hedgeC = hedgeTimer.C()
			}
			select {
			case <-futures[i].done:
				break wait
			case <-hedgeC:
				begin(next)
				next++
				hedgeTimer.Reset(hedge)
			case <-deadline.C():
				late = true
				if i > 0 {
					return pass(i, passDeadline)
				}
			}
		}
		got := futures[i].p
		a, b := ts.classes(got)
		if i == 0 && verify != nil && a == classNX && b == classNX {
			if v := <-verify; v.class() == classNX || v.class() == classFail {
				// No such namespace: not a first try, but maybe another walk's later one.
				return asked(got)
			}
		}
		switch {
		case i == 0 && (a != classNX || b != classNX):
			return asked(got)
		case i == 0 && late:
			return pass(0, passDeadline)
		case a == classNX && b == classNX:
			continue
		case (a == classAnswer || a == classNoData) && (b == classAnswer || b == classNoData):
			res.outcome, res.k, res.answer = outcomeAnswered, i, got
			return res, ""
		default:
			return pass(i, passFailed)
		}
	}
	res.outcome, res.k, res.answer = outcomeExhausted, n-1, futures[0].p
	return res, ""
}

// continues reports whether the client of a decided walk will send later tries of it: it got its
// first try's own NXDOMAIN, or a completion without records for a type (glibc walks on after
// NODATA, for a single family and for a pair where neither type has records).
func continues(res *result) bool {
	switch res.outcome {
	case outcomeExhausted, outcomePassed:
		return true
	case outcomeAnswered:
		a, b := res.types.classes(res.answer)
		return a == classNoData || b == classNoData
	}
	return false
}

// fruitless is what a walk that completes nothing costs its client's budget beyond its own token:
// such walks are a flood of random names' signature (every name NXDOMAIN), and cost upstream
// queries the client may never have sent. A client whose walks complete keeps most of its budget;
// one that floods random names is down to a fifth of the rate.
const fruitless = 4

// charge takes n tokens of client's walk budget: a walk costs one, once for the A and AAAA of a
// lookup, and one that completed nothing fruitless more.
func (wk *Walker) charge(client netip.Addr, n float64) {
	if wk.Budget.Rate == 0 {
		return
	}
	if c, ok := wk.clients.Get(client); ok {
		c.mu.Lock()
		c.charge(wk.Budget, n, wk.clock.Now())
		c.mu.Unlock()
	}
}

// keepTrail keeps the walk for its client, who will continue it itself; futures are its
// resolutions, nil for a walk that did not run, whose later tries all go down the chain. Where a
// table has no room for it, walks pause (see unwalked).
func (wk *Walker) keepTrail(k key, walk Walk, futures []*future) {
	t := &trail{do: k.DO, cd: k.CD}
	if futures != nil {
		t.futures = futures[1:]
	}
	if !wk.trails.Put(trailKey{client: k.client, base: walk.Base}, t, trailTTL) {
		wk.pause() // the table counted its overflow
		return
	}
	c, ok := wk.clients.Update(k.client, clientTTL, func(c *client, found bool) *client {
		if !found {
			c = &client{}
		}
		return c
	})
	if !ok {
		wk.pause()
		return
	}
	now := wk.clock.Now()
	c.mu.Lock()
	c.add(trailRef{base: walk.Base, first: walk.First, rest: walk.Rest, exact: walk.Exact, expires: now.Add(trailTTL)}, now)
	c.mu.Unlock()
}

// resolveTypes resolves name's A and AAAA, or the one of ts, at the same time.
func (wk *Walker) resolveTypes(ctx context.Context, q *query.Query, name string, ts types) [2]answer {
	var p [2]answer
	var wg sync.WaitGroup
	if ts == bothTypes {
		wg.Go(func() { p[1] = wk.resolve(ctx, q, name, dns.TypeAAAA) })
	} else if ts == typeAAAA {
		p[1] = wk.resolve(ctx, q, name, dns.TypeAAAA)
	}
	if ts.has(dns.TypeA) {
		p[0] = wk.resolve(ctx, q, name, dns.TypeA)
	}
	wg.Wait()
	return p
}

// minWalkSize is the least EDNS buffer a walk's queries advertise. A client without EDNS must
// not make the walk fail on a reply that only its own 512 bytes truncate: the walk gets the whole
// answer, and a completion is sent only if it fits the client's size (fits).
const minWalkSize = 1232

// resolve sends a copy of q's query for name and qtype where the client's own query for it would
// go, and captures the reply.
func (wk *Walker) resolve(ctx context.Context, q *query.Query, name string, qtype uint16) answer {
	r := q.R.Copy()
	r.Question[0].Name = name
	r.Question[0].Qtype = qtype
	if o := r.IsEdns0(); o == nil {
		r.SetEdns0(minWalkSize, false)
	} else if o.UDPSize() < minWalkSize {
		o.SetUDPSize(minWalkSize)
	}
	m, rcode, err := wk.Dispatch.Query(ctx, "walk", q.W, r)
	return answer{msg: m, rcode: rcode, err: err}
}
