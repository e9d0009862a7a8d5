/*
Package searchpath completes a client's search list on the server, so a Kubernetes pod's lookup of
example.org costs one A+AAAA pair instead of one pair per search domain.

When a query is the first try of a search walk (see Expand and the Sources), the Walker tries the
remaining names itself, through the rest of the plugin chain, and answers the first try with a
CNAME to the name the client would have stopped at. Every try passes acl, cache and the rest like
a client's own query would.

# The stopping rule

What a client does with each try is fixed by its C library (glibc's res_query.c, musl's
lookup_name.c), for the pair and for A or AAAA alone:

  - NXDOMAIN for both A and AAAA: glibc and musl both go on to the next name.
  - NOERROR with records: glibc stops (it accepts the pair if either answer has records, and a
    single query if it has); musl stops.
  - NOERROR without records (NODATA): glibc goes on; musl stops and reports no data.
  - SERVFAIL or any other error: glibc goes on or stops depending on which of the pair failed;
    musl stops with EAI_AGAIN or EAI_FAIL.

The Walker tries names while both types are NXDOMAIN. At the first name where neither is, if both
are clean NOERROR answers, it completes: each type's reply is a CNAME from the asked name to that
name plus its records when it has records, and a plain NODATA when it has none. A client with a
NODATA reply behaves as at the real name (musl stops, glibc goes on and walks the rest itself);
a client with records stops with exactly those. Anything else (an error, or one type NXDOMAIN and
the other not) is passed through: the client gets the first name's own answer and walks itself,
which is what it would have done without raceguard. Every decision is made once for the pair, so
the A and the AAAA of one lookup always name the same candidate.

If every name is NXDOMAIN the walk is exhausted: the client gets the first name's NXDOMAIN and will
walk the rest itself, so the NXDOMAINs already found are remembered for that client, for no longer
than their SOA allows, and answered without another trip down the chain. After a passed-through
walk, the client's later tries are remembered too, so they are never completed as a walk of their
own: they are the tail of this one.

# Sharing

The A and AAAA of one lookup arrive together from one socket. The first to arrive walks both types;
the second waits for it and takes its own type's answer, so a lookup costs one walk. The walk runs
detached from either client's context, and each waiter is bounded by its own.
*/
package searchpath

import (
	"context"
	"net"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/plugin/bounded"
	"github.com/raceguard/raceguard/plugin/query"
	"github.com/raceguard/raceguard/plugin/reply"
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

// Remembered answers an A or AAAA query for name (lower-cased) from what an earlier walk left for
// this client. handled is false when the query is not remembered; pass is true when the name is
// the tail of a walk the client continues itself: the caller must send it down the chain as it
// is, never complete it.
func (wk *Walker) Remembered(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (rcode int, err error, handled, pass bool) {
	if wk.memory.Empty() {
		return 0, nil, false, false
	}
	do, cd := query.DNSSECBits(r)
	e, ok := wk.memory.Get(memKey{client: query.ClientAddr(w), name: name, do: do, cd: cd})
	if !ok {
		return 0, nil, false, false
	}
	t := query.PairIndex(r.Question[0].Qtype)
	if e.msg[t] == nil {
		return 0, nil, false, true
	}
	m := reply.For(e.msg[t], r)
	ageTTLs(m, time.Since(e.at))
	rememberedCount.WithLabelValues(metrics.WithServer(ctx)).Inc()
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err, true, false
	}
	return dns.RcodeSuccess, nil, true, false
}

// ServeDNS completes walk, the walk of an A or AAAA query r.
func (wk *Walker) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, walk Walk) (int, error) {
	server := metrics.WithServer(ctx)
	do, cd := query.DNSSECBits(r)
	_, tcp := w.RemoteAddr().(*net.TCPAddr)
	key := pairKey{client: query.ClientAddr(w), name: walk.Names[0], do: do, cd: cd, tcp: tcp}

	sh, leader := wk.join(key)
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
