package artifacts

import (
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "github.com/coredns/coredns/plugin/loadbalance" // the cluster Corefile's plugins that testenv does not link
	_ "github.com/coredns/coredns/plugin/loop"
	_ "github.com/coredns/coredns/plugin/reload"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
)

// servable rewrites a manifest's Corefile to run on this machine: the server binds loopback
// instead of the link-local address and the ClusterIP, the server ports ephemeral (testenv.EphemeralPorts), health, ready and prometheus
// listen on the given addresses, and lameduck is cut short so that stopping a server does not take
// 10 s.
//
// The node set-up is left out: nodelocal would change this machine's addresses and nftables.
// test/labtest runs it, on a lab node (TestNodeLocal*Lab). Its one effect on raceguard stays:
// node_local on (the server sees every try of its clients, and its pod watch is of its node's
// pods), written out where raceguard does not set it.
func servable(corefile string, listen map[string]string) string {
	c := regexp.MustCompile(`(?m)^\s*nodelocal \{\n(?:.*\n)*?\s*\}\n`).ReplaceAllString(corefile, "")
	if len(directiveArgs(c, "nodelocal")) > 0 {
		panic("servable: a nodelocal stanza is left, which would set up this machine")
	}
	if c != corefile && len(directiveArgs(c, "node_local")) == 0 {
		c = regexp.MustCompile(`(?m)^(\s*)raceguard \{$`).ReplaceAllString(c, "${1}raceguard {\n${1}    node_local on")
		c = regexp.MustCompile(`(?m)^(\s*)raceguard$`).ReplaceAllString(c, "${1}raceguard {\n${1}    node_local on\n${1}}")
	}
	c = regexp.MustCompile(`(?m)^(\s*bind) .*$`).ReplaceAllString(c, "${1} 169.254.20.10")
	c = strings.ReplaceAll(c, "169.254.20.10", "127.0.0.1")
	c = testenv.EphemeralPorts(c)
	c = regexp.MustCompile(`(?m)^(\s*lameduck)\s+\S+`).ReplaceAllString(c, "${1} 200ms")
	lines := strings.Split(c, "\n")
	for i, l := range lines {
		f := strings.Fields(l)
		if len(f) == 0 {
			continue
		}
		if addr, ok := listen[f[0]]; ok {
			indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
			lines[i] = indent + f[0] + " " + addr
			if f[len(f)-1] == "{" {
				lines[i] += " {"
			}
		}
	}
	return strings.Join(lines, "\n")
}

func exchangeA(t *testing.T, network, addr, name string) *dns.Msg {
	t.Helper()
	m := new(dns.Msg).SetQuestion(name, dns.TypeA)
	r, _, err := (&dns.Client{Net: network, Timeout: 5 * time.Second}).Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s: %v", network, name, err)
	}
	return r
}

func answerA(r *dns.Msg) string {
	for _, rr := range r.Answer {
		if a, ok := rr.(*dns.A); ok {
			return a.A.String()
		}
	}
	return ""
}

// The pods of the fake API a Corefile's pod watch reads (withNodeAndAPI): the pod the tests' lookups
// come from, on the node of the node-local servers (testenv.Node), and one on another node. Both
// are ClusterFirst pods of namespace default: their lists are default.svc.cluster.local,
// svc.cluster.local, cluster.local and the node's domains (nodeSearchDomain), with ndots 5. Their
// addresses are loopback addresses other than 127.0.0.1, the address a server's own queries come
// from (as a node-local server's come from its node's, which no pod's list answers for).
var (
	clientPod    = kubeapi.Pod{Namespace: "default", Name: "client", IP: "127.0.0.2", Node: testenv.Node}
	otherNodePod = kubeapi.Pod{Namespace: "default", Name: "elsewhere", IP: "127.0.0.3", Node: "node-2"}
)

// nodeSearchDomain is the search domain of the node's resolv.conf in withNodeAndAPI: the lab
// upstream's.
const nodeSearchDomain = "lab.internal"

// withNodeAndAPI makes what a Corefile's raceguard reads from its node and the API server this
// test's, as the manifests set it up in a cluster but for the credentials: the node's resolv.conf
// (a node_search file: the kubelet's, mounted from the node) is a file of the test's, with search
// nodeSearchDomain; NODE_NAME, the node a node-local pod watch asks for, is testenv.Node, as the
// DaemonSet's downward API sets it (inherited by the processes the test starts); and a pod watch
// (search pods) reads api (a fake API serving clientPod and otherNodePod when nil) through a
// kubeconfig instead of the in-cluster service account's token.
func withNodeAndAPI(t *testing.T, corefile string, api *kubeapi.API) string {
	t.Helper()
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	if err := os.WriteFile(resolv, []byte("nameserver 127.0.0.53\nsearch "+nodeSearchDomain+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("NODE_NAME", testenv.Node)
	c := regexp.MustCompile(`(?m)^(\s*)node_search\s+/\S*$`).ReplaceAllString(corefile, "${1}node_search "+resolv)
	if !podWatch(c) {
		return c
	}
	if api == nil {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		api = kubeapi.Serve(ln, kubeapi.Sample(clientPod, otherNodePod))
		t.Cleanup(api.Close)
	}
	kubeconfig, err := api.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	extra := "${1}kubeconfig " + kubeconfig
	if len(directiveArgs(c, "node_search")) == 0 {
		extra += "\n${1}node_search " + resolv
	}
	return regexp.MustCompile(`(?m)^(\s*)search pods$`).ReplaceAllString(c, "${0}\n"+extra)
}

// exchangeFrom sends an A query for name over UDP from the loopback address src to addr.
func exchangeFrom(t *testing.T, src, addr, name string) *dns.Msg {
	t.Helper()
	c := &dns.Client{Net: "udp", Timeout: 5 * time.Second, Dialer: &net.Dialer{LocalAddr: &net.UDPAddr{IP: net.ParseIP(src)}}}
	r, _, err := c.Exchange(new(dns.Msg).SetQuestion(name, dns.TypeA), addr)
	if err != nil {
		t.Fatalf("%s from %s: %v", name, src, err)
	}
	return r
}

// completedTo reports whether r answers its question with a CNAME to target first.
func completedTo(r *dns.Msg, target string) bool {
	return r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 && r.Answer[0].Header().Rrtype == dns.TypeCNAME &&
		r.Answer[0].Header().Name == r.Question[0].Name && r.Answer[0].(*dns.CNAME).Target == target
}

// TestDeployCorefiles starts the two ConfigMaps' Corefiles in-process, chained as in a cluster:
// the cluster Corefile's kubernetes plugin and both pod watches read a fake API server, the
// cluster Corefile forwards the rest to the lab's upstream on loopback, and the node-local
// Corefile forwards to it through KUBE_DNS_UPSTREAM_SERVICE_HOST, the variable the kubelet sets
// from the kube-dns-upstream Service. Each completes an external name for a pod it knows from its
// watch (the node-local one only for the pods of its node), which search infer never does. It
// runs in a child process because of the kubernetes plugin's globals (testenv.Isolated).
func TestDeployCorefiles(t *testing.T) {
	if !testenv.Isolated(t) {
		return
	}
	cluster := loadBundle(t, "cluster")
	nodeLocal := loadBundle(t, "node-local")

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api := kubeapi.Serve(ln, kubeapi.Sample(clientPod, otherNodePod))
	t.Cleanup(api.Close)
	kubeconfig, err := api.WriteKubeconfig(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)

	// kube-dns: the cluster Corefile, with the fake API's kubeconfig, forwarding to the lab's
	// upstream instead of this machine's resolv.conf.
	health, ready := testenv.FreePort(t), testenv.FreePort(t)
	corefile := servable(corefileOf(t, cluster, oneOf[*appsv1.Deployment](t, cluster).Spec.Template),
		map[string]string{"health": health, "ready": ready, "prometheus": "127.0.0.1:0"})
	corefile = regexp.MustCompile(`(?m)^(\s*)(kubernetes .*\{)$`).ReplaceAllString(corefile, "${1}${2}\n${1}    kubeconfig "+kubeconfig)
	if !strings.Contains(corefile, "forward . /etc/resolv.conf") {
		t.Fatalf("Cluster Corefile: no forward . /etc/resolv.conf:\n%s", corefile)
	}
	corefile = withNodeAndAPI(t, strings.Replace(corefile, "forward . /etc/resolv.conf", "forward . "+up.Addr, 1), api)
	i, udp, tcp, err := testenv.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("Cluster Corefile did not start: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { testenv.Stop(i) })
	for deadline := time.Now().Add(10 * time.Second); answerA(exchangeA(t, "udp", udp, "kubernetes.default.svc.cluster.local.")) != "10.96.0.1"; {
		if time.Now().After(deadline) {
			t.Fatal("Cluster Corefile: kubernetes.default.svc.cluster.local never resolved to 10.96.0.1")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := answerA(exchangeA(t, "tcp", tcp, "api.shop.svc.cluster.local.")); got != "10.96.40.2" {
		t.Errorf("Cluster Corefile over TCP: api.shop.svc.cluster.local A %q, want 10.96.40.2", got)
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("Cluster Corefile: %s answered %q, want OK", u, body)
		}
	}

	// The node-local Corefile, forwarding to the kube-dns above.
	t.Setenv("KUBE_DNS_UPSTREAM_SERVICE_HOST", udp)
	health, ready = testenv.FreePort(t), testenv.FreePort(t)
	corefile = servable(corefileOf(t, nodeLocal, oneOf[*appsv1.DaemonSet](t, nodeLocal).Spec.Template),
		map[string]string{"health": health, "ready": ready, "prometheus": "127.0.0.1:0"})
	corefile = withNodeAndAPI(t, corefile, api)
	j, nudp, _, err := testenv.CoreDNSServerAndPorts(corefile)
	if err != nil {
		t.Fatalf("Node-local Corefile did not start: %v\n%s", err, corefile)
	}
	t.Cleanup(func() { testenv.Stop(j) })
	if got := answerA(exchangeA(t, "udp", nudp, "kubernetes.default.svc.cluster.local.")); got != "10.96.0.1" {
		t.Errorf("Node-local Corefile: kubernetes.default.svc.cluster.local A %q, want 10.96.0.1 from kube-dns", got)
	}
	// A pod in default looking up api.shop: its first try is completed, on the node.
	r := exchangeA(t, "udp", nudp, "api.shop.default.svc.cluster.local.")
	if len(r.Answer) != 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[0].(*dns.CNAME).Target != "api.shop.svc.cluster.local." || answerA(r) != "10.96.40.2" {
		t.Errorf("Node-local Corefile: expected api.shop.default.svc.cluster.local completed with a CNAME to api.shop.svc.cluster.local and 10.96.40.2, got %v", r)
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("Node-local Corefile: %s answered %q, want OK", u, body)
		}
	}

	// The pod watches: the node-local server's of its node's pods (NODE_NAME), kube-dns's of
	// every pod. Each completes an external name's first try for clientPod, whose exact list
	// it knows (search infer completes none); the node-local server's own queries to kube-dns come
	// from 127.0.0.1, no pod's address, so its completion is its own.
	testenv.WaitPodWatch(t)
	sels := api.PodSelectors()
	if !slices.ContainsFunc(sels, func(s string) bool { return strings.HasPrefix(s, "spec.nodeName="+testenv.Node+",") }) ||
		!slices.ContainsFunc(sels, func(s string) bool { return !strings.Contains(s, "spec.nodeName") }) {
		t.Errorf("Pod watches with field selectors %q, want one of node %s's pods (node-local) and one of every pod (cluster)", sels, testenv.Node)
	}
	const first = "www.example.org.default.svc.cluster.local."
	for _, s := range []struct{ name, addr string }{{"Node-local", nudp}, {"Cluster", udp}} {
		if r := exchangeFrom(t, clientPod.IP, s.addr, first); !completedTo(r, "www.example.org.") || answerA(r) != "192.0.2.10" {
			t.Errorf("%s Corefile: %s from pod %s: want a CNAME to www.example.org. and 192.0.2.10, its exact list's answer, got %v", s.name, first, clientPod.Name, r)
		}
	}
	// A pod of another node is none of the node-local server's: its first try is answered as
	// asked, and the pod walks on itself.
	if r := exchangeFrom(t, otherNodePod.IP, nudp, first); r.Rcode != dns.RcodeNameError {
		t.Errorf("Node-local Corefile: %s from a pod of another node: want NXDOMAIN, got %v", first, r)
	}
}

// TestDeployNodeLocalSurge holds the build to the DaemonSet's rollout: with maxSurge the new pod
// starts on a node beside the old one and binds the same addresses, which only works because
// every listener (DNS, health, ready, prometheus) sets SO_REUSEPORT. Two processes of the built
// binary run the node-local Corefile on the same ports; the first stops (SIGTERM, lameduck);
// DNS, health and ready keep answering from the second.
func TestDeployNodeLocalSurge(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	t.Setenv("KUBE_DNS_UPSTREAM_SERVICE_HOST", up.Addr) // inherited by the processes

	b := loadBundle(t, "node-local")
	dnsAddr := "127.0.0.1:" + testenv.FreeUDPTCPPort(t)
	health, ready, metrics := testenv.FreePort(t), testenv.FreePort(t), testenv.FreePort(t)
	corefile := servable(corefileOf(t, b, oneOf[*appsv1.DaemonSet](t, b).Spec.Template),
		map[string]string{"health": health, "ready": ready, "prometheus": metrics})
	corefile = withNodeAndAPI(t, corefile, nil)
	_, port, _ := net.SplitHostPort(dnsAddr)
	corefile = strings.Replace(corefile, ".:0 {", ".:"+port+" {", 1)

	dir := t.TempDir()
	old, err := lab.StartProcess("", bin, dir, "old", corefile, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer old.Stop()
	surge, err := lab.StartProcess("", bin, dir, "surge", corefile, dnsAddr)
	if err != nil {
		t.Fatal(err)
	}
	defer surge.Stop()
	// The probe may have been answered by the old process: wait for the surge one's banner.
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(surge.Log(), "CoreDNS-"); {
		if syscall.Kill(surge.Pid(), 0) != nil || time.Now().After(deadline) {
			t.Fatalf("The surge process did not start beside the old one:\n%s", surge.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}

	old.Stop()
	if strings.Contains(old.Log(), "address already in use") || strings.Contains(surge.Log(), "address already in use") {
		t.Fatalf("A listener without SO_REUSEPORT:\nold:\n%s\nsurge:\n%s", old.Log(), surge.Log())
	}
	for n := range 20 {
		m := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
		r, err := lab.Exchange("", "udp", dnsAddr, m, 2*time.Second)
		if err != nil || answerA(r) != "192.0.2.10" {
			t.Fatalf("Query %d after the old process stopped: %v %v\nsurge log:\n%s", n, r, err, surge.Log())
		}
	}
	for _, u := range []string{"http://" + health + "/health", "http://" + ready + "/ready"} {
		if body := testenv.HTTPGet(t, u); body != "OK" {
			t.Errorf("%s answered %q after the old process stopped, want OK", u, body)
		}
	}
}
