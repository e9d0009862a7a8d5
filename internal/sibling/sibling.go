package sibling

import (
	"context"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/query"
)

// Defaults for New.
const (
	DefaultInflight = 256              // prefetches at once
	DefaultWindow   = 10 * time.Second // a name is prefetched at most once per window
	defaultRecent   = 10000            // prefetched names remembered for dedup and hits
	timeout         = 5 * time.Second  // bound on one prefetch
)

type key struct {
	name   string
	qtype  uint16
	do, cd bool
}

// Prefetcher sends sibling queries down Next.
type Prefetcher struct {
	Next plugin.Handler

	sem    chan struct{}               // one token per prefetch in flight
	recent *bounded.Map[key, struct{}] // prefetched siblings not asked yet
	window time.Duration
}

// New returns a Prefetcher with at most inflight prefetches at once.
func New(next plugin.Handler, inflight int) *Prefetcher {
	return &Prefetcher{
		Next:   next,
		sem:    make(chan struct{}, inflight),
		recent: bounded.NewNamed[key, struct{}]("sibling_prefetches", defaultRecent),
		window: DefaultWindow,
	}
}

// Close releases the Prefetcher's table.
func (p *Prefetcher) Close() { p.recent.Close() }

// Sibling returns the other address type, or 0.
func Sibling(qtype uint16) uint16 {
	switch qtype {
	case dns.TypeA:
		return dns.TypeAAAA
	case dns.TypeAAAA:
		return dns.TypeA
	}
	return 0
}

// PrefetchSibling resolves the sibling of the A or AAAA query r in the background, down Next,
// unless it was prefetched within the window or too many prefetches are in flight.
func (p *Prefetcher) PrefetchSibling(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	sib := Sibling(r.Question[0].Qtype)
	if sib == 0 {
		return
	}
	do, cd := query.DNSSECBits(r)
	k := key{name: strings.ToLower(r.Question[0].Name), qtype: sib, do: do, cd: cd}
	server := metrics.WithServer(ctx)
	if _, ok := p.recent.Get(k); ok {
		return
	}
	select {
	case p.sem <- struct{}{}:
	default:
		skipped.WithLabelValues(server).Inc()
		return
	}
	if !p.recent.Put(k, struct{}{}, p.window) {
		<-p.sem
		return // the table counted its overflow
	}
	prefetches.WithLabelValues(server, dns.TypeToString[sib]).Inc()

	q := r.Copy()
	q.Id = dns.Id()
	q.Question[0].Qtype = sib
	pctx, cancel := context.WithTimeout(query.MarkOwn(context.WithoutCancel(ctx)), timeout)
	go func() {
		defer func() { cancel(); <-p.sem }()
		plugin.NextOrFailure(module.Name, p.Next, pctx, nonwriter.New(w), q)
	}()
}

// Seen records a client's A or AAAA query for name (lower-cased): a query for a sibling
// prefetched within the window is a hit. It is cheap while nothing is prefetched.
func (p *Prefetcher) Seen(ctx context.Context, name string, r *dns.Msg) {
	if p.recent.Empty() {
		return
	}
	do, cd := query.DNSSECBits(r)
	k := key{name: name, qtype: r.Question[0].Qtype, do: do, cd: cd}
	if _, ok := p.recent.Take(k); ok {
		hits.WithLabelValues(metrics.WithServer(ctx), dns.TypeToString[k.qtype]).Inc()
	}
}
