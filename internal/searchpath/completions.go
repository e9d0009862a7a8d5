package searchpath

import (
	"context"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

// A completed walk is remembered for its client, so that the same lookup again costs one table
// lookup instead of a walk: the names of a walk are cache hits the second time, but still one trip
// down the chain each. The completion is the client's own: it is keyed by the client's address,
// the name and everything of the query that can change the walk (its type, DO and CD bits,
// transport and reply size), because the plugins a walk's tries pass (acl, view, rewrite) decide
// per client and per query. It lives no longer than the shortest TTL the walk met: the records it
// answers with, and the NXDOMAINs of the names before them, which a new service could turn into
// an answer.

// Bounds of the completion cache.
const (
	DefaultCompletions = 20000            // completions remembered
	maxCompletionTTL   = 30 * time.Second // a completion is walked again at least this often
	minCompletionTTL   = time.Second      // a walk that met shorter TTLs is not remembered
)

// completion is a completed walk: the answer of the name it completed to, for the query's type.
type completion struct {
	answer *dns.Msg // the stopping name's reply, shared: copied for each client reply
	target string   // the stopping name, lower-cased
	at     time.Time
}

// completed answers q, the first try of walk, from a completion remembered for the same client and
// query within its TTL, and reports whether it did. It writes nothing otherwise.
func (wk *Walker) completed(ctx context.Context, q *query.Query, walk Walk) (int, error, bool) {
	if wk.completions.Empty() || q.R.AuthenticatedData || q.R.IsTsig() != nil {
		return 0, nil, false
	}
	d, ok := wk.completions.Get(keyOf(q, walk.Name, q.Type))
	if !ok {
		return 0, nil, false
	}
	m := completed(d.answer, q.R, target(q.R, walk, d.target))
	ageTTLs(m, wk.clock.Since(d.at))
	server := metrics.WithServer(ctx)
	decidedCount.WithLabelValues(server).Inc()
	queriesSaved.WithLabelValues(server).Add(float64(walkIndex(walk, d.target)))
	if err := q.W.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err, true
	}
	return dns.RcodeSuccess, nil, true
}

// walkIndex is the position of name in walk, the queries a completion to it saves.
func walkIndex(walk Walk, name string) int {
	for i, d := range walk.Rest {
		if len(name) == len(walk.Base)+len(d) && name[len(walk.Base):] == d {
			return i + 1
		}
	}
	return len(walk.Rest) + 1
}

// remember keeps res, a completed walk, for the client of the walk k, if it has records for each
// type it resolved; futures are the walk's resolutions, whose TTLs bound how long.
func (wk *Walker) remember(k key, walk Walk, res *result, futures []*future) {
	ttl := maxCompletionTTL
	for i := 0; i <= res.k; i++ {
		for t, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			if !res.types.has(qtype) {
				continue
			}
			a := futures[i].p[t]
			if i < res.k {
				ttl = min(ttl, negativeTTL(a.msg))
				continue
			}
			if len(a.msg.Answer) == 0 {
				return // NODATA: the client may walk on; every such lookup is walked
			}
			for _, rr := range a.msg.Answer {
				ttl = min(ttl, time.Duration(rr.Header().Ttl)*time.Second)
			}
		}
	}
	if ttl < minCompletionTTL {
		return
	}
	at := futures[res.k].at
	for t, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if !res.types.has(qtype) {
			continue
		}
		ck := k
		ck.qtype = qtype
		wk.completions.Put(ck, &completion{answer: res.answer[t].msg, target: res.names[res.k], at: at}, ttl-wk.clock.Since(at))
	}
}
