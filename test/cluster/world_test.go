package cluster

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// The cluster is shared by every test of the package: the control plane starts once (its
// objects stay), nodes are made per kube-proxy mode (newWorld).
var shared struct {
	once sync.Once
	c    *Cluster
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if shared.c != nil {
		shared.c.Close()
	}
	os.Exit(code)
}

// require skips t where the cluster cannot run (not root, a tool missing), unless
// RACEGUARD_LAB=require, where it fails instead.
func require(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	if os.Getenv("RACEGUARD_LAB") == "require" {
		t.Fatalf("RACEGUARD_LAB=require: %v", err)
	}
	t.Skipf("Skipping cluster test: %v", err)
}

// cluster returns the shared cluster, starting it on the first call: the programs built (once per
// machine), the control plane up, and deploy/cluster, the chart's rendering and the test's own
// namespaces and Services applied.
func cluster(t *testing.T) *Cluster {
	t.Helper()
	require(t, lab.Available())
	for _, tool := range []string{"conntrack", "iptables", "setpriv", "unshare"} {
		if _, err := exec.LookPath(tool); err != nil {
			require(t, fmt.Errorf("%s not found (apt-get install conntrack iptables util-linux)", tool))
		}
	}
	shared.once.Do(func() { shared.c, shared.err = startShared(t) })
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.c
}

func startShared(t *testing.T) (*Cluster, error) {
	start := time.Now()
	bins, err := Build()
	if err != nil {
		return nil, err
	}
	built := time.Since(start)
	coredns, err := testenv.CoreDNSBinary()
	if err != nil {
		return nil, err
	}
	chart, err := lab.RepoPath("charts/raceguard")
	if err != nil {
		return nil, err
	}
	rendered, err := testenv.Helm(t, "template", NodeLocalRelease, chart, "--namespace", "kube-system")
	if err != nil {
		return nil, err
	}
	c, err := Start(bins, coredns)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for _, step := range []func() error{
		func() error { return c.InstallKubeDNS(ctx) },
		func() error { return c.InstallNodeLocal(ctx, []byte(rendered)) },
		func() error { return c.EnsureNamespace(ctx, "shop") },
		func() error { return c.Apply(ctx, "default", []byte(testServices)) },
	} {
		if err := step(); err != nil {
			c.Close()
			return nil, err
		}
	}
	t.Logf("cluster: programs ready in %s, control plane up in %s", built.Round(time.Second), (time.Since(start) - built).Round(time.Second))
	return c, nil
}

// testServices are the Services the lookups ask for: a ClusterIP Service, a headless one (whose
// names are its pods' addresses) and one in another namespace.
const testServices = `
apiVersion: v1
kind: Service
metadata: {name: web, namespace: default}
spec:
  selector: {app: web}
  ports: [{name: http, port: 80, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: db, namespace: default}
spec:
  clusterIP: None
  selector: {app: db}
  ports: [{name: sql, port: 5432, protocol: TCP}]
---
apiVersion: v1
kind: Service
metadata: {name: api, namespace: shop}
spec:
  selector: {app: api}
  ports: [{name: http, port: 80, protocol: TCP}]
`

// world is the cluster's nodes for one kube-proxy mode, with kube-dns on both, the test
// Services' backends, and the client pods on node1, each dnsPolicy of them.
type world struct {
	c     *Cluster
	mode  string
	nodes []*Node
	dns   []*Pod            // the kube-dns replicas, one per node
	pods  map[string]*Pod   // the client pods, by name
	up    string            // kube-dns-upstream's ClusterIP
	ip    map[string]string // the test Services' ClusterIPs and backends' pod IPs, by name
	stock bool              // kube-dns runs the stock Corefile

	base   map[string]string // the baseline answers (recordBaseline), by key
	nl     map[*Node]*Pod    // each node's running node-local pod
	nlKind string            // node1's node-local Corefile, as scenario 8 names it ("" for the chart's)
	nlSeq  int               // node-local pods made, for their names

	orderProblems []string // what waitRuleOrder found wrong, in order
}

// The client pods: name, namespace and DNS settings.
var clientPods = []struct {
	name, namespace string
	hostNetwork     bool
	policy          corev1.DNSPolicy
	config          *corev1.PodDNSConfig
}{
	{"cf", "default", false, corev1.DNSClusterFirst, nil},
	{"cf-shop", "shop", false, corev1.DNSClusterFirst, nil},
	{"hostnet", "default", true, corev1.DNSClusterFirstWithHostNet, nil},
	{"dflt", "default", false, corev1.DNSDefault, nil},
	{"none-ndots1", "default", false, corev1.DNSNone, noneConfig("1")},
	{"none-ndots2", "default", false, corev1.DNSNone, noneConfig("2")},
	{"none-ndots5", "default", false, corev1.DNSNone, noneConfig("5")},
}

// noneConfig is the dnsConfig of a dnsPolicy None pod: the kube-dns ClusterIP, a search list of
// its own (another namespace's, then an external domain) and ndots.
func noneConfig(ndots string) *corev1.PodDNSConfig {
	return &corev1.PodDNSConfig{
		Nameservers: []string{KubeDNSIP},
		Searches:    []string{"shop.svc.cluster.local", "svc.cluster.local", "example.net"},
		Options:     []corev1.PodDNSConfigOption{{Name: "ndots", Value: &ndots}, {Name: "edns0"}},
	}
}

// newWorld makes the nodes for mode, starts kube-proxy on them, runs kube-dns (the stock or the
// deploy/cluster Corefile) and the pods, and removes it all when t ends.
func newWorld(t *testing.T, mode string, stock bool) *world {
	t.Helper()
	c := cluster(t)
	ctx := t.Context()
	w := &world{c: c, mode: mode, pods: map[string]*Pod{}, ip: map[string]string{}, stock: stock,
		base: map[string]string{}, nl: map[*Node]*Pod{}}
	nodes, err := c.AddNodes(ctx, mode, 2)
	if err != nil {
		t.Fatal(err)
	}
	w.nodes = nodes
	t.Cleanup(func() {
		for _, n := range nodes {
			n.Close()
		}
	})
	for _, n := range nodes {
		if err := n.StartProxy(); err != nil {
			t.Fatalf("%s: kube-proxy: %v", n.Name, err)
		}
	}
	if w.up, err = c.ServiceIP(ctx, "kube-system", "kube-dns-upstream"); err != nil {
		t.Fatal(err)
	}
	corefile, err := c.KubeDNSCorefile(ctx, stock)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range nodes {
		p, err := n.RunKubeDNS(ctx, fmt.Sprintf("coredns-%c", 'a'+i), corefile)
		if err != nil {
			t.Fatalf("kube-dns on %s: %v\n%s", n.Name, err, p.Log())
		}
		w.dns = append(w.dns, p)
	}
	// The Services' backends: pods without a container, Ready.
	for _, b := range []struct {
		name, namespace, app string
		node                 int
	}{{"web-1", "default", "web", 1}, {"db-1", "default", "db", 0}, {"db-2", "default", "db", 1}, {"api-1", "shop", "api", 1}} {
		p, err := nodes[b.node].RunPod(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: b.name, Namespace: b.namespace, Labels: map[string]string{"app": b.app}},
			Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "none"}}},
		}, true)
		if err != nil {
			t.Fatal(err)
		}
		w.ip[b.name] = p.IP
	}
	for _, cp := range clientPods {
		p, err := nodes[0].RunPod(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: cp.name, Namespace: cp.namespace},
			Spec: corev1.PodSpec{
				Containers:  []corev1.Container{{Name: "client", Image: "none"}},
				HostNetwork: cp.hostNetwork, DNSPolicy: cp.policy, DNSConfig: cp.config,
			},
		}, true)
		if err != nil {
			t.Fatal(err)
		}
		w.pods[cp.name] = p
		if !cp.hostNetwork {
			if err := nodes[0].CountClient(p.IP); err != nil {
				t.Fatal(err)
			}
		}
	}
	var want []string
	for _, p := range w.dns {
		want = append(want, p.IP)
	}
	for _, svc := range []string{"kube-dns", "kube-dns-upstream"} {
		if err := c.WaitEndpoints(ctx, "kube-system", svc, 30*time.Second, want...); err != nil {
			t.Fatal(err)
		}
	}
	for _, svc := range []struct{ ns, name string }{{"default", "web"}, {"default", "kubernetes"}, {"shop", "api"}} {
		if w.ip[svc.name], err = c.ServiceIP(ctx, svc.ns, svc.name); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.waitProxied(30 * time.Second); err != nil {
		t.Fatal(err)
	}
	w.recordBaseline(t, loopNames...)
	return w
}

// waitProxied waits until every node answers through kube-proxy's DNAT to kube-dns, at the
// kube-dns and the kube-dns-upstream ClusterIPs: the EndpointSlices are programmed.
func (w *world) waitProxied(timeout time.Duration) error {
	for _, n := range w.nodes {
		for _, ip := range []string{KubeDNSIP, w.up} {
			deadline := time.Now().Add(timeout)
			for {
				err := probeDNS(n.NS, ip+":53")
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("%s: no answer at %s through kube-proxy within %s: %v\n%s", n.Name, ip, timeout, err, tail(n.ProxyLog(), 20))
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return nil
}
