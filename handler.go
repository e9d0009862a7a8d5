package raceguard

import (
	"context"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/family"
	"github.com/raceguard/raceguard/internal/fingerprint"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/searchpath"
	"github.com/raceguard/raceguard/internal/sibling"
	"github.com/raceguard/raceguard/internal/slots"
	"github.com/raceguard/raceguard/plugin/collapse"
)

// pluginName is the directive's name, used for registration, errors, logs and metrics.
const pluginName = module.Name

// RaceGuard is the raceguard plugin.
type RaceGuard struct {
	Next  plugin.Handler
	Zones []string

	// The parsed options.
	search              searchConfig
	siblingPrefetch     bool
	conntrack           correlate.Config
	fingerprintCapacity int // the most lookups the fingerprint table tracks at once

	// The mechanisms, made by build from the options.
	source       searchpath.Source      // nil: no search completion
	walker       *searchpath.Walker     // set with source
	node         *searchpath.NodeSearch // the node's search domains, for search infer
	prefetch     *sibling.Prefetcher    // nil: sibling_prefetch off
	fingerprints *fingerprint.Tracker   // late siblings and retransmissions
	families     *family.Tracker        // which address types each client asks
	traced       bool                   // the trace plugin is in the server block: see next
	unobserve    func()                 // stops the tries of other blocks reaching walker
}

// RaceGuard prefetches the sibling of every miss the block's collapse resolves.
var _ collapse.SiblingPrefetcher = (*RaceGuard)(nil)

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
// AAAA query r and answers it if raceguard has the answer (done). Other queries, and raceguard's
// own (a walk's tries, a prefetch), are left to the chain: the latter reach it again when they go
// where the client's own query would, and are the client's tries, not new lookups.
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
	tok = rg.observe(ctx, w, r, name)
	rcode, err, done = rg.answer(ctx, w, r, name)
	return tok, rcode, err, done
}

// observe records the A or AAAA query r for name (lower-cased) with the mechanisms that watch
// every query: which types its client asks, whether it is a prefetched sibling, and its
// fingerprint, whose token goes back to Answered.
func (rg *RaceGuard) observe(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) fingerprint.Token {
	addr := query.ClientAddrPort(w)
	client := slots.ClientOf(addr.Addr()) // hashed once for both tables
	rg.families.Observe(client, r.Question[0].Qtype)
	if rg.prefetch != nil {
		rg.prefetch.Seen(ctx, name, r)
	}
	_, _, tok := rg.fingerprints.Observe(ctx, client, addr.Port(), r, name)
	return tok
}

// answer answers the A or AAAA query r for name (lower-cased) in the zones, if raceguard has the
// answer: from a remembered walk, from a completion decided for this client moments before, or
// by completing its search walk. done is false when r goes down the chain as it is.
func (rg *RaceGuard) answer(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (rcode int, err error, done bool) {
	if rg.source == nil {
		return 0, nil, false
	}
	m, tail := rg.walker.Recall(ctx, w, r, name)
	if m != nil {
		if err := w.WriteMsg(m); err != nil {
			return dns.RcodeServerFailure, err, true
		}
		return dns.RcodeSuccess, nil, true
	}
	if tail {
		return 0, nil, false
	}
	walk, ok := rg.source.Plan(name, w, r)
	if !ok {
		return 0, nil, false
	}
	if rcode, err, ok := rg.walker.Decided(ctx, w, r, walk); ok {
		return rcode, err, true
	}
	if walk, ok = rg.walker.Admit(ctx, w, r, walk); !ok {
		return 0, nil, false
	}
	rcode, err = rg.walker.Complete(ctx, w, r, walk)
	return rcode, err, true
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

// PrefetchSibling implements collapse.SiblingPrefetcher: collapse calls it for every miss it
// resolves.
func (rg *RaceGuard) PrefetchSibling(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	if rg.prefetch != nil {
		rg.prefetch.PrefetchSibling(ctx, w, r)
	}
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
