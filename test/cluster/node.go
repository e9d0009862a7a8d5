package cluster

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/raceguard/raceguard/test/lab"
)

// The modes of kube-proxy (its --proxy-mode).
const (
	IPTables = "iptables"
	NFTables = "nftables"
	IPVS     = "ipvs"
)

// IPVSAvailable reports why kube-proxy's IPVS mode cannot run on this kernel, or nil.
func IPVSAvailable() error {
	if _, err := os.Stat("/proc/net/ip_vs"); err != nil {
		return fmt.Errorf("this kernel has no IPVS (/proc/net/ip_vs absent: CONFIG_IP_VS, or the ip_vs module, missing)")
	}
	return nil
}

// Node is a node: a network namespace on the bridge, with kube-proxy and the pods the kubelet
// (this package) runs on it.
type Node struct {
	Name       string // node1, node2: the Node object's name
	NS         string // its network namespace
	IP         string // 10.40.0.1N
	Index      int    // N
	Mode       string // kube-proxy's mode
	ResolvConf string // the node's resolv.conf (the kubelet's resolvConf): the upstream, and NodeDomain
	// ClusterDNS is the kubelet's clusterDNS: the kube-dns ClusterIP, or in link-local mode
	// 169.254.20.10 then the ClusterIP.
	ClusterDNS []string

	c      *Cluster
	proxy  *lab.Process
	proxyN int // kube-proxy runs so far, for their logs' names
	podN   int // the last pod address's host part
	pods   []*Pod
}

// PodCIDR is the node's pod range, 10.244.N.0/24.
func (n *Node) PodCIDR() string { return fmt.Sprintf("10.244.%d.0/24", n.Index) }

// Gateway is the pods' gateway address on the node, on every pod's veth.
func (n *Node) Gateway() string { return fmt.Sprintf("10.244.%d.1", n.Index) }

// AddNodes makes count nodes (node1...), with their Node objects and routes, for kube-proxy in
// mode. kube-proxy is not started (StartProxy).
func (c *Cluster) AddNodes(ctx context.Context, mode string, count int) (nodes []*Node, err error) {
	c.nodes++
	defer func() {
		if err != nil {
			for _, n := range nodes {
				n.Close()
			}
			nodes = nil
		}
	}()
	for i := 1; i <= count; i++ {
		n := &Node{
			Name: fmt.Sprintf("node%d", i), NS: fmt.Sprintf("%s%d-node%d", c.id, c.nodes, i),
			IP: fmt.Sprintf("10.40.0.1%d", i), Index: i, Mode: mode, ClusterDNS: []string{KubeDNSIP}, c: c, podN: 1,
		}
		nodes = append(nodes, n)
		if err := n.build(); err != nil {
			return nodes, err
		}
		if err := n.register(ctx); err != nil {
			return nodes, err
		}
	}
	// Routes to each node's pods: from the other nodes, and from the network (the control
	// plane and the upstream answer pods).
	for _, n := range nodes {
		if err := lab.IP("-n", c.Net, "route", "replace", n.PodCIDR(), "via", n.IP); err != nil {
			return nodes, err
		}
		for _, o := range nodes {
			if o != n {
				if err := lab.IP("-n", n.NS, "route", "add", o.PodCIDR(), "via", o.IP); err != nil {
					return nodes, err
				}
			}
		}
	}
	return nodes, nil
}

// build makes the node's namespace, its link to the bridge and its counters.
func (n *Node) build() error {
	c := n.c
	if err := lab.AddNamespace(n.NS); err != nil {
		return err
	}
	// conntrack accounting on before the first flow, for the fault rule's "ct original packets".
	if _, err := lab.NSExec(n.NS, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct"); err != nil {
		return err
	}
	link := fmt.Sprintf("rgn%d", n.Index)
	for _, s := range [][]string{
		{"-n", c.Net, "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", n.NS},
		{"-n", c.Net, "link", "set", link, "master", "br0", "up"},
		{"-n", n.NS, "addr", "add", n.IP + "/24", "dev", "eth0"},
		{"-n", n.NS, "link", "set", "eth0", "up"},
		{"-n", n.NS, "route", "add", "default", "via", NetIP},
	} {
		if err := lab.IP(s...); err != nil {
			return err
		}
	}
	// The node's resolv.conf: the cloud's DNS server and the node's domain. Processes of the node
	// (hostNetwork pods with dnsPolicy Default: the node-local server) read it as /etc/resolv.conf.
	rc := "nameserver " + UpstreamIP + "\nsearch " + NodeDomain + "\n"
	n.ResolvConf = filepath.Join(c.Dir, n.NS+".resolv.conf")
	if err := os.WriteFile(n.ResolvConf, []byte(rc), 0o644); err != nil {
		return err
	}
	if err := lab.WriteResolvConf(n.NS, rc); err != nil {
		return err
	}
	return lab.NFT(n.NS, countersRuleset)
}

// register creates (or refreshes) the Node object, Ready, with the node's address and pod range,
// as the kubelet does when it starts.
func (n *Node) register(ctx context.Context) error {
	api := n.c.Client.CoreV1().Nodes()
	node := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: n.Name, Labels: map[string]string{
			"kubernetes.io/hostname": n.Name, "kubernetes.io/os": "linux",
		}},
		Spec: corev1.NodeSpec{PodCIDR: n.PodCIDR(), PodCIDRs: []string{n.PodCIDR()}},
	}
	old, err := api.Get(ctx, n.Name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		if old, err = api.Create(ctx, node, metav1.CreateOptions{}); err != nil {
			return err
		}
	case err != nil:
		return err
	}
	now := metav1.Now()
	old.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: n.IP}, {Type: corev1.NodeHostName, Address: n.Name}}
	old.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
		LastHeartbeatTime: now, LastTransitionTime: now}}
	_, err = api.UpdateStatus(ctx, old, metav1.UpdateOptions{})
	return err
}

// Close stops the node's processes and removes its namespaces, its pods' and their objects.
func (n *Node) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, p := range slices.Clone(n.pods) {
		p.remove(ctx)
	}
	n.pods = nil
	n.StopProxy()
	lab.RemoveNamespace(n.NS)
	lab.IP("-n", n.c.Net, "route", "del", n.PodCIDR())
}

// Exec runs a command in the node's namespace.
func (n *Node) Exec(args ...string) (string, error) { return lab.NSExec(n.NS, args...) }

// StartProxy starts kube-proxy on the node in its mode and waits until it has programmed the
// Services (its healthz answers 200 once it has synced).
func (n *Node) StartProxy() error {
	if n.proxy != nil {
		return fmt.Errorf("%s: kube-proxy is running", n.Name)
	}
	n.proxyN++
	p, err := lab.StartCommand(n.NS, n.c.Dir, fmt.Sprintf("%s-kube-proxy-%d", n.NS, n.proxyN), nil,
		n.c.Bins["kube-proxy"], "--kubeconfig="+n.c.Kubeconfig, "--hostname-override="+n.Name,
		"--proxy-mode="+n.Mode, "--cluster-cidr="+ClusterCIDR, "--nodeport-addresses=primary",
		// A network namespace cannot set the node's conntrack table size.
		"--conntrack-max-per-core=0", "--conntrack-min=0",
		"--healthz-bind-address="+n.IP+":10256", "--metrics-bind-address="+n.IP+":10249")
	if err != nil {
		return err
	}
	n.proxy = p
	return waitHTTP(n.NS, "http://"+n.IP+":10256/healthz", p, 60*time.Second)
}

// StopProxy stops kube-proxy (SIGTERM), leaving its rules, as a kube-proxy pod's restart does.
func (n *Node) StopProxy() {
	if n.proxy != nil {
		n.proxy.Stop()
		n.proxy = nil
	}
}

// ProxyLog returns what the running kube-proxy has logged.
func (n *Node) ProxyLog() string {
	if n.proxy == nil {
		return ""
	}
	return n.proxy.Log()
}

// CleanupProxy removes kube-proxy's rules of every mode (kube-proxy --cleanup), as on a node that
// boots without them.
func (n *Node) CleanupProxy() error {
	_, err := n.Exec(n.c.Bins["kube-proxy"], "--cleanup")
	return err
}

// FlushConntrack empties the node's conntrack table.
func (n *Node) FlushConntrack() error {
	_, err := n.Exec("conntrack", "-F")
	return err
}

// Ruleset returns `nft list ruleset` of the node.
func (n *Node) Ruleset() (string, error) { return n.Exec("nft", "list", "ruleset") }

// Scrape returns the metrics at port of the node's address (9153: the node-local server).
func (n *Node) Scrape(port int) (lab.Metrics, error) {
	text, err := lab.ScrapeURL(n.NS, fmt.Sprintf("http://%s:%d/metrics", n.IP, port))
	return lab.ParseMetrics(text), err
}

// DNSFlows returns the node's conntrack entries of the pods' DNS queries: from its pods' addresses,
// or the node's own for hostNetwork pods, to the kube-dns ClusterIP or the link-local address (the
// node-local server's own queries to kube-dns-upstream are not the pods').
func (n *Node) DNSFlows() ([]string, error) {
	pods := netip.MustParsePrefix(n.PodCIDR())
	self := netip.MustParseAddr(n.IP)
	dsts := []netip.Addr{netip.MustParseAddr(KubeDNSIP), netip.MustParseAddr(LinkLocalIP)}
	return lab.DNSFlows(n.NS, func(src, dst netip.Addr) bool {
		return (pods.Contains(src) || src == self) && slices.Contains(dsts, dst)
	})
}

// countersRuleset counts, on each node, the DNS the client pods send (their addresses are in the
// set clients: CountClient) and where the pods' DNS goes, and holds the chain of the emulated
// conntrack race (SetFault), which hits the client pods only. Pods' links are named rgp*.
//
// Hook priorities: sent (-300) sees every packet before conntrack (-200); fault (-150) runs after
// conntrack, so "ct original packets" is known, and before kube-proxy's DNAT (-100); delivered and
// local see where the packet went (after DNAT, or an untracked packet to the node itself).
const countersRuleset = `
table inet rglab {
	set clients { type ipv4_addr; }
	counter pod_udp {}
	counter pod_tcp {}
	counter host_udp {}
	counter dnat_udp {}
	counter local_udp {}
	counter fault_drops {}
	chain sent {
		type filter hook prerouting priority -300; policy accept;
		iifname "rgp*" ip saddr @clients udp dport 53 counter name "pod_udp"
		iifname "rgp*" ip saddr @clients tcp dport 53 tcp flags & (syn | ack) == syn counter name "pod_tcp"
	}
	chain hostsent {
		type filter hook output priority -300; policy accept;
		ip daddr { ` + KubeDNSIP + `, ` + LinkLocalIP + ` } udp dport 53 counter name "host_udp"
	}
	chain fault {
		type filter hook prerouting priority -150; policy accept;
	}
	chain delivered {
		type filter hook postrouting priority 100; policy accept;
		ct original ip daddr ` + KubeDNSIP + ` ip daddr ` + ClusterCIDR + ` udp dport 53 counter name "dnat_udp"
	}
	chain local {
		type filter hook input priority 0; policy accept;
		iifname "rgp*" udp dport 53 counter name "local_udp"
	}
}
`

// Counters are a node's packet counts since it was built.
type Counters struct {
	PodUDP     int // UDP queries the node's client pods sent, to any address
	PodTCP     int // TCP connections the node's client pods opened to port 53
	HostUDP    int // UDP queries the node's own processes sent to the ClusterIP or 169.254.20.10
	DNATUDP    int // queries to the kube-dns ClusterIP that kube-proxy sent on to a kube-dns pod
	LocalUDP   int // pods' UDP queries delivered to a server on the node (node-local)
	FaultDrops int // packets the emulated race dropped
}

// Sub returns c - o.
func (c Counters) Sub(o Counters) Counters {
	return Counters{c.PodUDP - o.PodUDP, c.PodTCP - o.PodTCP, c.HostUDP - o.HostUDP, c.DNATUDP - o.DNATUDP, c.LocalUDP - o.LocalUDP, c.FaultDrops - o.FaultDrops}
}

// Add returns c + o.
func (c Counters) Add(o Counters) Counters {
	return Counters{c.PodUDP + o.PodUDP, c.PodTCP + o.PodTCP, c.HostUDP + o.HostUDP, c.DNATUDP + o.DNATUDP, c.LocalUDP + o.LocalUDP, c.FaultDrops + o.FaultDrops}
}

func (c Counters) String() string {
	return fmt.Sprintf("pod_udp=%d pod_tcp=%d host_udp=%d dnat_udp=%d local_udp=%d fault_drops=%d", c.PodUDP, c.PodTCP, c.HostUDP, c.DNATUDP, c.LocalUDP, c.FaultDrops)
}

// Counters reads the node's counters.
func (n *Node) Counters() (Counters, error) {
	m, err := lab.NFTCounters(n.NS, "inet rglab")
	return Counters{m["pod_udp"], m["pod_tcp"], m["host_udp"], m["dnat_udp"], m["local_udp"], m["fault_drops"]}, err
}

// CountClient adds a pod's address to the client pods the counters and the fault rule see.
func (n *Node) CountClient(ip string) error {
	return lab.NFT(n.NS, "add element inet rglab clients { "+ip+" }\n")
}

// SetFault makes the node drop, at percent, the second packet of each client pod's UDP flow to port 53
// (lab.FaultSecond: the AAAA of a parallel A+AAAA pair sent from one socket), in conntrack's path
// to kube-proxy's DNAT; 0 turns it off. Untracked packets (a node-local server's NOTRACK) have no
// conntrack entry to count them, and pass.
func (n *Node) SetFault(percent int) error {
	script := "flush chain inet rglab fault\n"
	if percent > 0 {
		rule := `iifname "rgp*" ip saddr @clients udp dport 53 ct direction original ct original packets 2`
		if percent < 100 {
			rule += fmt.Sprintf(" numgen random mod 100 < %d", percent)
		}
		script += "add rule inet rglab fault " + rule + ` counter name "fault_drops" drop` + "\n"
	}
	return lab.NFT(n.NS, script)
}

// Tables returns how many tables named name (e.g. "inet raceguard") the node has.
func (n *Node) Tables(name string) (int, error) {
	out, err := n.Exec("nft", "list", "tables")
	if err != nil {
		return 0, err
	}
	count := 0
	for _, l := range strings.Split(out, "\n") {
		if strings.TrimSpace(l) == "table "+name {
			count++
		}
	}
	return count, nil
}
