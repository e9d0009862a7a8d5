package searchpath

import (
	"strings"

	"github.com/miekg/dns"
)

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
	// Rest are the search domains after First, in the client's order. Never modified: a Source
	// hands out its own slice.
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
	// clients can complete (see Expand), and only for an Exact list.
	OneLabel bool
	// Exact is set when the list is the client's own, as the Kubernetes API says the kubelet
	// wrote it (Pods): a try of the client that contradicts it vetoes the client's walks.
	Exact bool
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
