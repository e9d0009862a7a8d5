package searchpath

import (
	"context"
	"net/netip"
	"time"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

// A completed walk is remembered for its client, so that the same lookup again costs one table
// lookup instead of a walk: the names of a walk are cache hits the second time, but still one trip
// down the chain each. The decision is the client's own: it is keyed by the client's address, the
// name and everything of the query that can change the walk (its type, DO and CD bits, transport
// and reply size), because the plugins a walk's tries pass (acl, view, rewrite) decide per client
// and per query. It lives no longer than the shortest TTL the walk met: the records it answers
// with, and the NXDOMAINs of the names before them, which a new service could turn into an answer.

// Bounds of the decision cache.
const (
	DefaultDecisions = 20000            // decisions remembered
	maxDecisionTTL   = 30 * time.Second // a decision is walked again at least this often
	minDecisionTTL   = time.Second      // a walk that met shorter TTLs is not remembered
)

// decisionKey identifies one client's query.
type decisionKey struct {
	client      netip.Addr
	name        string // lower-cased
	qtype       uint16
	do, cd, tcp bool
	size        uint16
}

// decision is a completed walk: the answer of the name it completed to, for the query's type.
type decision struct {
	answer *dns.Msg // the stopping name's reply, shared: copied for each client reply
	target string   // the stopping name, lower-cased
	at     time.Time
}

// keyOf returns the decision key of r from w's client for name (lower-cased).
func keyOf(w dns.ResponseWriter, r *dns.Msg, name string) decisionKey {
	do, cd := query.DNSSECBits(r)
	state := request.Request{W: w, Req: r}
	return decisionKey{client: query.ClientAddr(w), name: name, qtype: r.Question[0].Qtype, do: do, cd: cd,
		tcp: state.Proto() == "tcp", size: uint16(state.Size())}
}

// Decided answers the A or AAAA query r, the first try of walk, from a completion decided for the
// same client and query within its TTL, and reports whether it did. It writes nothing otherwise.
func (wk *Walker) Decided(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk) (int, error, bool) {
	if wk.decisions.Empty() || r.AuthenticatedData || r.IsTsig() != nil {
		return 0, nil, false
	}
	d, ok := wk.decisions.Get(keyOf(w, r, walk.Name))
	if !ok {
		return 0, nil, false
	}
	m := completed(d.answer, r, target(r, walk, d.target))
	ageTTLs(m, time.Since(d.at))
	decidedCount.WithLabelValues(metrics.WithServer(ctx)).Inc()
	queriesSaved.WithLabelValues(metrics.WithServer(ctx)).Add(float64(walkIndex(walk, d.target)))
	if err := w.WriteMsg(m); err != nil {
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

// remember keeps res, a completed walk, for the client of key, if it has records for each type it
// resolved; futures are the walk's resolutions, whose TTLs bound how long.
func (wk *Walker) remember(key pairKey, walk Walk, res *result, futures []*future) {
	ttl := maxDecisionTTL
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
	if ttl < minDecisionTTL {
		return
	}
	at := futures[res.k].at
	for t, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		if !res.types.has(qtype) {
			continue
		}
		k := decisionKey{client: key.client, name: walk.Name, qtype: qtype, do: key.do, cd: key.cd, tcp: key.tcp, size: key.size}
		wk.decisions.Put(k, &decision{answer: res.answer[t].msg, target: res.names[res.k], at: at}, ttl-time.Since(at))
	}
}
