package lab

import (
	"slices"
	"strconv"
	"strings"
)

// The resolv.conf kubelet writes for each pod DNS setting, in the lab. DefaultResolvConf is
// dnsPolicy ClusterFirst (and ClusterFirstWithHostNet, for a hostNetwork pod) in namespace
// "default".

// WithSearch returns rc with domains after its search list, as a pod's dnsConfig.searches adds
// them to the list of its dnsPolicy.
func (rc ResolvConf) WithSearch(domains ...string) ResolvConf {
	rc.Search = append(slices.Clone(rc.Search), domains...)
	return rc
}

// WithNdots returns rc with ndots:n in place of its ndots option, as a pod's dnsConfig.options
// sets it.
func (rc ResolvConf) WithNdots(n int) ResolvConf {
	opts := slices.DeleteFunc(slices.Clone(rc.Options), func(o string) bool { return strings.HasPrefix(o, "ndots:") })
	rc.Options = append(opts, "ndots:"+strconv.Itoa(n))
	return rc
}

// PolicyNone is the resolv.conf of a pod with dnsPolicy None: its dnsConfig alone, here the
// ClusterIP, searches and options.
func PolicyNone(searches []string, options ...string) ResolvConf {
	return ResolvConf{Nameserver: ClusterIP, Search: slices.Clone(searches), Options: slices.Clone(options)}
}

// PolicyDefault is the resolv.conf of a pod with dnsPolicy Default: the node's own, whose search
// list is the node's domain and which sets no options (ndots:1). The node's nameserver would be
// its own resolver; here it is the ClusterIP, as on a node whose resolv.conf names a node-local
// DNS server, so that the lab's servers see the pod's queries.
func PolicyDefault() ResolvConf {
	return ResolvConf{Nameserver: ClusterIP, Search: []string{NodeDomain}}
}
