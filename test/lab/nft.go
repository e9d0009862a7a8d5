package lab

import (
	"encoding/json"
	"fmt"
	"strings"
)

// nodeRuleset is the node's nftables: kube-proxy's ClusterIP DNAT (the nft flavour of its
// "statistic --mode random" rules), for the pods' traffic (prerouting) and the node's own
// (output), of the kube-dns ClusterIP and of kube-dns-upstream, the second Service of the same
// DNS servers that a node-local server forwards to; counters for queries the client sent, queries
// delivered to a DNS server behind the DNAT, and queries delivered to a server on the node itself;
// and an empty chain for the fault rule.
//
// Hook priorities: sent (-300) runs before conntrack (-200) and sees every packet; fault (-150)
// runs after conntrack, so "ct original packets" is known, and before DNAT (-100).
const nodeRuleset = `
table ip kube {
	chain prerouting {
		type nat hook prerouting priority dstnat; policy accept;
	}
	chain output {
		type nat hook output priority -100; policy accept;
	}
}
table inet lab {
	counter client_udp {}
	counter client_tcp {}
	counter server_udp {}
	counter local_udp {}
	counter fault_drops {}
	chain sent {
		type filter hook prerouting priority -300; policy accept;
		iifname "c0" ip daddr { ` + ClusterIP + `, ` + LinkLocalIP + ` } udp dport 53 counter name "client_udp"
		iifname "c0" ip daddr { ` + ClusterIP + `, ` + LinkLocalIP + ` } tcp dport 53 tcp flags & (syn | ack) == syn counter name "client_tcp"
	}
	chain fault {
		type filter hook prerouting priority -150; policy accept;
	}
	chain delivered {
		type filter hook forward priority 0; policy accept;
		iifname "c0" udp dport 53 counter name "server_udp"
	}
	chain local {
		type filter hook input priority 0; policy accept;
		iifname "c0" udp dport 53 counter name "local_udp"
	}
}
`

func (l *Lab) nftInit() error {
	if _, err := runInput(nodeRuleset, "ip", "netns", "exec", l.Node, "nft", "-f", "-"); err != nil {
		return err
	}
	return l.SetBackends(len(DNSIPs))
}

// SetBackends makes the ClusterIP DNAT to the first n DNS servers (1 or 2): 1 models a node-local
// deployment, where every query of the node reaches the same server.
func (l *Lab) SetBackends(n int) error {
	if n < 1 || n > len(DNSIPs) {
		return fmt.Errorf("backends: want 1 to %d, got %d", len(DNSIPs), n)
	}
	return l.SetBackendIPs(DNSIPs[:n]...)
}

// SetBackendIPs makes the ClusterIP (and kube-dns-upstream's) DNAT to ips, at random, for the
// pods and for the node itself, and forgets the flows the old backends had, as kube-proxy clears
// a UDP Service's stale conntrack entries when its endpoints change (see flushConntrack).
func (l *Lab) SetBackendIPs(ips ...string) error {
	l.backends = ips
	return l.programServices(ClusterIP, UpstreamClusterIP)
}

// SetServices makes the node translate the given Services only (ClusterIP, UpstreamClusterIP, or
// none), to the backends of the last SetBackendIPs: kube-proxy before its first sync of the node
// programs none, and a Service deleted or not yet created has no rules.
func (l *Lab) SetServices(svcs ...string) error { return l.programServices(svcs...) }

// programServices writes the DNAT of svcs to l.backends.
func (l *Lab) programServices(svcs ...string) error {
	ips := l.backends
	var m []string
	for i, ip := range ips {
		m = append(m, fmt.Sprintf("%d : %s", i, ip))
	}
	script := ""
	for _, chain := range []string{"prerouting", "output"} {
		script += "flush chain ip kube " + chain + "\n"
		for _, svc := range svcs {
			script += "add rule ip kube " + chain + " ip daddr " + svc + " meta l4proto { udp, tcp } th dport 53 dnat to numgen random mod " +
				fmt.Sprint(len(ips)) + " map { " + strings.Join(m, ", ") + " }\n"
		}
	}
	if _, err := runInput(script, "ip", "netns", "exec", l.Node, "nft", "-f", "-"); err != nil {
		return err
	}
	return l.flushConntrack()
}

// Fault selects which client packets the node drops.
type Fault int

const (
	// FaultOff drops nothing.
	FaultOff Fault = iota
	// FaultSecond drops the second packet of each client UDP flow to port 53: the AAAA of a
	// parallel A+AAAA pair sent from one socket. Deterministic, but it also drops the second query
	// of a sequential (single-request) lookup, which cannot race in reality.
	FaultSecond
	// FaultParallel drops the second packet only while the first is unanswered, that is when the
	// two were really in flight together, as the conntrack race needs. It only hits reliably when
	// the server takes a millisecond or more to answer.
	FaultParallel
)

// SetFault makes the node drop, at the given percentage, the packets fault selects.
func (l *Lab) SetFault(f Fault, percent int) error {
	rule := `iifname "c0" udp dport 53 ct direction original ct original packets 2`
	switch f {
	case FaultOff:
		rule = ""
	case FaultSecond:
	case FaultParallel:
		rule += " ct status ! seen-reply"
	default:
		return fmt.Errorf("unknown fault %d", f)
	}
	if rule != "" && percent < 100 {
		rule += fmt.Sprintf(" numgen random mod 100 < %d", percent)
	}
	script := "flush chain inet lab fault\n"
	if rule != "" {
		script += "add rule inet lab fault " + rule + ` counter name "fault_drops" drop` + "\n"
	}
	_, err := runInput(script, "ip", "netns", "exec", l.Node, "nft", "-f", "-")
	return err
}

// Counters are the node's packet counts since the lab was built.
type Counters struct {
	ClientUDP  int // UDP queries the client sent to the ClusterIP or the link-local address
	ClientTCP  int // TCP connections the client opened to the ClusterIP
	ServerUDP  int // UDP queries delivered to a DNS server behind the DNAT
	LocalUDP   int // UDP queries delivered to a server on the node (node-local, NOTRACK)
	FaultDrops int // packets the fault rule dropped
}

// Sub returns c - o, the counts between two readings.
func (c Counters) Sub(o Counters) Counters {
	return Counters{c.ClientUDP - o.ClientUDP, c.ClientTCP - o.ClientTCP, c.ServerUDP - o.ServerUDP, c.LocalUDP - o.LocalUDP, c.FaultDrops - o.FaultDrops}
}

// Counters reads the node's counters.
func (l *Lab) Counters() (Counters, error) {
	m, err := NFTCounters(l.Node, "inet lab")
	return Counters{m["client_udp"], m["client_tcp"], m["server_udp"], m["local_udp"], m["fault_drops"]}, err
}

// NFTCounters returns the packet counts of the named counters of table (its family and name,
// "inet lab") in namespace ns.
func NFTCounters(ns, table string) (map[string]int, error) {
	out, err := nsExec(ns, append([]string{"nft", "-j", "list", "counters", "table"}, strings.Fields(table)...)...)
	if err != nil {
		return nil, err
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Name    string `json:"name"`
				Packets int    `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return nil, fmt.Errorf("nft counters: %w", err)
	}
	m := map[string]int{}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			m[o.Counter.Name] = o.Counter.Packets
		}
	}
	return m, nil
}
