package differential

import (
	"fmt"
	"slices"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
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
	// the node's own search domain (a short name there, and one written in full), and a mistyped
	// service that exists there under its short name
	"gateway", "registry", "registry.lab.internal", "gateway.shop", "registry.default",
	// typos whose later tries look like first tries in a namespace "cnn" that does not exist
	"www.example.org.cnn", "api.shop.cnn",
	// /etc/hosts
	"localhost",
}

// absent are the names of the zoo that exist nowhere: every client walks its whole list for them
// and must see every NXDOMAIN, so they cost what they cost without raceguard. They are the floor
// of any saving, and are counted apart from the names a walk can shorten.
var absent = map[string]bool{
	"db-9.db.shop": true, "nosuch": true, "nosuch.shop": true, "nosuch.example.org": true,
	"x.y.z.nonexistent": true, "dangling.example.com": true, "gateway.shop": true,
	"registry.default": true, "www.example.org.cnn": true, "api.shop.cnn": true,
}

// zooParts returns the names of the zoo that exist somewhere, and those that exist nowhere.
func zooParts() (present, missing []string) {
	for _, n := range zoo {
		if absent[n] {
			missing = append(missing, n)
		} else {
			present = append(present, n)
		}
	}
	return present, missing
}

// LookupKey is one lookup of the zoo: a name, by a C library, for an address family.
type LookupKey struct {
	Libc   lab.Libc
	Family lab.Family
	Name   string
}

// LookupAll resolves names with both C libraries and every family, as a ClusterFirst pod
// (lab.DefaultResolvConf), and returns the outcomes and the UDP queries the clients sent.
func LookupAll(t *testing.T, l *lab.Lab, names []string) (map[LookupKey]string, int) {
	t.Helper()
	return LookupWith(t, l, lab.DefaultResolvConf(), names)
}

// LookupWith is LookupAll for a client whose resolv.conf is rc.
func LookupWith(t *testing.T, l *lab.Lab, rc lab.ResolvConf, names []string) (map[LookupKey]string, int) {
	t.Helper()
	out := map[LookupKey]string{}
	before, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		for _, family := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
			rs, err := l.Lookup(libc, family, rc, 8, names...)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				out[LookupKey{libc, family, r.Name}] = r.String()
			}
		}
	}
	after, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return out, after.Sub(before).ClientUDP
}

// DiffLookups lists where the outcomes got (with raceguard) differ from want (without).
func DiffLookups(want, got map[LookupKey]string) []string {
	var out []string
	for k, w := range want {
		if g := got[k]; g != w {
			out = append(out, fmt.Sprintf("%s %s %q: without raceguard %s, with %s", k.Libc, k.Family, k.Name, w, g))
		}
	}
	slices.Sort(out)
	return out
}
