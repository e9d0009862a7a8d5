package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/testenv"
)

// A setup is one row of scenario 8: what serves the pods' DNS. A new way to serve it (a search
// list source, a Corefile option) is one more row.
type setup struct {
	name      string
	stockDNS  bool   // kube-dns runs the stock Corefile (raceguard's block and collapse taken out)
	nodeLocal string // noNodeLocal, nodeLocalStock, nodeLocalInfer or nodeLocalChart
	// hierarchy: the raceguard that answers the pods knows no pod's list and trusts the namespace's
	// hierarchy (search infer), where the README's Bugs name one difference (documentedBug).
	hierarchy bool
}

// The node-local servers of scenario 8: the chart's Corefile (search pods: each pod's exact list
// from the API server), the same with search infer (the namespace's hierarchy, no pod watch), and
// the same without raceguard's block and collapse (the node set-up of nodelocal, the cache and the
// forwarder: what NodeLocal DNSCache runs).
const (
	noNodeLocal    = "none"
	nodeLocalInfer = "infer"
	nodeLocalStock = "stock"
	nodeLocalChart = "" // the chart's Corefile, as every other scenario runs it
)

// setups are scenario 8's rows; the first is the reference the others must equal.
var setups = []setup{
	{"cluster/stock", true, noNodeLocal, false},
	{"cluster/raceguard", false, noNodeLocal, false},
	{"node-local/stock", true, nodeLocalStock, false},
	{"node-local/raceguard-infer", false, nodeLocalInfer, true},
	{"node-local/raceguard", false, nodeLocalChart, false},
}

// clientNames are the names scenario 8 asks from every client pod: a Service in each form, a
// headless Service, a Service of another namespace, external names with more and fewer dots than
// ndots, a name the None pods' own search list completes, the node's domain, and names that exist
// nowhere (one of them a single label).
var clientNames = []string{
	"web", "web.default", "web.default.svc", "web.default.svc.cluster.local",
	"db", "db.default.svc.cluster.local", "api.shop", "api", "kubernetes.default",
	"example.org", "www.example.org", "many.example.com", "deep.a.b.c.d.example.com",
	"v4only", "v4only.example.net", "registry",
	"nosuch.example.org", "nosuchname", "no.such.svc.cluster.local",
}

// documentedBug is the README's entry (Bugs) for the only difference scenario 8 accepts.
const documentedBug = "A custom list that starts with a namespace domain and drops the cluster domains after it"

// scenarioClients (8): real clients side by side. From a pod of each dnsPolicy (ClusterFirst in two
// namespaces, ClusterFirstWithHostNet, Default, None with ndots 1, 2 and 5), glibc and musl look up
// clientNames under each setup: stock CoreDNS and raceguard, as kube-dns (cluster mode) and with a
// node-local server in front. Every setup must give every client the same answers as the first
// (0 differences); the queries the pods send are counted on the wire (node1's counters of port 53,
// before any NOTRACK or DNAT), and those that reach the internet at its server.
func scenarioClients(t *testing.T, w *world) {
	n := w.nodes[0]
	var clients []client
	for _, cp := range clientPods {
		for _, libc := range libcs {
			clients = append(clients, client{w.pods[cp.name], libc})
		}
	}
	ref := map[string]string{}
	for i, s := range setups {
		w.apply(t, s)
		m := startMeter(t, n)
		up0, err := w.c.UpstreamQueries()
		if err != nil {
			t.Fatal(err)
		}
		// One process per client, its names in turn: 14 at once, the machine's two CPUs' worth.
		rs := lookupAll(t, clients, 1, clientNames...)
		up1, err := w.c.UpstreamQueries()
		if err != nil {
			t.Fatal(err)
		}
		upstream := up1 - up0
		var tl tally
		var errs int
		if i == 0 {
			for _, r := range rs {
				ref[key(r.pod, r.libc, r.Name)] = r.String()
			}
			w.checkReference(t, ref)
		}
		// The one difference the README documents (Bugs: "A custom list that starts with a
		// namespace domain and drops the cluster domains after it"): a raceguard that knows no
		// pod's list trusts the namespace hierarchy of the None pods' list and completes names
		// their own resolver does not find. Counted apart.
		var documented []record
		rs = slices.DeleteFunc(rs, func(r record) bool {
			if s.hierarchy && strings.HasPrefix(r.pod, "none-") && r.String() != ref[key(r.pod, r.libc, r.Name)] {
				documented = append(documented, r)
				return true
			}
			return false
		})
		tl.add(rs, func(r record) string { return ref[key(r.pod, r.libc, r.Name)] })
		tl.lookups += len(documented)
		for _, r := range rs {
			if r.Err != "" {
				errs++
			}
		}
		m.into(t, &tl)
		wire := tl.node.PodUDP + tl.node.PodTCP + tl.node.HostUDP
		summary(t, w.mode, "8-clients/"+s.name, tl, fmt.Sprintf("documented_differences=%d not_found=%d queries_on_wire=%d upstream_queries=%d", len(documented), errs, wire, upstream))
		if len(documented) > 0 && !strings.Contains(string(testenv.ReadRepoFile(t, "README.md")), documentedBug) {
			t.Errorf("%s: %d answers differ as the README's Bugs said (%q), which it no longer does", s.name, len(documented), documentedBug)
		}
		for _, r := range documented[:min(4, len(documented))] {
			t.Logf("%s: documented difference: %s %s %s: %s, %s gave %s", s.name, r.pod, r.libc, r.Name, r, setups[0].name, ref[key(r.pod, r.libc, r.Name)])
		}
		if tl.failures != 0 {
			t.Errorf("%s: Expected every client's answers equal to %s's, %d of %d differ: %s", s.name, setups[0].name, tl.failures, tl.lookups, firstFew(tl.failed, 8))
		}
		if tl.stalls != 0 {
			t.Errorf("%s: Expected no lookup to stall, got %d: %s", s.name, tl.stalls, firstFew(tl.stalled, 4))
		}
		if s.nodeLocal != noNodeLocal && (tl.conntrack != 0 || tl.node.DNATUDP != 0) {
			t.Errorf("%s: Expected every pod query answered on the node, got %d conntrack entries, %s", s.name, tl.conntrack, tl.node)
		}
	}
}

// checkReference holds the reference answers to what the API server and the internet's zone say,
// so that equal answers are right answers too.
func (w *world) checkReference(t *testing.T, ref map[string]string) {
	t.Helper()
	db := w.ip["db-1"] + "," + w.ip["db-2"]
	if w.ip["db-2"] < w.ip["db-1"] {
		db = w.ip["db-2"] + "," + w.ip["db-1"]
	}
	for _, c := range []struct{ pod, name, want string }{
		{"cf", "web", w.ip["web"]}, {"cf", "db", db}, {"cf", "api.shop", w.ip["api"]}, {"cf", "api", "EAI_NONAME"},
		{"cf-shop", "api", w.ip["api"]}, {"cf", "kubernetes.default", w.ip["kubernetes"]},
		{"cf", "registry", "10.32.0.60,fd00:32::60"}, {"dflt", "web", "10.32.0.61"}, {"dflt", "api.shop", "EAI_NONAME"},
		{"none-ndots5", "v4only", "198.51.100.4"}, {"none-ndots5", "api", w.ip["api"]},
		{"cf", "nosuchname", "EAI_NONAME"}, {"cf", "example.org", "192.0.2.10,2001:db8::10"},
	} {
		for _, libc := range libcs {
			if got := ref[key(c.pod, libc, c.name)]; got != c.want {
				t.Errorf("reference %s: %s %s %s: %s, want %s", setups[0].name, c.pod, libc, c.name, got, c.want)
			}
		}
	}
}

// apply makes the cluster serve DNS as s says: kube-dns's containers restarted on the stock or the
// raceguard Corefile, node1's node-local server stopped or started on its Corefile.
func (w *world) apply(t *testing.T, s setup) {
	t.Helper()
	ctx := t.Context()
	n := w.nodes[0]
	cur := noNodeLocal
	if w.nl[n] != nil {
		cur = w.nlKind
	}
	if cur != s.nodeLocal {
		w.stopNodeLocal(t, n)
	}
	if w.stock != s.stockDNS {
		corefile, err := w.c.KubeDNSCorefile(ctx, s.stockDNS)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range w.dns {
			p.Kill()
			if err := p.Restart(ctx, corefile, 60*time.Second); err != nil {
				t.Fatalf("%v\n%s", err, tail(p.Log(), 20))
			}
		}
		w.stock = s.stockDNS
	}
	if s.nodeLocal != noNodeLocal && w.nl[n] == nil {
		corefile, err := w.c.NodeLocalCorefile(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch s.nodeLocal {
		case nodeLocalStock:
			if corefile, err = WithoutRaceguard(corefile); err != nil {
				t.Fatal(err)
			}
		case nodeLocalInfer:
			if !strings.Contains(corefile, "search pods\n") {
				t.Fatalf("no search pods in the node-local Corefile:\n%s", corefile)
			}
			corefile = strings.Replace(corefile, "search pods\n", "search infer\n", 1)
		}
		p := w.runNodeLocal(t, n, corefile)
		if err := p.WaitReady(ctx, 60*time.Second); err != nil {
			t.Fatalf("%v\n%s", err, tail(p.Log(), 20))
		}
		w.waitRules(t, n, p)
		w.nlKind = s.nodeLocal
	}
	// The kube-dns pods' readiness after a restart: kube-proxy has their endpoints again.
	if err := w.waitProxied(30 * time.Second); err != nil {
		t.Fatal(err)
	}
}
