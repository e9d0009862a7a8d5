package differential

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestDifferential is a respdiff-style differential check: one deterministic corpus of queries
// (0x20 mixed case, with and without EDNS, buffer sizes 512/1232/4096, DO and CD on and off, a few
// EDNS options and a BADVERS, UDP and TCP, answers, CNAMEs, wildcards, NXDOMAIN, NODATA, SERVFAIL,
// truncation, and the search expansions a pod in namespace "default" sends, alone and as clients
// walking their search list) goes, as identical wire messages, to stock CoreDNS and to the
// raceguard build: the same binary on loopback, forwarding to one upstream, serving the sample
// cluster zone, with lab.StockCorefile and lab.RaceguardCorefile. Each query goes to stock first,
// then to raceguard. Every reply pair must agree on rcode, flags, question bytes, answer,
// authority and additional sections (as sets, names compared case-insensitively, TTLs zeroed) and
// OPT record; both replies must echo the query's ID and question bytes and fit the client's UDP
// size; every record of either must exist in the zone data with a TTL never above the zone's nor
// the cache's cap.
//
// The one difference README.md documents, search completion of an A or AAAA first try, is
// verified against stock's answers for the names of the walk instead of being skipped, and a
// first try that README.md says is completed must be. Bursts of identical queries check that
// collapse and the sibling prefetch change no answer. The WalkTail subtest checks the later tries
// of clients that walk on after a completion answered NODATA.
//
// It runs twice: with search infer, as a cluster Deployment runs it (completions trusted in the
// namespace's own hierarchy only), and with the same list fixed in the Corefile (trusted whole, so
// that completions to node domains and external names, and their truncation, are compared too).
// The walk budget is off: the corpus is one client asking many first tries.
func TestDifferential(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) { differential(t, bin, v) })
	}
}

// variants are the raceguard Corefiles of TestDifferential.
var variants = []variant{
	{"infer", raceguardCorefile("node_search " + lab.NodeDomain), 3, ""},
	{"fixed_list", raceguardCorefile("search default.svc.cluster.local svc.cluster.local cluster.local " + lab.NodeDomain), 5, "default"},
}

// raceguardCorefile is lab.RaceguardCorefile with options for its raceguard block, and no walk
// budget.
func raceguardCorefile(options string) string {
	return strings.Replace(lab.RaceguardCorefile, "node_search "+lab.NodeDomain, options+"\n        walk_budget 0", 1)
}

// differential is TestDifferential for one variant.
func differential(t *testing.T, bin string, v variant) {
	bounds, err := loadBounds(labZones, lab.StockCorefile, v.corefile)
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	dir := t.TempDir()
	stock := startServer(t, bin, dir, "stock", lab.StockCorefile, up.Addr)
	rg := startServer(t, bin, dir, "raceguard", v.corefile, up.Addr)

	d := newHarness(t, stock, rg, bounds, v)
	start := time.Now()
	d.bursts(up) // first, while big.example.com is new to both caches
	corpus := makeCorpus()
	d.run(corpus)
	d.truncation()
	d.summary(fmt.Sprintf("%d corpus, %d truncation checks, %d in bursts", len(corpus)-d.skipped, d.truncChecks, d.burstQueries), start)

	// The corpus must keep exercising what it is meant to compare.
	text, err := lab.ScrapeURL("", "http://"+rg.metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	ms := lab.ParseMetrics(text)
	var walks []string
	for _, o := range []string{"answered", "as_asked", "passed_through", "exhausted"} {
		walks = append(walks, fmt.Sprintf("%s %v", o, ms.Sum("coredns_raceguard_search_walks_total", map[string]string{"outcome": o})))
	}
	coverage := map[string]float64{}
	for _, m := range []string{"search_remembered_total", "collapsed_total", "collapsed_retransmits_total", "sibling_prefetches_total", "sibling_prefetch_hits_total", "collapse_overflows_total"} {
		coverage[m] = ms.Sum("coredns_raceguard_"+m, nil)
	}
	t.Logf("raceguard: walks %s; remembered answers %v; collapsed %v; sibling prefetches %v (hits %v)",
		strings.Join(walks, ", "), coverage["search_remembered_total"], coverage["collapsed_total"],
		coverage["sibling_prefetches_total"], coverage["sibling_prefetch_hits_total"])
	if d.completedRecords == 0 || d.completedNoData == 0 {
		t.Errorf("Expected the corpus to exercise completions with records and NODATA, got %d and %d", d.completedRecords, d.completedNoData)
	}
	for _, m := range []string{"search_remembered_total", "collapsed_total", "sibling_prefetches_total"} {
		if coverage[m] == 0 {
			t.Errorf("Expected the corpus to exercise coredns_raceguard_%s, got 0", m)
		}
	}
	if t.Failed() {
		t.Logf("logs in %s (stock.log, raceguard.log)", dir)
	}

	t.Run("WalkTail", func(t *testing.T) { walkTail(t, bin, v) })
}

// walkTail is the differential of clients that walk on after a search completion answered their
// first try with NODATA, as README.md's "Search completion" says a single-family glibc lookup does
// ("keeps walking, as it would have"; so do glibc's A+AAAA pair when neither has records, and Go's
// resolver). It needs names the lab's upstream lacks, so it runs its own: the same binary serving
// testdata/tail.db, where store.example.shop has only an A record and mail.example.shop no address
// at all, while store.example and mail.example have both. "shop" is a namespace of the sample
// cluster zone, so the client's second try, store.example.shop.svc.cluster.local, is byte for
// byte the first try of a pod in namespace "shop" looking up store.example. Every try after the
// first must be answered as stock answers it.
func walkTail(t *testing.T, bin string, v variant) {
	zone, err := lab.RepoPath("test/differential/testdata/tail.db")
	if err != nil {
		t.Fatal(err)
	}
	zones := []zoneFile{labZones[0], {"test/differential/testdata/tail.db", "."}}
	bounds, err := loadBounds(zones, lab.StockCorefile, v.corefile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := testenv.FreeUDPTCPPort(t)
	up, err := lab.StartProcess("", bin, dir, "upstream", ".:"+port+" {\n    bind 127.0.0.1\n    file "+zone+" .\n}\n", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Stop)
	stock := startServer(t, bin, dir, "stock", lab.StockCorefile, "127.0.0.1:"+port)
	rg := startServer(t, bin, dir, "raceguard", v.corefile, "127.0.0.1:"+port)
	d := newHarness(t, stock, rg, bounds, v)

	rng := rand.New(rand.NewPCG(7, 7))
	var corpus []query
	group := 0
	for _, l := range []struct {
		base  string
		types []uint16
	}{
		{"store.example.shop", []uint16{dns.TypeAAAA}},            // AF_INET6 lookup of an IPv4-only name
		{"mail.example.shop", []uint16{dns.TypeA, dns.TypeAAAA}},  // AF_UNSPEC lookup of a name without addresses
		{"store.example.shop", []uint16{dns.TypeA, dns.TypeAAAA}}, // AF_UNSPEC: the A completes, the client stops
		{"store.example.shop", []uint16{dns.TypeA}},               // AF_INET: likewise
	} {
		for _, c := range []query{{rd: true, net: "udp"}, {edns: 1232, rd: true, net: "udp"}, {edns: 4096, do: true, cd: true, rd: true, net: "tcp"}} {
			group++
			corpus = append(corpus, clientLookup(rng, group, l.base, l.types, c)...)
		}
	}
	start := time.Now()
	d.run(corpus)
	d.summary(fmt.Sprintf("%d tries of %d lookups", len(corpus)-d.skipped, group), start)
	if t.Failed() {
		t.Logf("logs in %s (upstream.log, stock.log, raceguard.log)", dir)
	}
}
