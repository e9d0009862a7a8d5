package raceguard

import (
	"context"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/family"
	"github.com/raceguard/raceguard/internal/fingerprint"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/searchpath"
	"github.com/raceguard/raceguard/internal/sibling"
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
}

// RaceGuard prefetches the sibling of every miss the block's collapse resolves.
var _ collapse.SiblingPrefetcher = (*RaceGuard)(nil)

// ServeDNS implements the plugin.Handler interface.
//
// Every query of the server passes here, cache hits included, so the path of a query that is not
// completed allocates nothing: the name is lower-cased only if it has upper case, the zones are
// matched by suffix, and the walk memory is skipped while it is empty.
func (rg *RaceGuard) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if !addressQuery(r) || query.Own(ctx) {
		// raceguard's own queries (a walk's tries, a prefetch) reach it again when they go where
		// the client's own query would: they are the client's tries, not new lookups.
		return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
	}
	name := strings.ToLower(r.Question[0].Name)
	if !query.InZones(name, rg.Zones) {
		return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
	}
	rg.families.Observe(query.ClientAddr(w), r.Question[0].Qtype)
	if rg.prefetch != nil {
		rg.prefetch.Seen(ctx, name, r)
	}
	_, _, tok := rg.fingerprints.Observe(ctx, w, r, name)
	rcode, err := rg.serveAddress(ctx, w, r, name)
	rg.fingerprints.Answered(tok)
	return rcode, err
}

// serveAddress answers an A or AAAA query for name (lower-cased) in the zones: from a remembered
// walk, by completing its search walk, or down the chain.
func (rg *RaceGuard) serveAddress(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (int, error) {
	if rg.source == nil {
		return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
	}
	m, tail := rg.walker.Recall(ctx, w, r, name)
	if m != nil {
		if err := w.WriteMsg(m); err != nil {
			return dns.RcodeServerFailure, err
		}
		return dns.RcodeSuccess, nil
	}
	if !tail {
		if walk, ok := rg.source.Plan(name, request.Request{W: w, Req: r}); ok {
			if rcode, err, ok := rg.walker.Decided(ctx, w, r, walk); ok {
				return rcode, err
			}
			if walk, ok = rg.walker.Admit(ctx, w, r, walk); ok {
				return rg.walker.Complete(ctx, w, r, walk)
			}
		}
	}
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
