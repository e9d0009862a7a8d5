// Package dispatch sends the queries raceguard makes on a client's behalf (a search walk's tries,
// a prefetched sibling) where the client's own query for the same name and type would go, and
// counts them, so that what clients sent stays visible.
//
// Under a CoreDNS server that is the server itself: its zone and view dispatch picks the server
// block, and the query passes that block's whole chain (acl, rewrite, cache, forward, and the
// block's raceguard, which lets raceguard's own queries through untouched). A name no block serves
// is refused there, as the client's own query would be. So the plugins that observe queries
// (prometheus, log, dnstap) see raceguard's own too: keeping them out would mean copying CoreDNS's
// zone and view dispatch. Instead every own query is counted in
// coredns_raceguard_own_requests_total with the server, zone and type labels the prometheus
// plugin gives it in coredns_dns_requests_total, so that the difference of the two is what
// clients sent.
package dispatch

import (
	"context"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/recovery"
)

// Dispatcher sends one server block's own queries.
type Dispatcher struct {
	// Next is the chain below raceguard, where a query goes that did not come through a CoreDNS
	// server (a chain under test).
	Next plugin.Handler
	// Zones, when set, returns the zones the prometheus plugin of the block labels requests with
	// (metrics.Metrics.ZoneNames), for the zone label of own_requests_total.
	Zones func() []string
}

// Query sends q, made on behalf of the client at w, where the client's own query for it would go,
// and returns what was written (nil when nothing was) with the rcode and error of the
// plugin.Handler contract.
//
// ctx is marked as raceguard's own (query.MarkOwn), and its view is cleared, so that metrics of
// the block that serves q are not labelled with the view of the block that asked.
//
// Query runs in goroutines raceguard starts, where dnsserver's recover does not reach (and the
// server itself does not recover in debug mode): a panic below is recovered (package recovery),
// counted under where ("walk", "prefetch"), and returned as SERVFAIL with the panic as the error.
func (d *Dispatcher) Query(ctx context.Context, where string, w dns.ResponseWriter, q *dns.Msg) (m *dns.Msg, rcode int, err error) {
	ctx = query.MarkOwn(ctx)
	nw := nonwriter.New(w)
	d.count(ctx, q)
	if perr := recovery.Do(ctx, where, func() { rcode, err = d.serve(ctx, nw, q) }); perr != nil {
		return nil, dns.RcodeServerFailure, perr
	}
	return nw.Msg, rcode, err
}

// serve sends q through the server in ctx, or down Next without one, writing to nw.
func (d *Dispatcher) serve(ctx context.Context, nw *nonwriter.Writer, q *dns.Msg) (int, error) {
	s, ok := ctx.Value(dnsserver.Key{}).(*dnsserver.Server)
	if !ok {
		return plugin.NextOrFailure(module.Name, d.Next, ctx, nw, q)
	}
	s.ServeDNS(context.WithValue(ctx, dnsserver.ViewKey{}, ""), nw, q)
	if nw.Msg == nil {
		// The server writes every error itself, so nothing written means a plugin claimed the
		// query without answering it (acl's drop): the client would get no reply.
		return dns.RcodeServerFailure, nil
	}
	return nw.Msg.Rcode, nil
}

// count counts q in own_requests_total, labelled as the prometheus plugin labels requests: the
// server, the zone of its zones that q's name is in ("." for none), the type.
func (d *Dispatcher) count(ctx context.Context, q *dns.Msg) {
	zone := ""
	if d.Zones != nil {
		zone = plugin.Zones(d.Zones()).Matches(q.Question[0].Name)
	}
	if zone == "" {
		zone = "."
	}
	ownRequests.WithLabelValues(metrics.WithServer(ctx), zone, dns.TypeToString[q.Question[0].Qtype]).Inc()
}
