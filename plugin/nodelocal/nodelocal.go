package nodelocal

import (
	"context"

	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/nodenet"
)

// pluginName is the directive's name, used for registration, errors and logs. Metrics use the
// module's subsystem (module.Name).
const pluginName = "nodelocal"

// NodeLocal is the nodelocal plugin. It sets the node up at startup and keeps it so; in the chain
// it passes queries on, but for its own self-check's, which it answers.
type NodeLocal struct {
	Next plugin.Handler

	cfg   nodenet.Config
	probe string        // the upstream probe's name; "" with probe off
	node  *nodenet.Node // the process's node set-up, set by OnStartup
}

// ServeDNS implements the plugin.Handler interface.
func (nl *NodeLocal) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	// A self-check is in flight for a moment every check_interval; a query for its name is it.
	if c := checking.Load(); c != nil && c.matches(r) {
		return c.answer(w, r)
	}
	return plugin.NextOrFailure(nl.Name(), nl.Next, ctx, w, r)
}

// Name implements the Handler interface.
func (nl *NodeLocal) Name() string { return pluginName }

// NodeLocal reports that this server block is a node-local server: it sees every try of its
// clients, on their own node. raceguard finds it over the block's handlers at startup and turns
// its node_local option on unless the Corefile sets it.
func (nl *NodeLocal) NodeLocal() bool { return true }

// Ready implements the ready.Readiness interface: ready while the server captures the pods' DNS
// (its NOTRACK rules are in), or, with capture off, once it listens.
func (nl *NodeLocal) Ready() bool { return nl.node != nil && nl.node.Ready() }
