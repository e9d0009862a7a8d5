package differential

import (
	"math/rand/v2"
	"strings"

	"github.com/miekg/dns"
)

// clusterNames are names of the sample cluster zone: services with both families, IPv4 only and
// IPv6 only, ExternalName and in-zone CNAMEs, headless, pods, namespaces (NODATA), the apex and
// names that do not exist.
var clusterNames = []string{
	"kubernetes.default.svc.cluster.local.",
	"web.default.svc.cluster.local.",
	"legacy.default.svc.cluster.local.",
	"v6only.default.svc.cluster.local.",
	"docs.default.svc.cluster.local.",
	"api.shop.svc.cluster.local.",
	"db.shop.svc.cluster.local.",
	"db-0.db.shop.svc.cluster.local.",
	"cart.shop.svc.cluster.local.",
	"kube-dns.kube-system.svc.cluster.local.",
	"grafana.monitoring.svc.cluster.local.",
	"10-244-1-10.shop.pod.cluster.local.",
	"shop.svc.cluster.local.",
	"default.svc.cluster.local.",
	"svc.cluster.local.",
	"cluster.local.",
	"ns.dns.cluster.local.",
	"nosuch.default.svc.cluster.local.",
	"db-9.db.shop.svc.cluster.local.",       // a pod that is gone: a first try of "db-9.db" in shop
	"nosuch.nonamespace.svc.cluster.local.", // in a namespace that does not exist
}

// externalNames are names of the upstream's zone, and later tries of the walks of bases as a
// client walking on its own asks them.
var externalNames = []string{
	"example.org.",
	"www.example.org.",
	"www.mixed.example.org.",
	"chain.example.net.",
	"hop2.example.net.",
	"v4only.example.net.",
	"v6only.example.net.",
	"many.example.com.",
	"big.example.com.",
	"foo.wild.example.com.",
	"deep.a.b.c.d.example.com.",
	"dangling.example.com.",
	"empty.example.com.",
	"nosuch.example.org.",
	"registry.lab.internal.",
	"shop.lab.internal.",
	"nothing.invalid.",
	"example.org.svc.cluster.local.",
	"example.org.cluster.local.",
	"example.org.lab.internal.",
	"nosuch.example.org.svc.cluster.local.",
	"nosuch.example.org.cluster.local.",
	"nosuch.example.org.lab.internal.",
	"empty.example.com.cluster.local.",
}

// bases are names a pod in namespace "default" looks up; its first try is
// <base>.default.svc.cluster.local.
var bases = []string{
	"example.org",
	"www.example.org",
	"www.mixed.example.org",
	"chain.example.net",
	"v4only.example.net",
	"v6only.example.net",
	"many.example.com",
	"big.example.com",
	"foo.wild.example.com",
	"deep.a.b.c.d.example.com",
	"dangling.example.com",
	"empty.example.com",
	"nosuch.example.org",
	"registry.lab.internal",
	"srv.corp", // under the node domain only, if the upstream has srv.corp.lab.internal
	"api.shop",
	"db.shop",
	"db-0.db.shop",
	"cart.shop",
	"kube-dns.kube-system",
	"web.default",
	"shop.svc",
	"nosuch.shop",
}

// otherExpansions are first tries of pods in other namespaces, and one in a namespace that does
// not exist (never completed).
var otherExpansions = []string{
	"example.org.shop.svc.cluster.local.",
	"v6only.example.net.kube-system.svc.cluster.local.",
	"example.org.nonamespace.svc.cluster.local.",
}

// otherTypes are queries of types search completion never touches.
var otherTypes = []struct {
	name  string
	qtype uint16
}{
	{"empty.example.com.", dns.TypeTXT},
	{"example.org.", dns.TypeTXT},
	{"example.org.", dns.TypeMX},
	{"nosuch.example.org.", dns.TypeMX},
	{"example.org.", dns.TypeANY},
	{"web.default.svc.cluster.local.", dns.TypeANY},
	{"www.example.org.", dns.TypeCNAME},
	{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV},
	{"_postgres._tcp.db.shop.svc.cluster.local.", dns.TypeSRV},
	{"_https._tcp.kubernetes.default.svc.cluster.local.", dns.TypeSRV},
	{"cluster.local.", dns.TypeSOA},
	{"cluster.local.", dns.TypeNS},
	{"big.example.com.", dns.TypeTXT},
	{"empty.example.com.default.svc.cluster.local.", dns.TypeTXT},
	{"example.org.default.svc.cluster.local.", dns.TypeMX},
	{"_http._tcp.web.default.svc.cluster.local.default.svc.cluster.local.", dns.TypeSRV},
	{"example.org.default.svc.cluster.local.", dns.TypeANY},
}

// flagCombos are every EDNS, CD and transport setting: no EDNS, or EDNS 512/1232/4096 with DO off
// and on; CD off and on; UDP and TCP.
func flagCombos() []query {
	var c []query
	for _, edns := range []uint16{0, 512, 1232, 4096} {
		for _, do := range []bool{false, true} {
			if edns == 0 && do {
				continue
			}
			for _, cd := range []bool{false, true} {
				for _, network := range []string{"udp", "tcp"} {
					c = append(c, query{edns: edns, do: do, cd: cd, rd: true, net: network})
				}
			}
		}
	}
	return c
}

// clientLookup returns the tries of a client in namespace "default" looking base up: for each
// name of its search walk in turn, one query of each of types with the flags of c.
func clientLookup(rng *rand.Rand, group int, base string, types []uint16, c query) []query {
	walk, _ := walkOf(base+".default.svc.cluster.local.", "")
	var g []query
	first := ""
	for step, name := range walk.names {
		q := c
		q.name, q.group, q.step = mixCase(rng, name), group, step
		if step == 0 {
			first = q.name
		} else {
			q.tailOf = first
		}
		for _, qtype := range types {
			q.qtype, q.id = qtype, uint16(rng.Uint32())
			g = append(g, q)
		}
	}
	return g
}

// mixCase gives name a random-looking 0x20 case from rng.
func mixCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.IntN(2) == 1 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// makeCorpus generates the corpus, deterministically: for every name, A and AAAA pairs (as
// getaddrinfo sends them) under several flag combinations, the other types under a few, big
// answers over small UDP buffers always, and lookups of the bases walking the search list; all in
// a shuffled order of groups.
func makeCorpus() []query {
	rng := rand.New(rand.NewPCG(20261121, 6))
	combos := flagCombos()
	var names []string
	names = append(names, clusterNames...)
	names = append(names, externalNames...)
	for _, b := range bases {
		names = append(names, b+".default.svc.cluster.local.")
	}
	names = append(names, otherExpansions...)

	id := func() uint16 { return uint16(rng.Uint32()) }
	var groups [][]query
	for _, name := range names {
		perm := rng.Perm(len(combos))[:6]
		var picks []query
		for _, i := range perm {
			picks = append(picks, combos[i])
		}
		if strings.HasPrefix(name, "big.example.com.") {
			// A 512-byte client must get TC, with and without EDNS, with and without completion.
			picks = append(picks, query{rd: true, net: "udp"}, query{edns: 512, rd: true, net: "udp"}, query{edns: 512, do: true, cd: true, rd: true, net: "udp"})
		}
		for _, c := range picks {
			if rng.IntN(16) == 0 {
				c.rd = false
			}
			if c.edns > 0 && rng.IntN(8) == 0 {
				c.option = ednsOptions[rng.IntN(len(ednsOptions))].Option()
			}
			if c.edns > 0 && rng.IntN(40) == 0 {
				c.version = 1
			}
			a, aaaa := c, c
			a.name, a.qtype, a.id = mixCase(rng, name), dns.TypeA, id()
			aaaa.name, aaaa.qtype, aaaa.id = a.name, dns.TypeAAAA, id()
			if rng.IntN(2) == 0 {
				aaaa.name = mixCase(rng, name)
			}
			if rng.IntN(4) == 0 {
				a, aaaa = aaaa, a // AAAA first
			}
			groups = append(groups, []query{a, aaaa})
		}
	}
	for _, o := range otherTypes {
		for _, i := range rng.Perm(len(combos))[:3] {
			c := combos[i]
			c.name, c.qtype, c.id = mixCase(rng, o.name), o.qtype, id()
			groups = append(groups, []query{c})
		}
	}
	// Clients in namespace "default" looking the bases up: a getaddrinfo AF_UNSPEC (A and AAAA
	// together) twice, a single family once, each walking its search list as far as it goes.
	// After a walk that is exhausted, raceguard answers the later names from memory.
	group := 0
	for _, b := range bases {
		single := [][]uint16{{dns.TypeA}, {dns.TypeAAAA}}[rng.IntN(2)]
		for j, types := range [][]uint16{{dns.TypeA, dns.TypeAAAA}, {dns.TypeA, dns.TypeAAAA}, single} {
			group++
			c := combos[rng.IntN(len(combos))]
			if j == 1 && rng.IntN(3) == 0 {
				types = []uint16{dns.TypeAAAA, dns.TypeA}
			}
			groups = append(groups, clientLookup(rng, group, b, types, c))
		}
	}
	rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	var corpus []query
	for _, g := range groups {
		corpus = append(corpus, g...)
	}
	return corpus
}
