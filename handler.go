/*
Package raceguard implements the raceguard directive of the raceguard CoreDNS plugin module.

raceguard sits in the plugin chain just before autopath, so it runs before acl and cache, and
every query it makes on a client's behalf goes down the rest of the chain like any other query.
It is meant to carry three mechanisms against the Kubernetes "5 second DNS lookup":
server-side search-path completion, prefetching the sibling address type, and DNS-side
fingerprints of lost packets correlated with the node's conntrack counters. The companion
collapse directive (package plugin/collapse) sits just after cache and joins identical misses.

ServeDNS looks at A and AAAA queries in its zones: a name left from an earlier walk of the same
client is answered from memory or passed on untouched; a search expansion (searchpath.Plan over
the configured Source) is completed by the searchpath.Walker; everything else passes on
unchanged. The mechanisms live in their own packages under plugin/; this package parses the
Corefile and wires them.
*/
package raceguard

import (
	"context"
	"strings"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/plugin/fingerprint"
	"github.com/raceguard/raceguard/plugin/option"
	"github.com/raceguard/raceguard/plugin/searchpath"
	"github.com/raceguard/raceguard/plugin/sibling"
)

// pluginName is the directive's name, used for registration, errors, logs and metrics.
const pluginName = "raceguard"

// RaceGuard is the raceguard plugin.
type RaceGuard struct {
	Next  plugin.Handler
	Zones []string

	search          searchConfig
	siblingPrefetch bool
	conntrack       conntrackConfig
	fingerprints    int // the most lookups the fingerprint table tracks at once

	source searchpath.Source      // nil: no search completion
	walker *searchpath.Walker     // set with source
	node   *searchpath.NodeSearch // the node's search domains, for search infer

	prefetch *sibling.Prefetcher  // nil: sibling_prefetch off
	prints   *fingerprint.Tracker // late siblings and retransmissions
}

// ServeDNS implements the plugin.Handler interface.
//
// Every query of the server passes here, cache hits included, so the path of a query that is not
// completed allocates nothing: the name is lower-cased only if it has upper case, the zones are
// matched by suffix, and the walk memory is skipped while it is empty.
func (rg *RaceGuard) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if !addressQuery(r) {
		return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
	}
	name := strings.ToLower(r.Question[0].Name)
	if !option.InZones(name, rg.Zones) {
		return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
	}
	if rg.prefetch != nil {
		rg.prefetch.Seen(ctx, name, r)
	}
	_, _, tok := rg.prints.Observe(ctx, w, r, name)
	rcode, err := rg.serveAddress(ctx, w, r, name)
	rg.prints.Answered(tok)
	return rcode, err
}

// serveAddress answers an A or AAAA query for name (lower-cased) in the zones: from a remembered
// walk, by completing its search walk, or down the chain.
func (rg *RaceGuard) serveAddress(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (int, error) {
	if rg.source == nil {
		return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
	}
	rcode, err, handled, pass := rg.walker.Remembered(ctx, w, r, name)
	if handled {
		return rcode, err
	}
	if !pass {
		if walk, ok := searchpath.Plan(rg.source, name, request.Request{W: w, Req: r}); ok {
			return rg.walker.ServeDNS(ctx, w, r, walk)
		}
	}
	return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
}

// PrefetchSibling implements sibling.Trigger: collapse calls it for every miss it resolves.
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
