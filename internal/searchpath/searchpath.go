package searchpath

import (
	"context"
	"net"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
)

// Defaults for New.
const (
	DefaultPairs       = 10000            // walks in flight or just done, shared by a pair
	DefaultMemory      = 20000            // remembered names of walks clients continue themselves
	DefaultTimeout     = 5 * time.Second  // a whole walk
	pairTTL            = 2 * time.Second  // how long a finished walk waits for the other of its pair
	passTTL            = 30 * time.Second // how long a passed-through walk's tail is left to the client
	maxRememberTTL     = 10 * time.Second // cap on remembering an NXDOMAIN
	minRememberTTL     = 1 * time.Second
	defaultRememberTTL = 5 * time.Second // when an NXDOMAIN has no SOA to say
)

// Walker completes search walks through Next.
type Walker struct {
	Next     plugin.Handler
	Parallel bool          // try the non-local names of a walk at the same time
	Timeout  time.Duration // bound on a whole walk

	pairs  *bounded.Map[pairKey, *shared]
	memory *bounded.Map[memKey, *remembered]
}

// New returns a Walker whose tables hold pairs and memory entries at most.
func New(next plugin.Handler, pairs, memory int) *Walker {
	return &Walker{
		Next:     next,
		Parallel: true,
		Timeout:  DefaultTimeout,
		pairs:    bounded.NewNamed[pairKey, *shared]("search_pairs", pairs),
		memory:   bounded.NewNamed[memKey, *remembered]("search_memory", memory),
	}
}

// Close releases the Walker's tables.
func (wk *Walker) Close() {
	wk.pairs.Close()
	wk.memory.Close()
}

// Recall looks up what an earlier walk of this client left for its A or AAAA query r for name
// (lower-cased). It returns the reply to write when the name's answer is remembered, with the
// client's ID and question and TTLs aged; or tail, when the name is the rest of a walk the client
// continues itself, which must go down the chain as it is and never be completed. Neither: the
// query is new.
func (wk *Walker) Recall(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (m *dns.Msg, tail bool) {
	if wk.memory.Empty() {
		return nil, false
	}
	do, cd := query.DNSSECBits(r)
	e, ok := wk.memory.Get(memKey{client: query.ClientAddr(w), name: name, do: do, cd: cd})
	if !ok {
		return nil, false
	}
	t := query.PairIndex(r.Question[0].Qtype)
	if e.msg[t] == nil {
		return nil, true
	}
	m = reply.For(e.msg[t], r)
	ageTTLs(m, time.Since(e.at))
	rememberedCount.WithLabelValues(metrics.WithServer(ctx)).Inc()
	return m, false
}

// Complete answers the A or AAAA query r, the first try of walk: with the walk's answer, which
// the A and the AAAA of one lookup share. It writes the reply, with the plugin.Handler contract
// for the returned rcode and error.
func (wk *Walker) Complete(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk) (int, error) {
	server := metrics.WithServer(ctx)
	do, cd := query.DNSSECBits(r)
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	key := pairKey{client: query.ClientAddr(w), name: walk.Names[0], do: do, cd: cd, tcp: tcp}

	sh, leader := wk.share(key)
	if leader {
		start := time.Now()
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), wk.Timeout)
		res := wk.walk(wctx, w, r, walk)
		cancel()
		walkDuration.WithLabelValues(server).Observe(time.Since(start).Seconds())
		walkCount.WithLabelValues(server, res.outcome.String()).Inc()
		wk.remember(key, res)
		sh.finish(res)
	} else {
		select {
		case <-sh.done:
		case <-ctx.Done():
			return dns.RcodeServerFailure, ctx.Err()
		}
	}
	return wk.write(ctx, w, r, sh.res, time.Since(sh.started))
}

// write sends r's reply from a finished walk, its TTLs lowered by age, the time since the walk
// began.
func (wk *Walker) write(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, res *result, age time.Duration) (int, error) {
	t := query.PairIndex(r.Question[0].Qtype)
	a := res.answer[t]
	if a.msg == nil {
		// Not written down the chain (an error, or acl dropping it): the server writes the error.
		return a.rcode, a.err
	}
	m := reply.For(a.msg, r)
	ageTTLs(m, age)
	if res.outcome == outcomeAnswered && len(m.Answer) > 0 {
		ttl := m.Answer[0].Header().Ttl
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		cname := &dns.CNAME{
			Hdr:    dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
			Target: res.names[res.k],
		}
		m.Answer = append([]dns.RR{cname}, m.Answer...)
	}
	if res.outcome == outcomeAnswered {
		queriesSaved.WithLabelValues(metrics.WithServer(ctx)).Add(float64(res.k))
	}
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	// Written: whatever the reply's rcode, the server must not write another (plugin.ClientWrite).
	return dns.RcodeSuccess, nil
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
