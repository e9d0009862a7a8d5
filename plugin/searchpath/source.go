package searchpath

import (
	"strings"

	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// A Source returns the search list a client used for a query: its domains, fully qualified and
// lower-cased, in the client's order. The list must not include the name itself, which every
// walk tries last. A nil list means the query is not one the source can complete.
type Source interface {
	List(state request.Request) []string
}

// Walk is one query's search walk: the names the client tries, in order.
type Walk struct {
	Names []string // lower-cased and fully qualified; Names[0] is the query name
	// Local is how many leading names climb the first search domain's own hierarchy
	// (<ns>.svc.cluster.local, svc.cluster.local, cluster.local): the plugins of this server
	// answer those quickly, so they are tried in order before the rest is tried at once.
	Local int
}

// Expand returns the walk of qname (lower-cased, fully qualified) through list, if qname is a
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

// List implements Source.
func (f Fixed) List(request.Request) []string { return f }

// Func adapts another plugin's per-client search list (autopath's AutoPath, e.g. the kubernetes
// plugin's) to a Source. Such a list ends with "" for the name itself, which is dropped here.
type Func func(request.Request) []string

// List implements Source.
func (f Func) List(state request.Request) []string {
	l := f(state)
	if n := len(l); n > 0 && l[n-1] == "" {
		l = l[:n-1]
	}
	return l
}

// Infer reads a pod's namespace from the query name itself: a query for
// <base>.<namespace>.svc.<cluster domain> is the first try of a pod in <namespace>, whose
// ClusterFirst search list is <namespace>.svc.<cluster domain>, svc.<cluster domain>,
// <cluster domain>, and then the node's own search domains. It needs no pod watch, so it works
// behind SNAT and NodeLocal DNSCache and for hostNetwork pods.
type Infer struct {
	ClusterDomains []string // fully qualified, lower-cased
	Node           *NodeSearch
}

// List implements Source.
func (in Infer) List(state request.Request) []string {
	qname := state.Name()
	for _, cd := range in.ClusterDomains {
		// qname = <base>.<ns>.svc.<cd>; find the <ns> label just before "svc.<cd>".
		if len(qname) <= len(cd)+5 || !strings.HasSuffix(qname, cd) || qname[len(qname)-len(cd)-5:len(qname)-len(cd)] != ".svc." {
			continue
		}
		rest := qname[:len(qname)-len(cd)-5] // <base>.<ns>
		dot := strings.LastIndexByte(rest, '.')
		if dot <= 0 {
			return nil // no base: a namespace itself, not a search expansion
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
