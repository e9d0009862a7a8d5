package lab

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/ti-mo/conntrack"
)

// NodeLocalCorefile is raceguard as the node's own DNS server, set up by its nodelocal directive in
// transparent mode: it binds the kube-dns ClusterIP and the link-local address, so pods reach it
// without any change, and forwards to kube-dns-upstream, the same DNS servers behind another
// ClusterIP (the ClusterIP it binds now leads to itself). NODELOCAL is for extra nodelocal options
// (NodeLocalWith). A text/template over CorefileData.
//
// raceguard's node_local is not set: nodelocal turns it on.
const NodeLocalCorefile = `.:{{.Port}} {
    bind ` + LinkLocalIP + ` ` + ClusterIP + `
    nodelocal {
        check_interval 1s
        NODELOCAL
    }
    errors
    prometheus {{.Metrics}}
    raceguard {
        node_search ` + NodeDomain + `
    }
    cache 30
    collapse
    forward . ` + UpstreamClusterIP + `
}
`

// NodeLocalWith returns NodeLocalCorefile with extra nodelocal options.
func NodeLocalWith(options string) string {
	return strings.Replace(NodeLocalCorefile, "NODELOCAL", options, 1)
}

// LinkLocalResolvConf is DefaultResolvConf with the link-local address as nameserver: a pod of a
// node whose kubelet has clusterDNS [169.254.20.10] (link-local mode).
func LinkLocalResolvConf() ResolvConf {
	rc := DefaultResolvConf()
	rc.Nameserver = LinkLocalIP
	return rc
}

// StartNodeLocal runs CoreDNS in the node's namespace, as the hostNetwork DaemonSet does, on
// corefile (Port 53, Metrics 10.32.0.1:9153) and returns once it answers on the link-local
// address. Unlike StartNodeDNS it leaves the DNAT alone: nodelocal takes the ClusterIP's queries
// itself. wrap is passed to StartProcess. The caller stops it.
func (l *Lab) StartNodeLocal(corefile string, wrap ...string) (*Process, error) {
	text, err := Render(corefile, CorefileData{Port: "53", Metrics: NodeIP + ":9153", Upstream: l.Up.Addr, Kubeconfig: l.kubeconfig}, l.dir)
	if err != nil {
		return nil, err
	}
	l.nodeLocalSeq++
	return StartProcess(l.Node, l.coredns, l.dir, fmt.Sprintf("node-local-%d", l.nodeLocalSeq), text, LinkLocalIP+":53", wrap...)
}

// StartNodeLocalHolding is StartNodeLocal for a server that cannot capture yet (its upstream does
// not answer): it returns once the server's metrics say it holds, without a DNS answer.
func (l *Lab) StartNodeLocalHolding(corefile string) (*Process, error) {
	return l.StartNodeLocalIn(corefile, "hold")
}

// StartNodeLocalIn is StartNodeLocal that returns once the server's metrics say its set-up is in
// state (capture, hold or observe), without a DNS answer.
func (l *Lab) StartNodeLocalIn(corefile, state string) (*Process, error) {
	text, err := Render(corefile, CorefileData{Port: "53", Metrics: NodeIP + ":9153", Upstream: l.Up.Addr, Kubeconfig: l.kubeconfig}, l.dir)
	if err != nil {
		return nil, err
	}
	l.nodeLocalSeq++
	return StartProcessWait(l.Node, l.coredns, l.dir, fmt.Sprintf("node-local-%d", l.nodeLocalSeq), text, func() error {
		return l.nodeLocalState(state)
	})
}

// nodeLocalState returns nil when the node-local server's metrics say its set-up is in state
// (capture, hold or observe).
func (l *Lab) nodeLocalState(state string) error {
	m, err := l.ScrapeNode()
	if err != nil {
		return err
	}
	if m.Sum("coredns_raceguard_nodelocal_state", map[string]string{"state": state}) != 1 {
		return fmt.Errorf("not in state %s", state)
	}
	return nil
}

// WaitNodeLocalRules waits, at most timeout, until the node-local server reports that it
// captures the pods' DNS (its metrics, at 10.32.0.1:9153): StartNodeLocal returns once it
// answers, and the rules go in once it listens on every address and its upstream answers, a
// moment later.
func (l *Lab) WaitNodeLocalRules(timeout time.Duration) error {
	return l.WaitNodeLocalState("capture", timeout)
}

// WaitNodeLocalState waits, at most timeout, until the node-local server reports its set-up in
// state: capture, hold or observe.
func (l *Lab) WaitNodeLocalState(state string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := l.nodeLocalState(state)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the node-local server did not %s within %s (%v)", state, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// NodeExec runs a command in the node's namespace and returns its combined output.
func (l *Lab) NodeExec(args ...string) (string, error) { return nsExec(l.Node, args...) }

// NodeRuleset returns `nft list ruleset` of the node.
func (l *Lab) NodeRuleset() (string, error) { return nsExec(l.Node, "nft", "list", "ruleset") }

// NewFlows returns the entries of after that before does not have: a pod's lookups use a new
// source port each, so these are the entries its lookups between the two dumps made.
func NewFlows(before, after []string) []string {
	seen := map[string]bool{}
	for _, f := range before {
		seen[f] = true
	}
	var out []string
	for _, f := range after {
		if !seen[f] {
			out = append(out, f)
		}
	}
	return out
}

// PodDNSFlows returns the node's conntrack entries of DNS queries from the client pod (its
// addresses as source, port 53 as destination), read over netlink as `conntrack -L` does.
func (l *Lab) PodDNSFlows() ([]string, error) {
	client := []netip.Addr{netip.MustParseAddr(ClientIPv4), netip.MustParseAddr(ClientIPv6)}
	return DNSFlows(l.Node, func(src, _ netip.Addr) bool { return slices.Contains(client, src) })
}

// DNSFlows returns the conntrack entries of namespace ns for DNS queries (port 53 as destination)
// whose original source and destination match accepts, read over netlink as `conntrack -L` does.
func DNSFlows(ns string, match func(src, dst netip.Addr) bool) ([]string, error) {
	var flows []conntrack.Flow
	err := Do(ns, func() error {
		c, err := conntrack.Dial(nil)
		if err != nil {
			return err
		}
		defer c.Close()
		flows, err = c.Dump(nil)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("conntrack dump: %w", err)
	}
	var out []string
	for _, f := range flows {
		o := f.TupleOrig
		if o.Proto.DestinationPort == 53 && match(o.IP.SourceAddress, o.IP.DestinationAddress) {
			out = append(out, fmt.Sprintf("proto %d %s:%d -> %s:%d (reply from %s)", o.Proto.Protocol,
				o.IP.SourceAddress, o.Proto.SourcePort, o.IP.DestinationAddress, o.Proto.DestinationPort, f.TupleReply.IP.SourceAddress))
		}
	}
	return out, nil
}
