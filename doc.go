/*
Package raceguard implements the raceguard directive of the raceguard CoreDNS plugin module, which
ends the Kubernetes "5 second DNS lookup".

raceguard sits in the plugin chain just before autopath, so it runs before acl and cache, and
every query it makes on a client's behalf goes down the rest of the chain like any other query.
It carries three mechanisms: server-side search-path completion (internal/searchpath), prefetching
the sibling address type (internal/sibling), and DNS-side fingerprints of lost packets
(internal/fingerprint) correlated with the node's conntrack counters (internal/conntrack,
internal/correlate). The module's other directive, collapse (plugin/collapse), sits just after
cache and collapses identical misses into one resolution; it calls raceguard's PrefetchSibling for
every miss it resolves (raceguard implements collapse.SiblingPrefetcher).

ServeDNS looks at A and AAAA queries in its zones: a name left from an earlier walk of the same
client is answered from memory or passed on untouched (Walker.Recall); the first try of a search
walk (Source.Plan) is completed by the Walker; everything else passes on unchanged. This package
parses the Corefile (setup.go, config.go) and wires the mechanisms; each lives in its own package
under internal/, and the module's directives each have a package: this one at the root, where
CoreDNS's plugin.cfg line for raceguard points, and the others under plugin/.
*/
package raceguard
