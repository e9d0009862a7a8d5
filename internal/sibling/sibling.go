package sibling

import (
	"context"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/dispatch"
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

// prefetched is when a sibling was prefetched, and by which server.
type prefetched struct {
	at     time.Time
	server string
}

// Families is what a Prefetcher needs to know of the address types a client asks
// (family.Tracker).
type Families interface {
	// Asked reports whether client asked qtype (A or AAAA) recently.
	Asked(client netip.Addr, qtype uint16) bool
}

// Prefetcher resolves sibling queries where the client's own would go (package dispatch).
type Prefetcher struct {
	// Dispatch sends the prefetches where the client's own queries would go.
	Dispatch *dispatch.Dispatcher
	// Families, when set, limits prefetches to clients that asked the sibling type recently: a
	// client that asks A alone (glibc AF_INET, Go's resolver, Java on IPv4) never asks AAAA, and
	// prefetching it would double its upstream queries for nothing.
	Families Families

	sem    chan struct{}                 // one token per prefetch in flight
	recent *bounded.Map[key, prefetched] // prefetched siblings not asked yet
	window time.Duration

	mu   sync.Mutex
	stop chan struct{} // closed by Stop; protected by mu
	done chan struct{} // closed when the sweeper ends; protected by mu
}

// New returns a Prefetcher with at most inflight prefetches at once.
func New(d *dispatch.Dispatcher, inflight int) *Prefetcher {
	return &Prefetcher{
		Dispatch: d,
		sem:      make(chan struct{}, inflight),
		recent:   bounded.NewNamed[key, prefetched]("sibling_prefetches", defaultRecent),
		window:   DefaultWindow,
	}
}

// Close releases the Prefetcher's table.
func (p *Prefetcher) Close() { p.recent.Close() }

// Start sweeps the prefetches the window passed unasked, counting them as unused, until Stop.
func (p *Prefetcher) Start() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop != nil {
		return
	}
	p.stop, p.done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		t := time.NewTicker(p.window / 4)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case now := <-t.C:
				p.sweep(now)
			}
		}
	}(p.stop, p.done)
}

// Stop ends what Start started.
func (p *Prefetcher) Stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stop == nil {
		return
	}
	close(p.stop)
	<-p.done
	p.stop, p.done = nil, nil
}

// sweep drops and counts the prefetches older than the window that no client asked for.
func (p *Prefetcher) sweep(now time.Time) {
	var old []key
	p.recent.Range(func(k key, v prefetched) {
		if now.Sub(v.at) >= p.window {
			old = append(old, k)
		}
	})
	for _, k := range old {
		if v, ok := p.recent.Take(k); ok {
			unused.WithLabelValues(v.server, dns.TypeToString[k.qtype]).Inc()
		}
	}
}

// PrefetchSibling resolves the sibling of the A or AAAA query r in the background, where the client's own query for it would go,
// unless it was prefetched within the window or too many prefetches are in flight.
func (p *Prefetcher) PrefetchSibling(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		return
	}
	sib := query.Sibling(r.Question[0].Qtype)
	if sib == 0 {
		return
	}
	server := metrics.WithServer(ctx)
	if p.Families != nil && !p.Families.Asked(query.ClientAddr(w), sib) {
		skipped.WithLabelValues(server, "unasked").Inc()
		return
	}
	do, cd := query.DNSSECBits(r)
	k := key{name: strings.ToLower(r.Question[0].Name), qtype: sib, do: do, cd: cd}
	if _, ok := p.recent.Get(k); ok {
		return
	}
	select {
	case p.sem <- struct{}{}:
	default:
		skipped.WithLabelValues(server, "busy").Inc()
		return
	}
	// Kept a quarter window past the window, so the sweep finds it before it expires.
	if !p.recent.Put(k, prefetched{at: time.Now(), server: server}, p.window+p.window/4) {
		<-p.sem
		return // the table counted its overflow
	}
	prefetches.WithLabelValues(server, dns.TypeToString[sib]).Inc()

	q := r.Copy()
	q.Id = dns.Id()
	q.Question[0].Qtype = sib
	pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	go func() {
		defer func() { cancel(); <-p.sem }()
		p.Dispatch.Query(pctx, "prefetch", w, q)
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
