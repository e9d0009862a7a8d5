package cluster

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/restmapper"

	"github.com/raceguard/raceguard/test/lab"
)

// Addresses of the cluster.
const (
	NetIP       = "10.40.0.1"  // the network's router, and the control plane's address
	UpstreamIP  = "10.40.0.53" // the internet's DNS server, which the nodes' resolv.conf names
	APIServer   = "https://" + NetIP + ":6443"
	ServiceCIDR = "10.96.0.0/16"
	ClusterCIDR = "10.244.0.0/16"
	KubeDNSIP   = "10.96.0.10" // deploy/cluster's kube-dns Service
	LinkLocalIP = lab.LinkLocalIP
	NodeDomain  = "lab.internal" // the nodes' search domain
)

// token is the bearer token of the test and of the cluster's own components: a static token of
// system:masters (--token-auth-file).
const token = "raceguard-lab"

// serviceAccounts are the ServiceAccounts whose pods talk to the API server: kube-dns's
// (deploy/cluster) and the node-local server's (the chart's), for its pod watch. Each has a static
// token of its own (the lab runs no token controller), so that the API server's RBAC holds each to
// the roles its manifests grant.
var serviceAccounts = []string{"kube-system/coredns", "kube-system/" + NodeLocalRelease + "-node-local"}

// Cluster is the network and the control plane.
type Cluster struct {
	Bins    Binaries
	CoreDNS string // the project's CoreDNS build (make coredns)
	Net     string // the network namespace: the bridge, the control plane, the upstream
	Dir     string // logs, keys, kubeconfig, pods' files

	Kubeconfig string // the admin kubeconfig every component uses
	Client     kubernetes.Interface
	Dynamic    dynamic.Interface
	mapper     *restmapper.DeferredDiscoveryRESTMapper

	Up *lab.Process // the internet's DNS server, on UpstreamIP:53

	id    string         // the namespaces' name prefix
	procs []*lab.Process // etcd, kube-apiserver, the endpointslice controller
	nodes int            // node sets made so far, for their names
}

// Start builds the network and starts the control plane: etcd, kube-apiserver and
// the endpointslice controller, and the upstream. It needs root, the programs of Build and the CoreDNS
// build.
func Start(bins Binaries, coredns string) (c *Cluster, err error) {
	if err := lab.Available(); err != nil {
		return nil, err
	}
	c = &Cluster{Bins: bins, CoreDNS: coredns, id: lab.NewID()}
	c.Net = c.id + "net"
	if c.Dir, err = os.MkdirTemp("", c.id); err != nil {
		return nil, err
	}
	// kube-dns runs as its manifest's user, 65532, and reads its Corefile and kubeconfig here.
	if err := os.Chmod(c.Dir, 0o755); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			c.Close()
			c = nil
		}
	}()
	if err := lab.AddNamespace(c.Net); err != nil {
		return nil, err
	}
	for _, s := range [][]string{
		{"-n", c.Net, "link", "add", "br0", "type", "bridge"},
		{"-n", c.Net, "addr", "add", NetIP + "/24", "dev", "br0"},
		{"-n", c.Net, "addr", "add", UpstreamIP + "/24", "dev", "br0"},
		{"-n", c.Net, "link", "set", "br0", "up"},
		// The Services' range is not routed beyond the nodes: a packet to a ClusterIP that no
		// kube-proxy translated is lost, as in a cloud network, not refused.
		{"-n", c.Net, "route", "add", "blackhole", ServiceCIDR},
	} {
		if err := lab.IP(s...); err != nil {
			return nil, err
		}
	}
	if _, err := lab.NSExec(c.Net, "sysctl", "-qw", "net.ipv4.ip_forward=1"); err != nil {
		return nil, err
	}
	if err := c.startUpstream(); err != nil {
		return nil, err
	}
	if err := c.startControlPlane(); err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops everything and removes what the cluster made. Nodes must be closed first.
func (c *Cluster) Close() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		c.procs[i].Stop()
	}
	c.procs = nil
	if c.Up != nil {
		c.Up.Stop()
		c.Up = nil
	}
	lab.RemoveNamespace(c.Net)
	if c.Dir != "" && os.Getenv("RACEGUARD_CLUSTER_KEEP") == "" {
		os.RemoveAll(c.Dir)
	}
}

func (c *Cluster) startControlPlane() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return err
	}
	files := map[string]string{
		"sa.key":     string(pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})),
		"sa.pub":     string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub})),
		"tokens.csv": token + ",admin,admin,system:masters\n",
		"kubeconfig": kubeconfig(token),
	}
	for _, sa := range serviceAccounts {
		ns, name, _ := strings.Cut(sa, "/")
		tok := "raceguard-lab-sa-" + ns + "-" + name
		files["tokens.csv"] += fmt.Sprintf("%s,system:serviceaccount:%s:%s,%s,\"system:serviceaccounts,system:serviceaccounts:%s\"\n", tok, ns, name, name, ns)
		files[saKubeconfigName(ns, name)] = kubeconfig(tok)
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(c.Dir, name), []byte(body), 0o644); err != nil {
			return err
		}
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")

	etcd, err := c.start("etcd", c.Bins["etcd"], "--data-dir", filepath.Join(c.Dir, "etcd"),
		"--listen-client-urls", "http://127.0.0.1:2379", "--advertise-client-urls", "http://127.0.0.1:2379",
		"--listen-peer-urls", "http://127.0.0.1:2380", "--unsafe-no-fsync", "--log-level", "warn")
	if err != nil {
		return err
	}
	if err := waitHTTP(c.Net, "http://127.0.0.1:2379/health", etcd, 30*time.Second); err != nil {
		return err
	}
	api, err := c.start("kube-apiserver", c.Bins["kube-apiserver"],
		"--etcd-servers=http://127.0.0.1:2379",
		"--bind-address="+NetIP, "--advertise-address="+NetIP, "--secure-port=6443",
		"--cert-dir="+filepath.Join(c.Dir, "apiserver"),
		"--service-cluster-ip-range="+ServiceCIDR,
		"--authorization-mode=RBAC", "--token-auth-file="+filepath.Join(c.Dir, "tokens.csv"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+filepath.Join(c.Dir, "sa.pub"),
		"--service-account-signing-key-file="+filepath.Join(c.Dir, "sa.key"),
		// No token controller runs: pods need no ServiceAccount object.
		"--disable-admission-plugins=ServiceAccount",
		"--enable-priority-and-fairness=false", "--profiling=false")
	if err != nil {
		return err
	}
	if err := waitHTTP(c.Net, APIServer+"/readyz", api, 60*time.Second); err != nil {
		return err
	}
	// kube-controller-manager's endpointslice controller alone: EndpointSlices from Services and
	// the pods' status.
	esc, err := c.start("endpointslice", c.Bins["endpointslice"], "-kubeconfig", c.Kubeconfig, "-healthz", "127.0.0.1:10257")
	if err != nil {
		return err
	}
	if err := waitHTTP(c.Net, "http://127.0.0.1:10257/healthz", esc, 60*time.Second); err != nil {
		return err
	}
	return c.connect()
}

// startUpstream runs the internet's DNS server: the project's CoreDNS, authoritative for test/lab's
// root zone (external.db), in the network namespace.
func (c *Cluster) startUpstream() error {
	zone, err := lab.RepoPath("test/lab/external.db")
	if err != nil {
		return err
	}
	corefile := ".:53 {\n    bind " + UpstreamIP + "\n    prometheus " + UpstreamIP + ":9153\n    file " + zone + " .\n}\n"
	c.Up, err = lab.StartProcess(c.Net, c.CoreDNS, c.Dir, "upstream", corefile, UpstreamIP+":53")
	return err
}

// UpstreamQueries returns how many queries the internet's DNS server has answered.
func (c *Cluster) UpstreamQueries() (int, error) {
	text, err := lab.ScrapeURL(c.Net, "http://"+UpstreamIP+":9153/metrics")
	if err != nil {
		return 0, err
	}
	return int(lab.ParseMetrics(text).Sum("coredns_dns_requests_total", nil)), nil
}

func saKubeconfigName(ns, name string) string { return "kubeconfig." + ns + "." + name }

// ServiceAccountKubeconfig returns the kubeconfig of ServiceAccount ns/name (one of
// serviceAccounts): what its pods use in place of the token the kubelet would mount.
func (c *Cluster) ServiceAccountKubeconfig(ns, name string) (string, error) {
	path := filepath.Join(c.Dir, saKubeconfigName(ns, name))
	if _, err := os.Stat(path); err != nil {
		return "", fmt.Errorf("no token for service account %s/%s in the lab", ns, name)
	}
	return path, nil
}

// kubeconfig is a kubeconfig for the API server with the bearer token tok.
func kubeconfig(tok string) string {
	return `apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster: {server: "` + APIServer + `", insecure-skip-tls-verify: true}
users:
- name: user
  user: {token: ` + tok + `}
contexts:
- name: lab
  context: {cluster: lab, user: user}
current-context: lab
`
}

// start runs a control plane program in the network namespace.
func (c *Cluster) start(name, bin string, args ...string) (*lab.Process, error) {
	p, err := lab.StartCommand(c.Net, c.Dir, name, nil, append([]string{bin}, args...)...)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	c.procs = append(c.procs, p)
	return p, nil
}

// connect makes the API clients, whose connections are made in the network namespace.
func (c *Cluster) connect() error {
	cfg := &rest.Config{
		Host:            APIServer,
		BearerToken:     token,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true},
		Dial:            c.dial,
		QPS:             100,
		Burst:           200,
		Timeout:         30 * time.Second,
	}
	var err error
	if c.Client, err = kubernetes.NewForConfig(cfg); err != nil {
		return err
	}
	if c.Dynamic, err = dynamic.NewForConfig(cfg); err != nil {
		return err
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	c.mapper = restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	return nil
}

func (c *Cluster) dial(ctx context.Context, network, addr string) (conn net.Conn, err error) {
	err = lab.Do(c.Net, func() (err error) {
		var d net.Dialer
		conn, err = d.DialContext(ctx, network, addr)
		return err
	})
	return conn, err
}

// httpGet fetches url from a socket in namespace ns, with the cluster's token and without checking
// the server's certificate, and returns the body of a 200 answer.
func httpGet(ns, url string, timeout time.Duration) (string, error) {
	tr := lab.NSTransport(ns, timeout)
	tr.TLSClientConfig, tr.DisableKeepAlives = &tls.Config{InsecureSkipVerify: true}, true
	client := &http.Client{Timeout: timeout, Transport: tr}
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	return lab.Fetch(client, req)
}

// waitHTTP waits, at most timeout, until url answers 200 from namespace ns, failing with p's log if
// p exits or the time runs out.
func waitHTTP(ns, url string, p *lab.Process, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		_, err := httpGet(ns, url, 2*time.Second)
		if err == nil {
			return nil
		}
		if p != nil && p.Exited() {
			return fmt.Errorf("%s exited: %s", url, tail(p.Log(), 40))
		}
		if time.Now().After(deadline) {
			var log string
			if p != nil {
				log = tail(p.Log(), 40)
			}
			return fmt.Errorf("%s did not answer within %s (%v): %s", url, timeout, err, log)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
