/*
Package raceguard implements the raceguard directive of the raceguard CoreDNS plugin module.

raceguard sits in the plugin chain just before autopath, so it runs before acl and cache, and
every query it makes on a client's behalf goes down the rest of the chain like any other query.
It is meant to carry three mechanisms against the Kubernetes "5 second DNS lookup":
server-side search-path completion, prefetching the sibling address type, and DNS-side
fingerprints of lost packets correlated with the node's conntrack counters. The companion
collapse directive (package plugin/collapse) sits just after cache and joins identical misses.

In this version the directive parses its Corefile block and passes every query on unchanged;
the README says which mechanisms are active.
*/
package raceguard

import (
	"context"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
)

// pluginName is the directive's name, used for registration, errors, logs and metrics.
const pluginName = "raceguard"

// RaceGuard is the raceguard plugin.
type RaceGuard struct {
	Next  plugin.Handler
	Zones []string

	search          searchConfig
	siblingPrefetch bool
	conntrack       conntrackConfig
}

// ServeDNS implements the plugin.Handler interface.
func (rg *RaceGuard) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(rg.Name(), rg.Next, ctx, w, r)
}

// Name implements the Handler interface.
func (rg *RaceGuard) Name() string { return pluginName }
