package searchpath

import (
	"net/netip"
	"strings"
	"sync/atomic"

	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/resolvconf"
)

// A Source knows the search list a client used for a query, and so whether the query is the
// first try of a search walk. Plan runs for every A and AAAA query in the zones, so it must not
// allocate; q is a copy (an interface method's pointer argument would escape, and move every
// query's facts to the heap).
type Source interface {
	// Plan returns the walk the query q is the first try of, if it is one.
	Plan(q query.Query) (Walk, bool)
}

// Fixed is one search list for every client, as stock autopath reads from a resolv.conf. The
// operator vouches for it: it is trusted whole.
type Fixed []string

// Plan implements Source.
func (f Fixed) Plan(q query.Query) (Walk, bool) {
	return Expand(q.Name, f)
}

// Func adapts another plugin's per-client search list (autopath's AutoPath, e.g. the kubernetes
// plugin's) to a Source. Such a list ends with "" for the name itself, which is dropped here. The
// kubernetes plugin knows the pod's namespace, not the rest of its list (it appends its own
// resolv.conf's domains), so only the namespace's own hierarchy is trusted.
type Func func(request.Request) []string

// Plan implements Source. A name of fewer than three labels cannot be below a search domain of
// a namespace, so the other plugin is not asked.
func (f Func) Plan(q query.Query) (Walk, bool) {
	if strings.Count(q.Name, ".") < 3 {
		return Walk{}, false
	}
	l := f(request.Request{W: q.W, Req: q.R})
	if n := len(l); n > 0 && l[n-1] == "" {
		l = l[:n-1]
	}
	walk, ok := Expand(q.Name, l)
	if ok {
		walk.Trusted = walk.Local
	}
	return walk, ok
}

// Infer reads a pod's namespace from the query name itself: a query for
// <base>.<namespace>.svc.<cluster domain> is the first try of a pod in <namespace>, whose
// ClusterFirst search list is <namespace>.svc.<cluster domain>, svc.<cluster domain>,
// <cluster domain>, and then the node's own search domains. It needs no pod watch, so it works
// behind SNAT and for hostNetwork pods.
//
// Only the namespace's own hierarchy (the three cluster domains) is trusted: a pod with a custom
// dnsConfig may lack the node's domains or add its own, so a completion beyond them needs the
// client's own list, which a Walker that sees every try learns. The node domains are still
// tried, so that a client that walks on finds their answers ready.
//
// The same bytes can also be a later try of a longer name (www.example.com.cnn tries
// www.example.com.cnn.svc.cluster.local second), which a server that did not see the first try
// cannot tell apart; completing it would answer with the wrong name. An inferred walk therefore
// completes only if <namespace>.svc.<cluster domain> exists (Walk.Verify: the kubernetes plugin
// answers a namespace's name with NODATA, a name that is no namespace with NXDOMAIN).
type Infer struct {
	ClusterDomains []string            // fully qualified, lower-cased
	Node           *resolvconf.Watcher // the node's own search domains

	rests atomic.Pointer[inferRests]
}

// inferRests are the search domains after the namespace domain, per cluster domain, for one
// version of the node's domains.
type inferRests struct {
	node  *[]string // the node domains they were built from
	rests [][]string
}

// Plan implements Source. Most queries' names are refused at the suffix or at their one-label
// base; only a walk it plans has every byte of its name looked at, for an escape.
func (in *Infer) Plan(q query.Query) (Walk, bool) {
	name := q.Name
	for i, cd := range in.ClusterDomains {
		// name = <base>.<ns>.svc.<cd>; find the <ns> label just before "svc.<cd>".
		if len(name) <= len(cd)+5 || !strings.HasSuffix(name, cd) || name[len(name)-len(cd)-5:len(name)-len(cd)] != ".svc." {
			continue
		}
		rest := name[:len(name)-len(cd)-5] // <base>.<ns>
		dot := strings.LastIndexByte(rest, '.')
		if dot <= 0 {
			return Walk{}, false // a namespace itself: no base
		}
		// A one-label base is never completed without the client's exact list (Walker.admit):
		// most queries of a cluster have one (a service in the pod's own namespace), and refusing
		// them first keeps their path short.
		if strings.IndexByte(rest[:dot], '.') < 0 || strings.IndexByte(name, '\\') >= 0 {
			return Walk{}, false
		}
		rests := in.restsFor()
		base := name[:dot+1]
		return Walk{
			Name: name, Base: base, First: name[dot+1:], Rest: rests[i], Local: 3, Trusted: 3, Verify: true,
		}, true
	}
	return Walk{}, false
}

// restsFor returns the lists that follow a namespace domain, building them again only when the
// node's domains changed.
func (in *Infer) restsFor() [][]string {
	var node *[]string
	if in.Node != nil {
		node = in.Node.Current()
	}
	if r := in.rests.Load(); r != nil && r.node == node {
		return r.rests
	}
	r := &inferRests{node: node, rests: make([][]string, len(in.ClusterDomains))}
	for i, cd := range in.ClusterDomains {
		l := []string{"svc." + cd, cd}
		if node != nil {
			for _, d := range *node {
				if !IsUnder(d, in.ClusterDomains) {
					l = append(l, d)
				}
			}
		}
		r.rests[i] = l
	}
	in.rests.Store(r)
	return r.rests
}

// IsUnder reports whether d is one of zones or below one.
func IsUnder(d string, zones []string) bool {
	for _, z := range zones {
		if dns.IsSubDomain(z, d) {
			return true
		}
	}
	return false
}

// Lists knows clients' exact search lists: package podlist, from the pods the Kubernetes API has
// and the node's resolv.conf, as the kubelet writes each pod's. Lookup must not allocate.
type Lists interface {
	// Lookup returns the search list (fully qualified, lower-cased, in the client's order) and
	// ndots of the pod at client, if exactly known: not for an address several pods share
	// (hostNetwork), an unknown one, or while the API cannot be read.
	Lookup(client netip.Addr) (search []string, ndots int, ok bool)
}

// Pods plans each client's walks with its exact list, where Lists knows it, and with Else (the
// namespace's own hierarchy: Infer) where it does not, so that nothing a client sends decides the
// list its lookups are completed with. Its walks are trusted whole, the name itself included
// (Walk.Exact), and are planned only for a base with fewer dots than the client's ndots: glibc and
// musl search those first and try the name itself last; a name with more is tried as is first
// (glibc) or only as is (musl), so the same bytes are no first try of a search.
type Pods struct {
	Lists Lists
	Else  Source // may be nil
	// EveryTry says the server sees every try of its clients (node-local): a walk's later tries
	// are known as such, so one-label bases are planned too (their first try is no one else's).
	EveryTry bool
}

// Plan implements Source.
func (p *Pods) Plan(q query.Query) (Walk, bool) {
	search, ndots, ok := p.Lists.Lookup(q.Client)
	if !ok {
		if p.Else == nil {
			return Walk{}, false
		}
		return p.Else.Plan(q)
	}
	walk, ok := Expand(q.Name, search)
	if !ok || walk.OneLabel && !p.EveryTry || strings.Count(walk.Base, ".")-1 >= ndots {
		return Walk{}, false
	}
	walk.Exact = true
	return walk, true
}
