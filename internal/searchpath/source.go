package searchpath

import (
	"strings"

	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// A Source knows the search list a client used for a query, and so whether the query is the
// first try of a search walk. Plan runs for every A and AAAA query in the zones, with name
// lower-cased, so it must not allocate for the names it refuses.
type Source interface {
	// Plan returns the walk the query for name is the first try of, if it is one.
	Plan(name string, state request.Request) (Walk, bool)
}

// Walk is one query's search walk: the names the client tries, in order.
type Walk struct {
	Names []string // lower-cased and fully qualified; Names[0] is the query name
	// Local is how many leading names climb the first search domain's own hierarchy
	// (<ns>.svc.cluster.local, svc.cluster.local, cluster.local): the plugins of this server
	// answer those quickly, so they are tried in order before the rest is tried at once.
	Local int
	// Verify, when set, is a name that must exist (not be NXDOMAIN) for the walk to be
	// completed: the inferred namespace's own name.
	Verify string
}

// Expand returns the walk of qname (lower-cased, fully qualified) through list (the search
// domains, fully qualified and lower-cased, in the client's order, without the name itself, which
// every walk tries last), if qname is a
// search expansion of it: a name below list[0] whose base, the part before list[0], has at least
// two labels.
//
// A one-label base is never completed. For "redis.cache.svc.cluster.local." the same bytes are the
// first candidate of a pod in namespace "cache" looking up "redis", and the second candidate of
// any pod looking up "redis.cache", or the as-is try of an absolute name: after a walk that found
// nothing, such a client goes on to redis.cache.cluster.local and never to redis.<node domain>.
// A server that did not see the client's first query (another replica behind the ClusterIP)
// cannot tell these apart, and completing would answer the second kind with a wrong name. A
// one-label base has no other use: the plugins answer it as asked, and the client walks.
func Expand(qname string, list []string) (Walk, bool) {
	if len(list) == 0 {
		return Walk{}, false
	}
	first := list[0]
	if len(qname) <= len(first)+1 || !strings.HasSuffix(qname, first) || qname[len(qname)-len(first)-1] != '.' {
		return Walk{}, false
	}
	base := qname[:len(qname)-len(first)] // keeps its trailing dot
	if strings.IndexByte(base[:len(base)-1], '.') < 0 {
		return Walk{}, false
	}
	names := make([]string, 0, len(list)+1)
	for _, d := range list {
		names = append(names, base+d)
	}
	names = append(names, base)
	local := 1
	for local < len(list) && dns.IsSubDomain(list[local], list[local-1]) {
		local++
	}
	return Walk{Names: names, Local: local}, true
}

// Fixed is one search list for every client, as stock autopath reads from a resolv.conf.
type Fixed []string

// Plan implements Source.
func (f Fixed) Plan(name string, _ request.Request) (Walk, bool) { return Expand(name, f) }

// Func adapts another plugin's per-client search list (autopath's AutoPath, e.g. the kubernetes
// plugin's) to a Source. Such a list ends with "" for the name itself, which is dropped here.
type Func func(request.Request) []string

// Plan implements Source. A name of fewer than three labels cannot be a two-label base below a
// search domain, so the other plugin is not asked.
func (f Func) Plan(name string, state request.Request) (Walk, bool) {
	if strings.Count(name, ".") < 3 {
		return Walk{}, false
	}
	l := f(state)
	if n := len(l); n > 0 && l[n-1] == "" {
		l = l[:n-1]
	}
	return Expand(name, l)
}

// Infer reads a pod's namespace from the query name itself: a query for
// <base>.<namespace>.svc.<cluster domain> is the first try of a pod in <namespace>, whose
// ClusterFirst search list is <namespace>.svc.<cluster domain>, svc.<cluster domain>,
// <cluster domain>, and then the node's own search domains. It needs no pod watch, so it works
// behind SNAT and NodeLocal DNSCache and for hostNetwork pods.
//
// The same bytes can also be a later try of a longer name (www.example.com.cnn tries
// www.example.com.cnn.svc.cluster.local second), which a server that did not see the first try
// cannot tell apart; completing it would answer with the wrong name. Plan therefore makes an
// inferred walk verify that <namespace>.svc.<cluster domain> exists (the kubernetes plugin
// answers a namespace's name with NODATA, a name that is no namespace with NXDOMAIN) before it
// completes anything (Walk.Verify); Expand's one-label rule covers the two-label names.
type Infer struct {
	ClusterDomains []string // fully qualified, lower-cased
	Node           *NodeSearch
}

// Plan implements Source.
func (in Infer) Plan(name string, _ request.Request) (Walk, bool) {
	list := in.list(name)
	w, ok := Expand(name, list)
	if ok {
		w.Verify = list[0]
	}
	return w, ok
}

// list returns the search list of the pod whose first try qname would be, or nil.
func (in Infer) list(qname string) []string {
	for _, cd := range in.ClusterDomains {
		// qname = <base>.<ns>.svc.<cd>; find the <ns> label just before "svc.<cd>".
		if len(qname) <= len(cd)+5 || !strings.HasSuffix(qname, cd) || qname[len(qname)-len(cd)-5:len(qname)-len(cd)] != ".svc." {
			continue
		}
		rest := qname[:len(qname)-len(cd)-5] // <base>.<ns>
		dot := strings.LastIndexByte(rest, '.')
		if dot <= 0 || strings.IndexByte(rest[:dot], '.') < 0 {
			// No base (a namespace itself), or a one-label base, which Expand refuses: say so
			// before building anything, as most queries of a cluster are one-label service names.
			return nil
		}
		svc := "svc." + cd
		list := []string{rest[dot+1:] + "." + svc, svc, cd}
		if in.Node != nil {
			for _, d := range in.Node.Domains() {
				if !isUnder(d, in.ClusterDomains) {
					list = append(list, d)
				}
			}
		}
		return list
	}
	return nil
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
