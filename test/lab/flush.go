package lab

import "github.com/ti-mo/conntrack"

// flushConntrack empties the node's conntrack table. A flow keeps the DNAT target it got on its
// first packet for as long as its entry lives (30 s for UDP), so after the ClusterIP's backends
// change a client that reuses a source port still reaches the old backend: a node-local server
// would miss that try of its client's walk. Every function that changes the backends
// (SetBackendIPs, SetBackendsOn, and so StartNodeDNS) flushes.
func (l *Lab) flushConntrack() error {
	return Do(l.Node, func() error {
		c, err := conntrack.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		return c.Flush()
	})
}
