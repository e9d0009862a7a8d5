package raceguard

import (
	"context"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/fingerprint"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/slots"
)

// ServeDNS implements the plugin.Handler interface.
//
// Every query of the server passes here, cache hits included, and the rest of the chain runs
// below this frame, so the frame is kept small: a query's goroutine starts with a small stack that
// grows by copying, and every byte held here is a byte closer to the next copy. All the work,
// including a walk or a remembered answer, runs in before, whose frame is gone by the time the
// chain below runs; only the fingerprint's small token is held across it. The path of a query
// that is not completed allocates nothing: the name is lower-cased only if it has upper case, the
// zones are matched by suffix, and the per-client tables are skipped while they are empty.
func (rg *RaceGuard) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	tok, rcode, err, done := rg.before(ctx, w, r)
	if !done {
		// The chain below, called directly where plugin.NextOrFailure's wrapper would change
		// nothing (see direct): no allocation, and no frame between this one and the next
		// plugin's.
		if rg.direct(w) {
			rcode, err = rg.Next.ServeDNS(ctx, w, r)
		} else {
			rcode, err = rg.wrapped(ctx, w, r)
		}
	}
	if tok.Tracked() {
		rg.fingerprints.Answered(tok)
	}
	return rcode, err
}

// before does raceguard's part of a query before the rest of the chain: it observes the A or
// AAAA query r and answers it if the search Walker has the answer (done). Other queries, and
// raceguard's own (a walk's tries, a prefetch), are left to the chain: the latter reach it again
// when they go where the client's own query would, and are the client's tries, not new lookups.
//
//go:noinline
func (rg *RaceGuard) before(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (tok fingerprint.Token, rcode int, err error, done bool) {
	if !addressQuery(r) || query.Own(ctx) {
		return tok, 0, nil, false
	}
	name := query.Lower(r.Question[0].Name)
	if !query.InZones(name, rg.Zones) {
		return tok, 0, nil, false
	}
	q := query.New(w, r, name)
	tok = rg.observe(ctx, &q)
	if rg.walker != nil {
		rcode, err, done = rg.walker.Serve(ctx, &q)
	}
	return tok, rcode, err, done
}

// observe records q with the mechanisms that watch every A and AAAA query: which types its client
// asks, whether it is a prefetched sibling, and its fingerprint, whose token goes back to Answered.
func (rg *RaceGuard) observe(ctx context.Context, q *query.Query) fingerprint.Token {
	client := slots.ClientOf(q.From.Addr()) // hashed once for both tables
	rg.families.Observe(client, q.Type)
	if rg.prefetch != nil {
		rg.prefetch.Seen(ctx, q.Name, q.R)
	}
	_, _, tok := rg.fingerprints.Observe(ctx, client, q.From.Port(), q.R, q.Name)
	return tok
}

// direct reports whether r may go down the chain without plugin.NextOrFailure. That wraps the
// writer to record which plugin wrote the reply, for the metrics plugin's Recorder, the one
// writer that reads it; and starts a span when the trace plugin is in the server block. Where
// neither applies, the wrapper changes nothing.
func (rg *RaceGuard) direct(w dns.ResponseWriter) bool {
	_, tracked := w.(plugin.PluginTracker)
	return !tracked && !rg.traced && rg.Next != nil
}

// wrapped passes r down the chain through plugin.NextOrFailure, out of ServeDNS's frame.
//
//go:noinline
func (rg *RaceGuard) wrapped(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
}

// addressQuery reports whether r is a query raceguard acts on: one IN question for A or AAAA, the
// two types getaddrinfo asks. Other types pass on untouched.
func addressQuery(r *dns.Msg) bool {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return false
	}
	q := r.Question[0]
	return q.Qclass == dns.ClassINET && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA)
}

// Name implements the Handler interface.
func (rg *RaceGuard) Name() string { return pluginName }
