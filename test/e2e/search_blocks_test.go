package e2e

import (
	"slices"
	"strings"
	"testing"

	_ "github.com/coredns/coredns/plugin/rewrite"
	_ "github.com/coredns/coredns/plugin/view"
	corev1 "k8s.io/api/core/v1"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/kubeapi"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// The two loopback clients of the multi-block tests: the second may not look up example.com.
const (
	clientOK      = "127.0.0.1"
	clientBlocked = "127.0.0.2"
)

// clusterFirst is the search list of a ClusterFirst pod in namespace default on the lab's node.
var clusterFirst = []string{"default.svc.cluster.local", "svc.cluster.local", "cluster.local", lab.NodeDomain}

// blocksNames are looked up through lab.Blocks: names each of its policies decides, and names of
// the cluster block itself.
var blocksNames = []string{
	"example.org", "www.example.org", "nosuch.example.org", // acl: refused to everyone
	"alias.example.com", "many.example.com", // rewrite; acl: refused to clientBlocked
	"v4only.example.net", "chain.example.net", // view: the hosts table first, then the internet
	"wiki.eu.corp.test", "intranet.corp.test", // the stub domain's own servers
	"nosuch", "wpad", "gateway", // one label: the name itself is served by no block (wpad. exists)
	"api.shop", "web", "nosuch.example.net", // the cluster block's own names; a name nowhere
}

// blocksServers starts, in this process, lab.Blocks (raceguard in its root block if root) without
// raceguard (stock) and with raceguard and options, beside a loopback upstream and corp.test's
// own servers, and returns their addresses.
func blocksServers(t *testing.T, options string, root bool) (stock, rg string) {
	t.Helper()
	up := testenv.LoopbackUpstream(t)
	corp, err := lab.RepoPath(lab.CorpZone)
	if err != nil {
		t.Fatal(err)
	}
	start := func(corefile string) string {
		t.Helper()
		i, udp, _, err := testenv.CoreDNSServerAndPorts(corefile)
		if err != nil {
			t.Fatalf("Could not start CoreDNS: %v\n%s", err, corefile)
		}
		t.Cleanup(func() { testenv.Stop(i) })
		return udp
	}
	stub := start("corp.test:0 {\n    file " + corp + " corp.test\n}\n")
	addrs := make([]string, 2)
	for i, rgOptions := range []string{"", options} {
		b := lab.Blocks{Raceguard: rgOptions, Root: root, Stub: stub, Blocked: clientBlocked + "/32"}
		text, err := lab.Render(b.Corefile(), lab.CorefileData{Port: "0", Metrics: "localhost:0", Upstream: up.Addr, ClusterZone: testenv.ClusterZone(t)}, t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		addrs[i] = start(text)
	}
	return addrs[0], addrs[1]
}

// walkLookup looks base up from the loopback address src at addr as a glibc AF_UNSPEC lookup of
// a ClusterFirst pod does (ndots:5, fewer dots than that): the A and the AAAA of each name of
// list, then of base itself, until one of them has addresses; a reply other than NOERROR or
// NXDOMAIN ends it. It returns the outcome (the sorted addresses, or what ended it) and the
// queries it sent.
func walkLookup(t *testing.T, src, addr, base string, list []string) (string, int) {
	t.Helper()
	queries := 0
	nodata := false
	for _, d := range append(slices.Clone(list), "") {
		name := dns.Fqdn(strings.TrimSuffix(base+"."+d, "."))
		var addrs []string
		for _, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
			r := exchangeFrom(t, src, addr, name, qtype)
			queries++
			if r.Rcode != dns.RcodeSuccess && r.Rcode != dns.RcodeNameError {
				return dns.RcodeToString[r.Rcode] + " at " + name, queries
			}
			for _, rr := range r.Answer {
				switch rr := rr.(type) {
				case *dns.A:
					addrs = append(addrs, rr.A.String())
				case *dns.AAAA:
					addrs = append(addrs, rr.AAAA.String())
				}
			}
			nodata = nodata || r.Rcode == dns.RcodeSuccess && len(r.Answer) == 0
		}
		if len(addrs) > 0 {
			slices.Sort(addrs)
			return strings.Join(addrs, ","), queries
		}
	}
	if nodata {
		return "NODATA", queries
	}
	return "NXDOMAIN", queries
}

// TestSearchBlocks proves, in this process, that a search walk crosses no policy of a Corefile
// in NodeLocal DNSCache's shape (lab.Blocks): each name it tries goes to the server block and the
// view the client's own query for that name would reach, through that block's acl (per client
// address, too), rewrite and forward, and a name no block serves is refused, not resolved. Every
// lookup ends as it does against the same Corefile without raceguard: as a cluster Deployment
// (the namespace's hierarchy only), and as a node-local server that knows each client's exact
// list from the pod watch, with raceguard in the cluster.local block and in the root block. The
// node-local server completes names beyond the cluster domains, and those completions carry what
// the policies of the other blocks give.
func TestSearchBlocks(t *testing.T) {
	for _, mode := range []struct {
		name string
		pods bool
		root bool
	}{
		{"deployment", false, false},
		{"node_local", true, false},
		{"node_local_root", true, true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			options := "node_search " + lab.NodeDomain
			if mode.pods {
				options, _ = testenv.PodWatch(t, lab.NodeDomain,
					kubeapi.Pod{Namespace: "default", Name: "ok", IP: clientOK}, kubeapi.Pod{Namespace: "default", Name: "blocked", IP: clientBlocked})
				options += "\n        node_local on"
			}
			stock, rg := blocksServers(t, options, mode.root)
			if mode.pods {
				testenv.WaitPodWatch(t)
			}
			var stockQ, rgQ int
			for _, src := range []string{clientOK, clientBlocked} {
				for _, base := range blocksNames {
					want, n := walkLookup(t, src, stock, base, clusterFirst)
					got, m := walkLookup(t, src, rg, base, clusterFirst)
					stockQ, rgQ = stockQ+n, rgQ+m
					if got != want {
						t.Errorf("%s looking up %s: Expected %s as without raceguard, got %s", src, base, want, got)
					}
				}
			}
			t.Logf("Queries for %d lookups: %d without raceguard, %d with", 2*len(blocksNames), stockQ, rgQ)
			if rgQ > stockQ {
				t.Errorf("Expected no more queries with raceguard, got %d against %d", rgQ, stockQ)
			}
			if mode.pods {
				if rgQ > stockQ*2/3 {
					t.Errorf("Expected the node-local server to complete beyond the cluster domains, saving a third of the queries or more; got %d against %d", rgQ, stockQ)
				}
				blocksCompletions(t, rg)
			} else if r := exchangeFrom(t, clientOK, rg, "v4only.example.net.default.svc.cluster.local.", dns.TypeA); r.Rcode != dns.RcodeNameError {
				// A Deployment without the pods' lists knows one only as far as the cluster domains.
				t.Errorf("Expected a name beyond the cluster domains passed through (its first try's own NXDOMAIN), got %v", r)
			}
		})
	}
}

// blocksCompletions checks, at a node-local raceguard that knows both clients' lists, what the
// first tries of names beyond the cluster domains get: a completion carrying what the block and
// view of the name give, or, where a policy refuses the name, the first try's own NXDOMAIN, so
// that the client walks on and meets the refusal itself.
func blocksCompletions(t *testing.T, rg string) {
	t.Helper()
	first := func(base string) string { return base + ".default.svc.cluster.local." }
	// completion checks that the first try of base is completed to target with the addresses want.
	completion := func(src, base, target string, want ...string) {
		t.Helper()
		r := exchangeFrom(t, src, rg, first(base), dns.TypeA)
		var got []string
		for _, rr := range r.Answer[min(1, len(r.Answer)):] {
			if a, ok := rr.(*dns.A); ok && rr.Header().Name == target {
				got = append(got, a.A.String())
			}
		}
		slices.Sort(got)
		if len(r.Answer) == 0 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[0].(*dns.CNAME).Target != target || !slices.Equal(got, want) {
			t.Errorf("%s %s: Expected a CNAME to %s and A %v, got %v", src, first(base), target, want, r)
		}
	}
	// refused checks that the first try of base gets its own NXDOMAIN, and base itself REFUSED.
	refused := func(src, base string) {
		t.Helper()
		if r := exchangeFrom(t, src, rg, first(base), dns.TypeA); r.Rcode != dns.RcodeNameError || len(r.Answer) != 0 {
			t.Errorf("%s %s: Expected the first try's own NXDOMAIN, got %v", src, first(base), r)
		}
		if r := exchangeFrom(t, src, rg, base+".", dns.TypeA); r.Rcode != dns.RcodeRefused {
			t.Errorf("%s %s.: Expected REFUSED, got %v", src, base, r)
		}
	}
	many := []string{"203.0.113.1", "203.0.113.2", "203.0.113.3"}
	completion(clientOK, "v4only.example.net", "v4only.example.net.", "10.9.0.4") // the view's hosts table
	completion(clientOK, "alias.example.com", "alias.example.com.", many...)      // rewritten, answer names restored
	completion(clientOK, "many.example.com", "many.example.com.", many...)
	completion(clientOK, "wiki.eu.corp.test", "wiki.eu.corp.test.", "10.8.0.91") // corp.test's own servers
	completion(clientOK, "gateway", "gateway.lab.internal.", "10.32.0.1")        // a one-label name, in the node's domain
	refused(clientOK, "example.org")
	refused(clientBlocked, "many.example.com") // the acl applies to the client's own address
	refused(clientOK, "wpad")                  // wpad. is served by no block, though the upstream has it
}

// TestSearchPodListAcrossBlocks: a pod adds corp.test to its list (dnsConfig.searches), and
// corp.test is a stub domain, its own server block, which raceguard in the root block never sees a
// try of. Its list comes from the pod's spec, not from its tries, so raceguard walks corp.test too:
// "wiki.eu" ends at wiki.eu.corp.test, as the client's own walk does, not at the public wiki.eu.
func TestSearchPodListAcrossBlocks(t *testing.T) {
	up := testenv.LoopbackUpstream(t)
	corp, err := lab.RepoPath(lab.CorpZone)
	if err != nil {
		t.Fatal(err)
	}
	options, _ := testenv.PodWatch(t, lab.NodeDomain, kubeapi.Pod{Namespace: "default", Name: "client", IP: clientOK,
		DNSConfig: &corev1.PodDNSConfig{Searches: []string{"corp.test"}}})
	corefile := func(raceguard string) string {
		return "corp.test:0 {\n    file " + corp + " corp.test\n}\n.:0 {\n" + raceguard +
			"    file " + testenv.ClusterZone(t) + " cluster.local\n    forward . " + up.Addr + "\n}\n"
	}
	var addrs []string
	for _, rg := range []string{"", "    raceguard {\n        " + options + "\n        node_local on\n        sibling_prefetch off\n    }\n"} {
		i, udp, _, err := testenv.CoreDNSServerAndPorts(corefile(rg))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { testenv.Stop(i) })
		addrs = append(addrs, udp)
	}
	testenv.WaitPodWatch(t)
	list := append(slices.Clone(clusterFirst), "corp.test")
	want, _ := walkLookup(t, clientOK, addrs[0], "wiki.eu", list)
	got, n := walkLookup(t, clientOK, addrs[1], "wiki.eu", list)
	if got != want {
		t.Errorf("Expected wiki.eu to end at wiki.eu.corp.test (%s) as without raceguard, got %s", want, got)
	}
	if n != 2 {
		t.Errorf("Expected the lookup completed in one pair of queries, took %d", n)
	}
}
