package searchpath

import (
	"strings"
	"sync/atomic"

	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// A Source knows the search list a client used for a query, and so whether the query is the
// first try of a search walk. Plan runs for every A and AAAA query in the zones, with name
// lower-cased, so it must not allocate, and is handed the client's writer and query as they are
// rather than a request.Request, which few Sources need and every query would build.
type Source interface {
	// Plan returns the walk the query r for name, from the client at w, is the first try of, if
	// it is one.
	Plan(name string, w dns.ResponseWriter, r *dns.Msg) (Walk, bool)
}

// Walk is one query's search walk: the names the client tries, in order, Base+First, then Base
// with each of Rest, then Base itself. It holds the parts, not the names, so that planning a
// walk allocates nothing; Names builds them when the walk runs.
type Walk struct {
	// Name is the query name, lower-cased: Base+First.
	Name string
	// Base is the name the client looks up, lower-cased, with its trailing dot.
	Base string
	// First is the first search domain: the query name is Base+First.
	First string
	// Rest are the search domains after First, in the client's order. Shared: never modified.
	Rest []string
	// Local is how many leading names climb First's own hierarchy (<ns>.svc.cluster.local,
	// svc.cluster.local, cluster.local): the plugins of this server usually answer those at
	// once, so they are tried in order before the rest is tried at once.
	Local int
	// Trusted is how many leading names the source vouches for: a completion may stop only at
	// names[1:Trusted]; a walk that would stop beyond passes through, and the client walks. A
	// list the operator configured is trusted whole; an inferred one only in First's own
	// hierarchy, which every list that starts with a namespace domain shares.
	Trusted int
	// Verify makes the walk complete only if First itself exists (is not NXDOMAIN): an inferred
	// namespace must be a real one.
	Verify bool
	// OneLabel is set when Base has one label, which only a server that sees every try of its
	// clients can complete (see Expand).
	OneLabel bool
}

// Len returns the number of names of the walk.
func (w Walk) Len() int { return len(w.Rest) + 2 }

// Names returns the names of the walk in the client's order.
func (w Walk) Names() []string {
	names := make([]string, 0, w.Len())
	names = append(names, w.Base+w.First)
	for _, d := range w.Rest {
		names = append(names, w.Base+d)
	}
	return append(names, w.Base)
}

// Expand returns the walk of qname (lower-cased, fully qualified) through list (the search
// domains, fully qualified and lower-cased, in the client's order, without the name itself, which
// every walk tries last), if qname is a search expansion of it: a name below list[0]. The whole
// list is trusted.
//
// A name with an escape in it (a label holding a dot, "c\.default", or a \DDD byte) is not a walk:
// its labels cannot be told apart by their dots, and no resolver search list makes one.
//
// A walk whose base has one label is marked OneLabel. For "redis.cache.svc.cluster.local." the
// same bytes are the first try of a pod in namespace "cache" looking up "redis", and the second
// try of any pod looking up "redis.cache": after a walk that found nothing, such a client goes on
// to redis.cache.cluster.local and never to redis.<node domain>. A server that did not see the
// client's earlier try (another replica behind the ClusterIP) cannot tell them apart.
func Expand(qname string, list []string) (Walk, bool) {
	if len(list) == 0 {
		return Walk{}, false
	}
	first := list[0]
	if len(qname) <= len(first)+1 || !strings.HasSuffix(qname, first) || qname[len(qname)-len(first)-1] != '.' {
		return Walk{}, false
	}
	if strings.IndexByte(qname, '\\') >= 0 {
		return Walk{}, false
	}
	base := qname[:len(qname)-len(first)] // keeps its trailing dot
	return Walk{
		Name: qname, Base: base, First: first, Rest: list[1:], Local: local(first, list[1:]), Trusted: len(list) + 1,
		OneLabel: strings.IndexByte(base[:len(base)-1], '.') < 0,
	}, true
}

// local returns how many leading names of a walk through first and rest climb first's own
// hierarchy: first, then each domain that is a parent of the one before.
func local(first string, rest []string) int {
	n, prev := 1, first
	for n <= len(rest) && dns.IsSubDomain(rest[n-1], prev) {
		prev = rest[n-1]
		n++
	}
	return n
}

// Fixed is one search list for every client, as stock autopath reads from a resolv.conf. The
// operator vouches for it: it is trusted whole.
type Fixed []string

// Plan implements Source.
func (f Fixed) Plan(name string, _ dns.ResponseWriter, _ *dns.Msg) (Walk, bool) {
	return Expand(name, f)
}

// Func adapts another plugin's per-client search list (autopath's AutoPath, e.g. the kubernetes
// plugin's) to a Source. Such a list ends with "" for the name itself, which is dropped here. The
// kubernetes plugin knows the pod's namespace, not the rest of its list (it appends its own
// resolv.conf's domains), so only the namespace's own hierarchy is trusted.
type Func func(request.Request) []string

// Plan implements Source. A name of fewer than three labels cannot be below a search domain of
// a namespace, so the other plugin is not asked.
func (f Func) Plan(name string, w dns.ResponseWriter, r *dns.Msg) (Walk, bool) {
	if strings.Count(name, ".") < 3 {
		return Walk{}, false
	}
	l := f(request.Request{W: w, Req: r})
	if n := len(l); n > 0 && l[n-1] == "" {
		l = l[:n-1]
	}
	walk, ok := Expand(name, l)
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
	ClusterDomains []string // fully qualified, lower-cased
	Node           *NodeSearch
	// OneLabel plans walks of one-label bases too, for a Walker that may complete them (Learn).
	// Without it they are no walks: most queries of a cluster are one (a service in the pod's own
	// namespace), and refusing them first keeps their path short.
	OneLabel bool

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
func (in *Infer) Plan(name string, _ dns.ResponseWriter, _ *dns.Msg) (Walk, bool) {
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
		oneLabel := strings.IndexByte(rest[:dot], '.') < 0
		if oneLabel && !in.OneLabel || strings.IndexByte(name, '\\') >= 0 {
			return Walk{}, false
		}
		rests := in.restsFor()
		base := name[:dot+1]
		return Walk{
			Name: name, Base: base, First: name[dot+1:], Rest: rests[i], Local: 3, Trusted: 3, Verify: true,
			OneLabel: oneLabel,
		}, true
	}
	return Walk{}, false
}

// restsFor returns the lists that follow a namespace domain, building them again only when the
// node's domains changed.
func (in *Infer) restsFor() [][]string {
	var node *[]string
	if in.Node != nil {
		node = in.Node.domains.Load()
	}
	if r := in.rests.Load(); r != nil && r.node == node {
		return r.rests
	}
	r := &inferRests{node: node, rests: make([][]string, len(in.ClusterDomains))}
	for i, cd := range in.ClusterDomains {
		l := []string{"svc." + cd, cd}
		if node != nil {
			for _, d := range *node {
				if !isUnder(d, in.ClusterDomains) {
					l = append(l, d)
				}
			}
		}
		r.rests[i] = l
	}
	in.rests.Store(r)
	return r.rests
}

// isUnder reports whether d is one of zones or below one.
func isUnder(d string, zones []string) bool {
	for _, z := range zones {
		if dns.IsSubDomain(z, d) {
			return true
		}
	}
	return false
}
