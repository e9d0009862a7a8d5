package artifacts

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
	appsv1 "k8s.io/api/apps/v1"
)

// The chart's Corefile fitted to a cluster: per-zone server blocks, a Corefile of one's own, the
// observe-only variant, and NodeLocal DNSCache's Corefile carried over. Each is rendered, linted,
// and started with the built binary (without its nodelocal block, which would set this machine up:
// test/labtest runs that part), and its blocks send each name where they say.

// block is one server block of a Corefile: its zone, its forward targets and force_tcp.
type block struct {
	zone     string
	forward  []string
	forceTCP bool
}

// serverBlocks returns the server blocks of corefile, in order.
func serverBlocks(corefile string) []block {
	var out []block
	depth := 0
	for _, line := range strings.Split(corefile, "\n") {
		if i := strings.Index(line, "#"); i >= 0 {
			line = line[:i]
		}
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		switch {
		case depth == 0 && f[len(f)-1] == "{":
			z, _, _ := strings.Cut(f[0], ":")
			out = append(out, block{zone: z})
		case depth == 1 && f[0] == "forward" && len(f) > 2:
			for _, a := range f[2:] {
				if a != "{" {
					out[len(out)-1].forward = append(out[len(out)-1].forward, a)
				}
			}
		case depth == 2 && f[0] == "force_tcp":
			out[len(out)-1].forceTCP = true
		}
		for _, w := range f {
			switch w {
			case "{":
				depth++
			case "}":
				depth--
			}
		}
	}
	return out
}

// zoneUpstreams are the upstreams a started Corefile's blocks forward to: kube-dns (the sample
// cluster zone and the "internet"), a stub domain's server, and the node's resolv.conf's.
type zoneUpstreams struct {
	kube, stub, node *lab.Upstream
}

func startZoneUpstreams(t *testing.T) zoneUpstreams {
	t.Helper()
	kube, err := lab.StartKubeUpstream("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kube.Close)
	u := zoneUpstreams{kube: kube, stub: testenv.LoopbackUpstream(t), node: testenv.LoopbackUpstream(t)}
	t.Setenv("KUBE_DNS_UPSTREAM_SERVICE_HOST", kube.Addr)
	t.Setenv("KUBE_DNS_SERVICE_HOST", kube.Addr)
	return u
}

// startCorefile starts the built binary on a rendered node-local Corefile made servable here (its
// nodelocal stanza out, bound to 127.0.0.1, every block on one free port, the node's resolv.conf
// and the stub domain's servers replaced by the test's upstreams: forward reads a resolv.conf's
// nameservers on port 53, and the test's have ports of their own; raceguard's node and pod watch
// the test's, withNodeAndAPI) and returns its address.
func startCorefile(t *testing.T, corefile string, u zoneUpstreams, stubServers ...string) string {
	t.Helper()
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	port := testenv.FreeUDPTCPPort(t)
	c := servable(corefile, map[string]string{"health": testenv.FreePort(t), "ready": testenv.FreePort(t), "prometheus": testenv.FreePort(t)})
	c = withNodeAndAPI(t, c, nil)
	c = regexp.MustCompile(`(?m)^(\s*\S+):0 \{$`).ReplaceAllString(c, "${1}:"+port+" {")
	c = strings.ReplaceAll(c, "forward . /etc/resolv.conf", "forward . "+u.node.Addr)
	for _, s := range stubServers {
		c = strings.Replace(c, s, u.stub.Addr, 1)
	}
	addr := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, t.TempDir(), "zones", c, addr)
	if err != nil {
		t.Fatalf("%v\n%s", err, c)
	}
	t.Cleanup(p.Stop)
	return addr
}

// ask sends one query and returns the reply.
func ask(t *testing.T, addr, name string, qtype uint16) *dns.Msg {
	t.Helper()
	r, err := lab.Exchange("", "udp", addr, new(dns.Msg).SetQuestion(name, qtype), 5*time.Second)
	if err != nil {
		t.Fatalf("%s %s: %v", name, dns.TypeToString[qtype], err)
	}
	return r
}

// checkRouted sends a name of each zone kind and checks which upstream it reached.
func checkRouted(t *testing.T, addr string, u zoneUpstreams) {
	t.Helper()
	if got := answerA(ask(t, addr, "kubernetes.default.svc.cluster.local.", dns.TypeA)); got != "10.96.0.1" {
		t.Errorf("kubernetes.default.svc.cluster.local A: %q, want 10.96.0.1 from kube-dns", got)
	}
	ask(t, addr, "10.0.96.10.in-addr.arpa.", dns.TypePTR)
	ask(t, addr, "api.consul.local.", dns.TypeA)
	if got := answerA(ask(t, addr, "example.org.", dns.TypeA)); got != "192.0.2.10" {
		t.Errorf("example.org A: %q, want 192.0.2.10 from the node's resolvers", got)
	}
	for _, c := range []struct {
		name  string
		qtype uint16
		want  *lab.Upstream
	}{
		{"10.0.96.10.in-addr.arpa.", dns.TypePTR, u.kube},
		{"api.consul.local.", dns.TypeA, u.stub},
		{"example.org.", dns.TypeA, u.node},
	} {
		for _, up := range []*lab.Upstream{u.kube, u.stub, u.node} {
			if n := up.Queries(c.name, c.qtype); (up == c.want) != (n > 0) {
				t.Errorf("%s %s: %d queries at upstream %s; want it at %s only", c.name, dns.TypeToString[c.qtype], n, up.Addr, c.want.Addr)
			}
		}
	}
}

// nodeLocalDNSCacheLayout is NodeLocal DNSCache's layout in the chart's values.
const nodeLocalDNSCacheLayout = `zones:
  - zone: cluster.local
    forward: kube-dns
    forceTCP: true
  - zone: in-addr.arpa
    forward: kube-dns
    forceTCP: true
  - zone: ip6.arpa
    forward: kube-dns
    forceTCP: true
  - zone: .
    forward: node
  - zone: consul.local
    forward: [10.150.0.1, 10.150.0.2]
`

// TestChartZones renders the chart with per-zone server blocks (NodeLocal DNSCache's layout and a
// stub domain), lints it, checks each block, and starts it: each name goes to its zone's upstream.
func TestChartZones(t *testing.T) {
	chart := chartPath(t)
	values := chartValuesFile(t, nodeLocalDNSCacheLayout)
	if out, err := testenv.Helm(t, "lint", "--strict", "--namespace", "kube-system", chart, "--values", values); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b := mustTemplate(t, chart, "raceguard", "kube-system", []string{values})
	corefile := corefileOf(t, b, oneOf[*appsv1.DaemonSet](t, b).Spec.Template)
	want := []block{
		{"cluster.local", []string{"{$KUBE_DNS_UPSTREAM_SERVICE_HOST}"}, true},
		{"in-addr.arpa", []string{"{$KUBE_DNS_UPSTREAM_SERVICE_HOST}"}, true},
		{"ip6.arpa", []string{"{$KUBE_DNS_UPSTREAM_SERVICE_HOST}"}, true},
		{".", []string{"/etc/resolv.conf"}, false},
		{"consul.local", []string{"10.150.0.1", "10.150.0.2"}, false},
	}
	if got := serverBlocks(corefile); !slices.EqualFunc(got, want, func(a, b block) bool {
		return a.zone == b.zone && a.forceTCP == b.forceTCP && slices.Equal(a.forward, b.forward)
	}) {
		t.Errorf("Blocks %+v, want %+v:\n%s", got, want, corefile)
	}
	// The node set-up, raceguard and collapse in the first block only; every block binds the
	// node-local addresses.
	for _, d := range []string{"nodelocal", "raceguard", "collapse", "health", "ready", "reload"} {
		if n := len(directiveArgs(corefile, d)); n != 1 {
			t.Errorf("%s %d times, want once (the first block)", d, n)
		}
	}
	if n := len(directiveArgs(corefile, "bind")); n != len(want) {
		t.Errorf("bind in %d blocks, want every one of %d", n, len(want))
	}
	if loops := directiveArgs(corefile, "loop"); len(loops) != 1 {
		t.Errorf("loop %d times, want once, in the block that forwards to the node's resolv.conf", len(loops))
	}
	startCorefileChecked(t, corefile)
}

func startCorefileChecked(t *testing.T, corefile string) {
	t.Helper()
	u := startZoneUpstreams(t)
	addr := startCorefile(t, corefile, u, "10.150.0.1 10.150.0.2")
	checkRouted(t, addr, u)
}

// TestChartZonesRejects: the first zone carries the node set-up and must go to kube-dns; a zone
// given twice is an error.
func TestChartZonesRejects(t *testing.T) {
	chart := chartPath(t)
	for _, tc := range []struct{ values, want string }{
		{"zones:\n  - zone: .\n    forward: node\n", "the first zone, ., must forward to kube-dns"},
		{"zones:\n  - zone: .\n    forward: kube-dns\n  - zone: .\n    forward: node\n", "zones: . is given twice"},
		{"zones:\n  - zone: .\n    forward: kubedns\n", "forward"},
		{"zones: []\n", "zones"},
	} {
		_, err := helmTemplate(t, chart, "raceguard", "kube-system", []string{chartValuesFile(t, tc.values)})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: want an error naming %q, got %v", tc.values, tc.want, err)
		}
	}
}

// TestChartRawCorefile: the corefile value replaces the rendered Corefile as it is; it lints and
// starts.
func TestChartRawCorefile(t *testing.T) {
	chart := chartPath(t)
	raw := `cluster.local:53 {
    bind 169.254.20.10 {$KUBE_DNS_SERVICE_HOST}
    nodelocal {
        health_port 8080
    }
    errors
    health 169.254.20.10:8080
    ready 169.254.20.10:8181
    prometheus :9153
    raceguard
    cache 30
    forward . {$KUBE_DNS_UPSTREAM_SERVICE_HOST} {
        expire 2s
        max_age 2s
        force_tcp
    }
}
consul.local:53 {
    bind 169.254.20.10 {$KUBE_DNS_SERVICE_HOST}
    forward . 10.150.0.1
}
.:53 {
    bind 169.254.20.10 {$KUBE_DNS_SERVICE_HOST}
    cache 30
    forward . /etc/resolv.conf
}
`
	f := filepath.Join(t.TempDir(), "Corefile")
	if err := os.WriteFile(f, []byte(raw), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := testenv.Helm(t, "lint", "--strict", "--namespace", "kube-system", chart, "--set-file", "corefile="+f); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b := renderArgs(t, "template", "raceguard", chart, "--namespace", "kube-system", "--set-file", "corefile="+f)
	if got := corefileOf(t, b, oneOf[*appsv1.DaemonSet](t, b).Spec.Template); got != raw {
		t.Errorf("Corefile:\n%s", lineDiff(raw, got))
	}
	u := startZoneUpstreams(t)
	addr := startCorefile(t, raw, u, "10.150.0.1")
	if got := answerA(ask(t, addr, "kubernetes.default.svc.cluster.local.", dns.TypeA)); got != "10.96.0.1" {
		t.Errorf("kubernetes.default.svc.cluster.local A: %q, want 10.96.0.1", got)
	}
	ask(t, addr, "api.consul.local.", dns.TypeA)
	if u.stub.Queries("api.consul.local.", dns.TypeA) != 1 {
		t.Error("api.consul.local A did not reach the stub domain's server")
	}
}

// TestChartObserve: with observe=true the chart renders deploy/node-local-observe object for object
// and passes its checks; its Corefile starts and answers through kube-dns's ClusterIP.
func TestChartObserve(t *testing.T) {
	chart := chartPath(t)
	if out, err := testenv.Helm(t, "lint", "--strict", "--namespace", "kube-system", chart, "--set", "observe=true"); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b := mustTemplate(t, chart, "raceguard", "kube-system", nil, "observe=true")
	compareObjects(t, b, loadBundle(t, "node-local-observe"))
	pod := checkObserveBundle(t, b)
	u := startZoneUpstreams(t)
	addr := startCorefile(t, corefileOf(t, b, pod), u)
	if got := answerA(ask(t, addr, "kubernetes.default.svc.cluster.local.", dns.TypeA)); got != "10.96.0.1" {
		t.Errorf("kubernetes.default.svc.cluster.local A: %q, want 10.96.0.1 through kube-dns", got)
	}
	if u.kube.Queries("kubernetes.default.svc.cluster.local.", dns.TypeA) != 1 {
		t.Error("The query did not reach kube-dns (KUBE_DNS_SERVICE_HOST)")
	}
}

// TestNodeLocalDNSCacheMigration runs NodeLocal DNSCache's Corefile (testdata/nodelocaldns.Corefile:
// its manifest's blocks, placeholders and all, and a stub domain as node-cache appends it) through
// the migration's mapping, hack/nodelocaldns-values.sh: the chart rendered with what it prints has
// a block for each of NodeLocal's, to the same upstream over the same transport, lints and starts.
func TestNodeLocalDNSCacheMigration(t *testing.T) {
	script, err := lab.RepoPath("hack/nodelocaldns-values.sh")
	if err != nil {
		t.Fatal(err)
	}
	in, err := os.Open("testdata/nodelocaldns.Corefile")
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	cmd := exec.CommandContext(t.Context(), script)
	cmd.Stdin = in
	values, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s: %v", script, err)
	}
	t.Logf("hack/nodelocaldns-values.sh:\n%s", values)
	f := chartValuesFile(t, string(values))
	chart := chartPath(t)
	if out, err := testenv.Helm(t, "lint", "--strict", "--namespace", "kube-system", chart, "--values", f); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	b := mustTemplate(t, chart, "raceguard", "kube-system", []string{f})
	corefile := corefileOf(t, b, oneOf[*appsv1.DaemonSet](t, b).Spec.Template)

	// NodeLocal's blocks, with node-cache's substitutions as raceguard's Corefile spells them.
	nodeLocal, err := os.ReadFile("testdata/nodelocaldns.Corefile")
	if err != nil {
		t.Fatal(err)
	}
	subst := strings.NewReplacer("__PILLAR__DNS__DOMAIN__", "cluster.local", "__PILLAR__CLUSTER__DNS__", "{$KUBE_DNS_UPSTREAM_SERVICE_HOST}",
		"__PILLAR__UPSTREAM__SERVERS__", "/etc/resolv.conf")
	want := map[string]block{}
	for _, bl := range serverBlocks(subst.Replace(string(nodeLocal))) {
		want[bl.zone] = bl
	}
	got := serverBlocks(corefile)
	if len(got) != len(want) {
		t.Errorf("%d blocks, want NodeLocal's %d:\n%s", len(got), len(want), corefile)
	}
	for _, g := range got {
		w, ok := want[g.zone]
		if !ok || !slices.Equal(g.forward, w.forward) || g.forceTCP != w.forceTCP {
			t.Errorf("Block %s: forward %v force_tcp %v; NodeLocal's: %+v", g.zone, g.forward, g.forceTCP, w)
		}
	}
	if got[0].zone != "cluster.local" {
		t.Errorf("First block %s, want the cluster domain's, with the node set-up", got[0].zone)
	}
	// Metrics move from node-cache's :9253 to :9153.
	if p := directiveArgs(corefile, "prometheus"); len(p) == 0 || p[0][0] != ":9153" {
		t.Errorf("prometheus %v, want :9153", p)
	}
	startCorefileChecked(t, corefile)
}
