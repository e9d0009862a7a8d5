/*
Package collapse implements the collapse directive of the raceguard CoreDNS plugin module.

collapse sits in the plugin chain just after cache, so it only sees queries the cache could not
answer, and never sees a query that acl refused. It is meant to join identical queries that are
in flight at the same time into one resolution down the rest of the chain, each waiter getting its
own copy of the answer.

In this version the directive parses its Corefile block and passes every query on unchanged; the
README says which mechanisms are active.
*/
package collapse

import (
	"context"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
)

// pluginName is the directive's name, used for registration, errors and logs. Metrics use the
// module's subsystem, "raceguard".
const pluginName = "collapse"

const (
	defaultMaxKeys    = 10000
	defaultMaxWaiters = 1000
)

// Collapse is the collapse plugin.
type Collapse struct {
	Next  plugin.Handler
	Zones []string

	maxKeys    int // in-flight keys in total
	maxWaiters int // waiters on one key
}

// New returns a Collapse with every option at its default.
func New() *Collapse {
	return &Collapse{maxKeys: defaultMaxKeys, maxWaiters: defaultMaxWaiters}
}

// ServeDNS implements the plugin.Handler interface.
func (c *Collapse) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	return plugin.NextOrFailure(c.Name(), c.Next, ctx, w, r)
}

// Name implements the Handler interface.
func (c *Collapse) Name() string { return pluginName }
