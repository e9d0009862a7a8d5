package test

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// zoo is what pods look up: every kind of name a search list treats differently.
var zoo = []string{
	// services in the pod's own namespace, another namespace, in-cluster aliases
	"web", "Web", "kubernetes.default", "api.shop", "API.Shop", "cart.shop", "kube-dns.kube-system",
	"metrics-server.kube-system.svc", "web.default.svc.cluster.local",
	// headless services and their pods, pod A records
	"db.shop", "db-0.db.shop", "db-9.db.shop", "10-244-1-10.shop.pod",
	// A-only and AAAA-only names, in the cluster and outside
	"legacy", "v6only", "v4only.example.net", "v6only.example.net",
	// external names, CNAME chains, an ExternalName service, wildcards, many addresses
	"example.org", "www.example.org", "WwW.Mixed.Example.org", "chain.example.net", "docs",
	"foo.wild.example.com", "many.example.com",
	// names that do not exist, or exist without addresses
	"nosuch", "nosuch.shop", "nosuch.example.org", "x.y.z.nonexistent", "empty.example.com",
	"dangling.example.com", "shop",
	// trailing dots and names with at least ndots dots: no search, or search last
	"example.org.", "nosuch.example.org.", "web.default.svc.cluster.local.", "deep.a.b.c.d.example.com",
	// the node's own search domain, and a mistyped service that exists there under its short name
	"gateway", "registry", "gateway.shop", "registry.default",
	// typos whose later tries look like first tries in a namespace "cnn" that does not exist
	"www.example.org.cnn", "api.shop.cnn",
	// /etc/hosts
	"localhost",
}

type lookupKey struct {
	libc   lab.Libc
	family lab.Family
	name   string
}

// lookupAll resolves the zoo with both C libraries and every family, and returns the outcomes
// and the UDP queries the clients sent.
func lookupAll(t *testing.T, l *lab.Lab, names []string) (map[lookupKey]string, int) {
	t.Helper()
	out := map[lookupKey]string{}
	before, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		for _, family := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
			rs, err := l.Lookup(libc, family, lab.DefaultResolvConf(), 8, names...)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				out[lookupKey{libc, family, r.Name}] = r.String()
			}
		}
	}
	after, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return out, after.Sub(before).ClientUDP
}

// diff lists where got differs from want.
func diff(want, got map[lookupKey]string) []string {
	var out []string
	for k, w := range want {
		if g := got[k]; g != w {
			out = append(out, fmt.Sprintf("%s %s %q: without raceguard %s, with %s", k.libc, k.family, k.name, w, g))
		}
	}
	slices.Sort(out)
	return out
}

// TestSearchDifferential is the correctness contract of search completion: for every name of the
// zoo, real glibc and musl clients, asking for AF_UNSPEC, AF_INET and AF_INET6, end with the same
// addresses or the same error with raceguard as with stock CoreDNS without autopath. Two DNS
// servers sit behind the DNAT, so a client's later tries can reach a server that did not see its
// first one.
func TestSearchDifferential(t *testing.T) {
	l := testenv.NewLab(t)

	testenv.StartDNS(t, l, lab.StockCorefile)
	stock, stockQueries := lookupAll(t, l, zoo)
	testenv.StartDNS(t, l, lab.RaceguardCorefile)
	rg, rgQueries := lookupAll(t, l, zoo)

	if len(stock) != 6*len(zoo) {
		t.Fatalf("Expected %d outcomes, got %d", 6*len(zoo), len(stock))
	}
	for _, d := range diff(stock, rg) {
		t.Error(d)
	}
	t.Logf("Queries sent for the whole zoo: %d without raceguard, %d with", stockQueries, rgQueries)
	if rgQueries >= stockQueries*3/4 {
		t.Errorf("Expected far fewer queries with raceguard, got %d against %d", rgQueries, stockQueries)
	}
	// The zoo is only a test if the names behave differently from each other.
	kinds := map[string]bool{}
	for _, v := range stock {
		kinds[strings.SplitN(v, ",", 2)[0]] = true
	}
	for _, want := range []string{"EAI_NONAME", "EAI_NODATA", "EAI_AGAIN"} {
		if !kinds[want] {
			t.Errorf("Expected the zoo to produce %s somewhere, got %v", want, kinds)
		}
	}
}
