package main

import (
	"fmt"
	"math/rand/v2"

	"github.com/raceguard/raceguard/test/dnsperf"
)

// The query mix. Every name is one of a bounded set, so the caches and raceguard's tables reach a
// steady state within seconds and stay there: what grows after that is a leak, not the workload.
// TTLs keep the mix missing for the whole run: answers are cached at most 30 s (cache 30), the
// cluster zone's NXDOMAINs 5 s (its SOA minimum), so every name goes down the chain again and
// again, and each duplicate run meets collapse whenever its name has expired. The upstream gives
// each name its own TTL (lab.Upstream.SpreadTTLs), so that expiries are spread over time, not in a wave.
const (
	wildNames     = 3000 // w<i>.wild.example.com: upstream wildcard answers (A; AAAA is NODATA)
	nxNames       = 1000 // x<i>.nowhere.invalid: upstream NXDOMAIN
	expandedNames = 500  // first tries that search completion walks to the upstream wildcard
	ghostNames    = 300  // first tries whose every candidate is NXDOMAIN: exhausted, remembered
	svcNames      = 300  // first tries of one-label names that are no service: never walked
	dupNames      = 400  // d<i>.wild.example.com, each asked dupRun times in a row
	dupRun        = 25
	hitRepeat     = 20 // each well-known name's lines, spread over the file
)

// hitQueries are answered from the cluster zone or the upstream and cached: the bulk of a real
// node's traffic.
var hitQueries = []string{
	"kubernetes.default.svc.cluster.local A",
	"kubernetes.default.svc.cluster.local AAAA",
	"web.default.svc.cluster.local A",
	"web.default.svc.cluster.local AAAA",
	"api.shop.svc.cluster.local A",
	"api.shop.svc.cluster.local AAAA",
	"db.shop.svc.cluster.local A",
	"prometheus.monitoring.svc.cluster.local A",
	"_http._tcp.web.default.svc.cluster.local SRV",
	"example.org A",
	"example.org AAAA",
	"www.example.org A",
	"chain.example.net A",
	"chain.example.net AAAA",
	"many.example.com A",
	"registry.lab.internal A",
	"registry.lab.internal AAAA",
	// first tries of a pod in namespace default that search completion answers with a CNAME
	"example.org.default.svc.cluster.local A",
	"example.org.default.svc.cluster.local AAAA",
	"api.shop.default.svc.cluster.local A",
	"api.shop.default.svc.cluster.local AAAA",
	"www.example.org.default.svc.cluster.local A",
}

// mix is a dnsperf query file's content and what it holds.
type mix struct {
	lines    []string
	distinct int // distinct name and type pairs
}

// buildMix returns the soak's query lines: blocks shuffled with a fixed seed, each duplicate run
// kept contiguous, padded so that the line count shares no factor with clients (dnsperf sends
// line i from client i mod clients, roughly: a count prime to it sends every line from every
// client in turn).
func buildMix(clients int) mix {
	var blocks [][]string
	both := func(name string) {
		blocks = append(blocks, []string{name + " A"}, []string{name + " AAAA"})
	}
	for range hitRepeat {
		for _, q := range hitQueries {
			blocks = append(blocks, []string{q})
		}
	}
	for i := range wildNames {
		both(fmt.Sprintf("w%d.wild.example.com", i))
	}
	for i := range nxNames {
		both(fmt.Sprintf("x%d.nowhere.invalid", i))
	}
	for i := range expandedNames {
		both(fmt.Sprintf("e%d.wild.example.com.default.svc.cluster.local", i))
	}
	for i := range ghostNames {
		both(fmt.Sprintf("g%d.nowhere.invalid.default.svc.cluster.local", i))
	}
	for i := range svcNames {
		both(fmt.Sprintf("svc%d.default.svc.cluster.local", i))
	}
	for i := range dupNames {
		typ := "A"
		if i%4 == 3 {
			typ = "AAAA"
		}
		run := make([]string, dupRun)
		for j := range run {
			run[j] = fmt.Sprintf("d%d.wild.example.com %s", i, typ)
		}
		blocks = append(blocks, run)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	rng.Shuffle(len(blocks), func(i, j int) { blocks[i], blocks[j] = blocks[j], blocks[i] })

	var m mix
	seen := map[string]bool{}
	for _, b := range blocks {
		m.lines = append(m.lines, b...)
		seen[b[0]] = true
	}
	for i := 0; gcd(len(m.lines), clients) != 1; i++ {
		m.lines = append(m.lines, hitQueries[i%len(hitQueries)])
	}
	m.distinct = len(seen)
	return m
}

func (m mix) write(path string) error {
	return dnsperf.WriteQueries(path, m.lines)
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// probeNames are the first tries of the probe's lookups: what a pod in namespace default sends
// first for a service of its own namespace, one of another, external names and never-seen ones.
func probeNames() []string {
	names := []string{
		"web.default.svc.cluster.local.",
		"api.shop.default.svc.cluster.local.",
		"example.org.default.svc.cluster.local.",
		"chain.example.net.default.svc.cluster.local.",
	}
	for i := range 1000 {
		names = append(names, fmt.Sprintf("p%d.wild.example.com.default.svc.cluster.local.", i))
	}
	return names
}
