/*
Package lab builds, in network namespaces, the path a Kubernetes pod's DNS lookup takes, and runs
real glibc and musl clients over it:

	client (pod)              node (routing, conntrack, DNAT)            dns1, dns2 (CoreDNS)
	eth0 10.32.1.2/24  <--->  c0 10.32.1.1/24                            eth0 10.32.0.6/24, 10.32.0.7/24
	     fd00:32:1::2/64      br0 10.32.0.1/24 --- d1, d2, u0 ------->   upstream (the "internet")
	                          10.96.0.10:53 DNAT random to dns1|dns2     eth0 10.32.0.53/24

The client's resolv.conf is a ClusterFirst pod's (nameserver 10.96.0.10, the search list of
namespace "default" plus the node domain lab.internal, ndots:5), and it has an IPv6 address so
glibc's AI_ADDRCONFIG asks AAAA too. The node DNATs the ClusterIP to the two DNS servers at random,
as kube-proxy does, and can drop the second packet of a parallel A+AAAA pair to emulate the
conntrack race's effect (kernels since 5.0 resolve the real UDP race in the kernel: clash
resolution; race.go makes the real thing to move the counters). The DNS
servers run the custom CoreDNS binary on a Corefile the test chooses; the upstream is an
in-process authoritative server for a root zone (external.db) with a configurable delay.

Everything needs root. Every namespace is named rglab-<pid>-<n>-<role> and removed on Close; a
later lab removes what a crashed process left behind.
*/
package lab

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/raceguard/raceguard/test/kubeapi"
)

// Addresses inside every lab.
const (
	ClusterIP         = "10.96.0.10"
	UpstreamClusterIP = "10.96.0.11" // kube-dns-upstream: the same DNS servers, for a node-local server
	LinkLocalIP       = "169.254.20.10"
	ServiceCIDR       = "10.96.0.0/16"
	ClientIPv4        = "10.32.1.2"
	ClientIPv6        = "fd00:32:1::2"
	UpstreamIP        = "10.32.0.53"
	NodeDomain        = "lab.internal"
	PodNamespace      = "default"
)

// DNSIPs are the addresses of the two DNS servers behind the ClusterIP.
var DNSIPs = [2]string{"10.32.0.6", "10.32.0.7"}

// ErrUnavailable wraps the reason a lab cannot be built on this machine (not root, a tool missing).
var ErrUnavailable = errors.New("lab unavailable")

// Lab is one instance of the topology above.
type Lab struct {
	Client, Node, Upstream string    // namespace names
	DNS                    [2]string // namespace names of dns1 and dns2

	Up *Upstream

	kubeconfig string       // set by StartKubeAPI
	api        *kubeapi.API // set by StartKubeAPI

	coredns string // the custom CoreDNS binary
	dir     string // Corefiles, logs and client binaries of this lab

	clientResolv resolvGate // the client's resolv.conf, shared by the client runs that use it
	nodeResolv   resolvGate // the same for the node's own (LookupFromNode)

	serversMu sync.Mutex
	servers   [2]*Process // protected by serversMu

	pods         []string // namespaces of the pods AddPod made
	nodeLocalSeq int      // names the node-local servers' files
	backends     []string // the DNS servers the Services' DNAT sends to (SetBackendIPs)
}

var labSeq atomic.Int32

// New builds a lab. coredns is the path of the custom CoreDNS binary the DNS servers run.
func New(coredns string) (l *Lab, err error) {
	if err := Available(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(coredns); err != nil {
		return nil, fmt.Errorf("%w: CoreDNS binary: %v (run make coredns)", ErrUnavailable, err)
	}
	id := NewID()
	l = &Lab{
		Client:   id + "client",
		Node:     id + "node",
		DNS:      [2]string{id + "dns1", id + "dns2"},
		Upstream: id + "up",
		coredns:  coredns,
	}
	if l.dir, err = os.MkdirTemp("", id); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.Close()
			l = nil
		}
	}()
	if err := l.build(); err != nil {
		return nil, err
	}
	if l.Up, err = StartUpstream(l.Upstream, UpstreamIP+":53"); err != nil {
		return nil, err
	}
	return l, nil
}

// Available reports why a lab cannot be built here, or nil.
func Available() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("%w: needs root for network namespaces", ErrUnavailable)
	}
	for _, tool := range []string{"ip", "nft", "gcc", "musl-gcc"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%w: %s not found (apt-get install iproute2 nftables gcc musl-tools)", ErrUnavailable, tool)
		}
	}
	return nil
}

// build makes the namespaces, links, addresses, routes and the node's nftables.
func (l *Lab) build() error {
	all := []string{l.Client, l.Node, l.DNS[0], l.DNS[1], l.Upstream}
	for _, ns := range all {
		if err := AddNamespace(ns); err != nil {
			return err
		}
	}
	// Sysctls are per namespace; conntrack accounting must be on before the first flow, for the
	// fault rule's "ct original packets".
	if _, err := nsExec(l.Node, "sh", "-c",
		"echo 1 > /proc/sys/net/ipv4/ip_forward && echo 1 > /proc/sys/net/netfilter/nf_conntrack_acct"); err != nil {
		return err
	}
	steps := [][]string{
		{"-n", l.Node, "link", "add", "br0", "type", "bridge"},
		{"-n", l.Node, "addr", "add", "10.32.0.1/24", "dev", "br0"},
		{"-n", l.Node, "link", "set", "br0", "up"},
		{"-n", l.Node, "link", "add", "c0", "type", "veth", "peer", "name", "eth0", "netns", l.Client},
		{"-n", l.Node, "addr", "add", "10.32.1.1/24", "dev", "c0"},
		{"-n", l.Node, "link", "set", "c0", "up"},
		{"-n", l.Client, "addr", "add", ClientIPv4 + "/24", "dev", "eth0"},
		{"-n", l.Client, "addr", "add", ClientIPv6 + "/64", "dev", "eth0", "nodad"},
		{"-n", l.Client, "link", "set", "eth0", "up"},
		{"-n", l.Client, "route", "add", "default", "via", "10.32.1.1"},
	}

	for _, s := range []struct{ ns, dev, addr string }{
		{l.DNS[0], "d1", DNSIPs[0]}, {l.DNS[1], "d2", DNSIPs[1]}, {l.Upstream, "u0", UpstreamIP},
	} {
		steps = append(steps,
			[]string{"-n", l.Node, "link", "add", s.dev, "type", "veth", "peer", "name", "eth0", "netns", s.ns},
			[]string{"-n", l.Node, "link", "set", s.dev, "master", "br0", "up"},
			[]string{"-n", s.ns, "addr", "add", s.addr + "/24", "dev", "eth0"},
			[]string{"-n", s.ns, "link", "set", "eth0", "up"},
			[]string{"-n", s.ns, "route", "add", "default", "via", "10.32.0.1"},
		)
	}
	// The node's own route to the Services, for kube-proxy's DNAT of its own (hostNetwork)
	// queries: a socket needs a route before the output hook runs.
	steps = append(steps, []string{"-n", l.Node, "route", "add", ServiceCIDR, "dev", "br0"})
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	if err := l.nftInit(); err != nil {
		return err
	}
	// The DNS servers' own resolv.conf, as a node's: the upstream, and the node's search domain.
	for _, ns := range l.DNS {
		dir := filepath.Join("/etc/netns", ns)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, "resolv.conf"), []byte("nameserver "+UpstreamIP+"\nsearch "+NodeDomain+"\n"), 0o644); err != nil {
			return err
		}
	}
	return l.writeClientFiles(DefaultResolvConf())
}

// Close stops the servers and removes everything the lab made. It is safe to call twice.
func (l *Lab) Close() {
	l.StopDNS()
	if l.api != nil {
		l.api.Close()
		l.api = nil
	}
	if l.Up != nil {
		l.Up.Close()
		l.Up = nil
	}
	for _, ns := range append([]string{l.Client, l.Node, l.DNS[0], l.DNS[1], l.Upstream}, l.pods...) {
		RemoveNamespace(ns)
	}
	if l.dir != "" {
		os.RemoveAll(l.dir)
	}
}
