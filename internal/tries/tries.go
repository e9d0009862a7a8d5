// Package tries lets a raceguard that learns its clients' search lists (node_local) see every try
// of them, whichever server block of its listener serves the try.
//
// A node-local raceguard learns a pod's search list from the tries the pod sends after a walk
// passed through: default.svc.cluster.local, svc.cluster.local, ..., corp.test, the name itself.
// CoreDNS sends each query to the server block of its zone, so where another block serves one of
// those domains (a stub domain, NodeLocal DNSCache's cluster.local block), raceguard never sees
// the pod's try there, learns a list without that domain, and completes walks past it: "wiki.eu"
// to the public wiki.eu. where the pod's own walk stops at wiki.eu.corp.test.
//
// So raceguard puts an observer in every server block (dnsserver.AddPluginToAllServerBlocks),
// where raceguard itself would sit in the chain. It reports each A or AAAA query that is no
// raceguard query of its own to the Observers registered for its server's address (the
// listener, as CoreDNS names it: "dns://169.254.20.10:53"), and passes it on untouched. In a block
// that has raceguard itself, the observer leaves the chain: raceguard sees those tries itself.
// With no Observer registered for a listener, an observer costs a map lookup a query.
package tries

import (
	"context"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

// Observer is told of its clients' tries that other server blocks of its listener serve.
type Observer interface {
	// ObserveTry is called with the client's address and the name it asked (lower-cased) for
	// an A or AAAA query.
	ObserveTry(ctx context.Context, client netip.Addr, name string)
}

// SelfObserving is implemented by the handler that observes the tries of its own block: an
// observer right before it leaves the chain.
type SelfObserving interface {
	ObservesTries() bool
}

var (
	mu        sync.Mutex                            // serialises Register and its undo
	observers atomic.Pointer[map[string][]Observer] // by listener; replaced whole, never modified
)

// Listeners returns the names CoreDNS gives the listeners of cfg, as dnsserver.Server.Addr has
// them: transport://host:port for each address it binds.
func Listeners(cfg *dnsserver.Config) []string {
	var out []string
	for _, h := range cfg.ListenHosts {
		addr, err := net.ResolveTCPAddr("tcp", net.JoinHostPort(h, cfg.Port))
		if err != nil {
			continue
		}
		out = append(out, cfg.Transport+"://"+addr.String())
	}
	return out
}

// Register has o told of the tries on listeners, until the returned function is called.
func Register(listeners []string, o Observer) (unregister func()) {
	update(func(m map[string][]Observer) {
		for _, l := range listeners {
			m[l] = append(m[l], o)
		}
	})
	return func() {
		update(func(m map[string][]Observer) {
			for _, l := range listeners {
				m[l] = slices.DeleteFunc(m[l], func(x Observer) bool { return x == o })
				if len(m[l]) == 0 {
					delete(m, l)
				}
			}
		})
	}
}

// update replaces the registry with a copy f changed.
func update(f func(map[string][]Observer)) {
	mu.Lock()
	defer mu.Unlock()
	m := map[string][]Observer{}
	if old := observers.Load(); old != nil {
		for l, os := range *old {
			m[l] = slices.Clone(os)
		}
	}
	f(m)
	observers.Store(&m)
}

// added is the caddy context whose server blocks have observers: once per instance (a reload
// makes a new one).
var added struct {
	sync.Mutex
	ctx any
}

// AddObservers puts an observer in every server block of the caddy instance whose context ctx
// is, once, with add (dnsserver.AddPluginToAllServerBlocks), at the place in the chain of the
// directive whose setup calls it.
func AddObservers(ctx any, add func(plugin.Plugin)) {
	added.Lock()
	defer added.Unlock()
	if added.ctx == ctx {
		return
	}
	added.ctx = ctx
	add(func(next plugin.Handler) plugin.Handler {
		if s, ok := next.(SelfObserving); ok && s.ObservesTries() {
			return next
		}
		return handler{next: next}
	})
}

// handler is the observer of one server block.
type handler struct{ next plugin.Handler }

// Name implements plugin.Handler.
func (handler) Name() string { return "raceguard-tries" }

// ServeDNS reports r to the observers of its listener and passes it on.
func (h handler) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if m := observers.Load(); m != nil && len(*m) > 0 && len(r.Question) == 1 && !query.Own(ctx) {
		if q := r.Question[0]; q.Qclass == dns.ClassINET && (q.Qtype == dns.TypeA || q.Qtype == dns.TypeAAAA) {
			if s, ok := ctx.Value(dnsserver.Key{}).(*dnsserver.Server); ok {
				if os := (*m)[s.Addr]; len(os) > 0 {
					client, name := query.ClientAddr(w), query.Lower(q.Name)
					for _, o := range os {
						o.ObserveTry(ctx, client, name)
					}
				}
			}
		}
	}
	return plugin.NextOrFailure(h.Name(), h.next, ctx, w, r)
}
