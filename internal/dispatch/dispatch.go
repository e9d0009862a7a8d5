// Package dispatch sends the queries raceguard makes on a client's behalf (a search walk's tries,
// a prefetched sibling) where the client's own query for the same name and type would go.
package dispatch

import (
	"context"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/recovery"
)

// Query sends q, made on behalf of the client at w, where the client's own query for it would go,
// and returns what was written (nil when nothing was) with the rcode and error of the plugin.Handler
// contract. Under a CoreDNS server (ctx carries it, as every query's does) that is the server
// itself: its zone and view dispatch picks the server block, and q passes that block's whole chain
// (acl, rewrite, cache, forward, and the block's raceguard, which lets raceguard's own queries
// through untouched). A name no block serves is refused there, as the client's own query would be.
// Without a server (a chain under test) q goes down next.
//
// ctx is marked as raceguard's own (query.MarkOwn), and its view is cleared, so that metrics of
// the block that serves q are not labelled with the view of the block that asked.
//
// Query runs in goroutines raceguard starts, where dnsserver's recover does not reach (and the
// server itself does not recover in debug mode): a panic below is recovered (package recovery),
// counted under where ("walk", "prefetch"), and returned as SERVFAIL with the panic as the error.
func Query(ctx context.Context, where string, next plugin.Handler, w dns.ResponseWriter, q *dns.Msg) (m *dns.Msg, rcode int, err error) {
	ctx = query.MarkOwn(ctx)
	nw := nonwriter.New(w)
	if perr := recovery.Do(ctx, where, func() { rcode, err = serve(ctx, next, nw, q) }); perr != nil {
		return nil, dns.RcodeServerFailure, perr
	}
	return nw.Msg, rcode, err
}

// serve sends q through the server in ctx, or down next without one, writing to nw.
func serve(ctx context.Context, next plugin.Handler, nw *nonwriter.Writer, q *dns.Msg) (int, error) {
	s, ok := ctx.Value(dnsserver.Key{}).(*dnsserver.Server)
	if !ok {
		return plugin.NextOrFailure(module.Name, next, ctx, nw, q)
	}
	s.ServeDNS(context.WithValue(ctx, dnsserver.ViewKey{}, ""), nw, q)
	if nw.Msg == nil {
		// The server writes every error itself, so nothing written means a plugin claimed the
		// query without answering it (acl's drop): the client would get no reply.
		return dns.RcodeServerFailure, nil
	}
	return nw.Msg.Rcode, nil
}
