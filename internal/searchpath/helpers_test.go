package searchpath

import (
	"context"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

// qOf returns the facts of r from w, as the handler makes them.
func qOf(w dns.ResponseWriter, r *dns.Msg) *query.Query {
	q := query.New(w, r, query.Lower(r.Question[0].Name))
	return &q
}

// named returns the facts of a query for name alone, for a Source's Plan.
func named(name string) query.Query { return query.Query{Name: name} }

// completeWalk completes r from w as the first try of walk, and, where the Walker leaves it, sends
// it down the chain as the handler would: what a client gets for a first try admitted as walk.
func completeWalk(ctx context.Context, wk *Walker, w dns.ResponseWriter, r *dns.Msg, walk Walk) (int, error) {
	rcode, err, done := wk.complete(ctx, qOf(w, r), walk)
	if !done {
		return plugin.NextOrFailure("test", wk.Next, ctx, w, r)
	}
	return rcode, err
}

// serve sends r from w through wk as the handler does, and down the chain where wk leaves it.
func serve(ctx context.Context, wk *Walker, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	rcode, err, done := wk.Serve(ctx, qOf(w, r))
	if !done {
		return plugin.NextOrFailure("test", wk.Next, ctx, w, r)
	}
	return rcode, err
}

// localOnly is a fixed list trusted in its first domain's own hierarchy only, as Infer plans its
// walks, without Infer's check that the namespace exists.
type localOnly []string

// Plan implements Source.
func (l localOnly) Plan(q query.Query) (Walk, bool) {
	walk, ok := Expand(q.Name, l)
	walk.Trusted = walk.Local
	return walk, ok
}
