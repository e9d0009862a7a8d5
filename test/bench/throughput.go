package main

import (
	"cmp"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/raceguard/raceguard/test/dnsperf"
	"github.com/raceguard/raceguard/test/lab"
)

// The throughput rows measure the server, not the load generator: CoreDNS runs with GOMAXPROCS=1
// pinned to one CPU, dnsperf pinned to the other, and the server's own CPU time over each run
// (from /proc/PID/stat) is reported per query beside the queries a second. On two shared cores an
// unpinned dnsperf mostly measures dnsperf.
//
// The two servers of a comparison share CPU 0 and are loaded at the same time, each by its own
// dnsperf on CPU 1. This machine's speed drifts by 10 to 30 % from one second to the next (its
// host's other guests): runs made one after the other, even interleaved, compare two moments as
// much as two servers, and an A/A row of 9 such rounds landed 8 % off. Loaded together, both
// servers see the same moments, the scheduler gives each half of the CPU, and each one's CPU time
// per query compares them. The price: the switches between the two cost both the same few
// microseconds a query, which pulls every ratio slightly towards 100 %.
const (
	serverCPU = "0"
	loadCPU   = "1"
)

// pinned runs a CoreDNS on one core, with one P.
var pinned = []string{"env", "GOMAXPROCS=1", "taskset", "-c", serverCPU}

// cacheHitQueries are names the sample zone or the upstream has, asked again and again: after the
// first round every one is a cache hit.
var cacheHitQueries = []string{
	"kubernetes.default.svc.cluster.local A",
	"web.default.svc.cluster.local A",
	"web.default.svc.cluster.local AAAA",
	"api.shop.svc.cluster.local A",
	"api.shop.svc.cluster.local AAAA",
	"db.shop.svc.cluster.local A",
	"_http._tcp.web.default.svc.cluster.local SRV",
	"example.org A",
	"example.org AAAA",
	"www.example.org A",
	"many.example.com A",
}

// expandedQueries are the first tries a pod in namespace "default" sends for names that exist
// further down its search list (external names, another namespace), and one that exists as
// asked; directQueries are the same lookups asked by the names they end at, the physical limit of
// a completion: the same answer for one query.
var (
	expandedQueries = []string{
		"example.org.default.svc.cluster.local A",
		"example.org.default.svc.cluster.local AAAA",
		"www.example.org.default.svc.cluster.local A",
		"chain.example.net.default.svc.cluster.local A",
		"api.shop.default.svc.cluster.local A",
		"api.shop.default.svc.cluster.local AAAA",
		"db-0.db.default.svc.cluster.local A",
	}
	directQueries = []string{
		"example.org A",
		"example.org AAAA",
		"www.example.org A",
		"chain.example.net A",
		"api.shop.svc.cluster.local A",
		"api.shop.svc.cluster.local AAAA",
		"db-0.db.default.svc.cluster.local A",
	}
)

// The Corefiles of the throughput rows: a fixed search list is what stock autopath completes
// with, so both columns of the expanded rows complete the same lookups with the same list.
const podSearch = "default.svc.cluster.local svc.cluster.local cluster.local " + lab.NodeDomain

// AutopathCorefile is StockCorefile with stock autopath reading the lab client's resolv.conf.
const AutopathCorefile = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    autopath {{.ResolvConf}}
    cache 30
    file {{.ClusterZone}} cluster.local
    forward . {{.Upstream}}
}
`

var (
	// fixedListCorefile is lab.RaceguardCorefile completing with the pod's whole list, as stock
	// autopath does: the dnsperf client never walks on, so a list it learned is not an option.
	fixedListCorefile = strings.Replace(lab.RaceguardCorefile, "node_search "+lab.NodeDomain,
		"search "+podSearch+"\n        walk_budget 0", 1)
	// fullTableCorefile is lab.RaceguardCorefile with a fingerprint table far below the lookups of
	// the load: every query takes a slot over.
	fullTableCorefile = strings.Replace(lab.RaceguardCorefile, "node_search", "fingerprints 64\n        node_search", 1)
)

// side is one column of a comparison: a Corefile and the queries it is sent.
type side struct {
	corefile string
	queries  []string
}

// comparison is the outcome of interleaved runs of two pinned servers.
type comparison struct {
	a, b     perf    // the median runs by throughput
	ratio    float64 // median over rounds of b's queries per CPU second over a's in the same round
	cpuRatio float64 // likewise for the server CPU time per query
	qpsRatio float64 // likewise for the queries a second dnsperf saw
	profiles [2]string
}

// compareRuns runs dnsperf against pinned servers built from the two sides, both at once in each
// round (see above) when together is set, else one after the other, alternating which goes
// first; and keeps the median of the rounds' ratios. With profile set, a CPU profile of each
// server is taken over the middle round (its pprof plugin).
func compareRuns(bin, dir, label string, a, b side, upstream string, together, profile bool) (comparison, error) {
	var srvs [2]*server
	var qfiles [2]string
	var pprofAddrs [2]string
	for i, sd := range []side{a, b} {
		qfiles[i] = filepath.Join(dir, fmt.Sprintf("%s-%d.queries", label, i))
		if err := dnsperf.WriteQueries(qfiles[i], sd.queries); err != nil {
			return comparison{}, err
		}
		corefile := sd.corefile
		if profile {
			ports, err := lab.FreeLoopbackPorts(1)
			if err != nil {
				return comparison{}, err
			}
			pprofAddrs[i] = "127.0.0.1:" + ports[0]
			corefile = strings.Replace(corefile, "errors\n", "errors\n    pprof "+pprofAddrs[i]+"\n", 1)
		}
		s, err := startLoopback(bin, dir, fmt.Sprintf("%s-%d", label, i), corefile, upstream, pinned...)
		if err != nil {
			return comparison{}, err
		}
		defer s.p.Stop()
		srvs[i] = s
		warm(s.addr, sd.queries)
	}

	var runs [2][]perf
	var ratios, cpuRatios, qpsRatios []float64
	var c comparison
	for round := range *rounds {
		var ps [2]perf
		var errs [2]error
		run := func(i int) {
			var prof chan string
			if profile && round == *rounds/2 {
				prof = make(chan string, 1)
				go func() { prof <- takeProfile(pprofAddrs[i], dir, fmt.Sprintf("%s-%d", label, i)) }()
			}
			ps[i], errs[i] = measure(srvs[i], qfiles[i])
			if prof != nil {
				c.profiles[i] = <-prof
			}
		}
		if together {
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Go(func() { run(i) })
			}
			wg.Wait()
		} else {
			for j := range 2 {
				run((round + j) % 2) // alternating which goes first
			}
		}
		if err := errors.Join(errs[:]...); err != nil {
			return comparison{}, err
		}
		runs[0], runs[1] = append(runs[0], ps[0]), append(runs[1], ps[1])
		ratios = append(ratios, ps[1].perCPUSecond()/ps[0].perCPUSecond())
		cpuRatios = append(cpuRatios, float64(ps[1].cpuPerQuery())/float64(ps[0].cpuPerQuery()))
		qpsRatios = append(qpsRatios, ps[1].QPS/ps[0].QPS)
	}
	c.a, c.b = median(runs[0]), median(runs[1])
	c.ratio, c.cpuRatio, c.qpsRatio = medianOf(ratios), medianOf(cpuRatios), medianOf(qpsRatios)
	return c, nil
}

// measure is one dnsperf run against s, with s's CPU time over it.
func measure(s *server, qfile string, args ...string) (perf, error) {
	cpu0, err := lab.CPUTime(s.p.Pid())
	if err != nil {
		return perf{}, err
	}
	p, err := runDNSPerf(s.addr, qfile, args...)
	if err != nil {
		return perf{}, err
	}
	cpu1, err := lab.CPUTime(s.p.Pid())
	if err != nil {
		return perf{}, err
	}
	p.cpu = cpu1 - cpu0
	return p, nil
}

// median returns the run with the median CPU time per query.
func median(ps []perf) perf {
	ps = slices.Clone(ps)
	slices.SortFunc(ps, func(a, b perf) int { return cmp.Compare(a.cpuPerQuery(), b.cpuPerQuery()) })
	return ps[len(ps)/2]
}

func medianOf(v []float64) float64 {
	v = slices.Clone(v)
	slices.Sort(v)
	return v[len(v)/2]
}

// latencies are the fixed-rate runs of two sides: the k-th run of each side is from round k, the
// two one after the other.
type latencies [2][]perf

// load describes the rate of the runs and how busy it kept the server of the first side: its CPU
// time per query times the rate, the median over the runs.
func (l latencies) load() string {
	qps := each(l[0], func(p perf) float64 { return p.QPS })
	busy := each(l[0], func(p perf) float64 { return p.cpuPerQuery().Seconds() * p.QPS })
	return fmt.Sprintf("%.0f queries/s (the server %.0f %% busy)", medianOf(qps), 100*medianOf(busy))
}

// each returns f of every run of ps.
func each(ps []perf, f func(perf) float64) []float64 {
	v := make([]float64, len(ps))
	for k, p := range ps {
		v[k] = f(p)
	}
	return v
}

// latencyRow compares the p50 and p99 latencies of two sides' fixed-rate runs: each cell is the
// median over its side's runs, each ratio the median over rounds of the two runs' ratio in the
// round.
func latencyRow(measure string, lat latencies) row {
	var at [2][2][]float64 // side, then p50 and p99 of each run
	for i := range lat {
		for j, q := range []float64{0.5, 0.99} {
			at[i][j] = each(lat[i], func(p perf) float64 { return float64(percentile(p, q)) })
		}
	}
	cell := func(i int) string {
		return fmt.Sprintf("%s / %s", time.Duration(medianOf(at[i][0])).Round(time.Microsecond), time.Duration(medianOf(at[i][1])).Round(time.Microsecond))
	}
	ratio := func(j int) string {
		r := make([]float64, len(at[0][j]))
		for k := range r {
			r[k] = at[1][j][k] / at[0][j][k]
		}
		return pct(medianOf(r))
	}
	return row{measure, cell(0), cell(1), ratio(0) + " / " + ratio(1)}
}

// percentile returns the p-th percentile of the latencies of p.
func percentile(p perf, q float64) time.Duration {
	l := slices.Clone(p.latencies)
	if len(l) == 0 {
		return 0
	}
	slices.Sort(l)
	return l[min(len(l)-1, int(q*float64(len(l))))]
}

// fixedRate runs each side at rate queries a second with per-query output, alone on its CPU (a
// latency must not wait for the other server's turn), the two sides one after the other in each
// of the rounds. A p99 at this rate is set by the host: while p50 is about 70 µs, 5 to 10 % of
// the queries of a run wait more than a millisecond behind the host's stalls, and one run in a
// few catches a burst that doubles its p99. So a row compares the two runs of each round, next to
// each other in time, and keeps the median over rounds, as the throughput rows do: the p99 of all
// the queries pooled was set by the worst run of either side.
func fixedRate(bin, dir, label string, a, b side, upstream string, rate int) (latencies, error) {
	var runs latencies
	var srvs [2]*server
	var qfiles [2]string
	for i, sd := range []side{a, b} {
		qfiles[i] = filepath.Join(dir, fmt.Sprintf("%s-%d.queries", label, i))
		if err := dnsperf.WriteQueries(qfiles[i], sd.queries); err != nil {
			return runs, err
		}
		s, err := startLoopback(bin, dir, fmt.Sprintf("%s-%d", label, i), sd.corefile, upstream, pinned...)
		if err != nil {
			return runs, err
		}
		defer s.p.Stop()
		srvs[i] = s
		warm(s.addr, sd.queries)
	}
	for round := range *rateRounds {
		for j := range 2 {
			i := (round + j) % 2
			p, err := measure(srvs[i], qfiles[i], "-l", strconv.Itoa(*seconds), "-c", "8", "-q", "200", "-Q", strconv.Itoa(rate), "-v")
			if err != nil {
				return runs, err
			}
			runs[i] = append(runs[i], p)
		}
	}
	return runs, nil
}

func throughputRows(bin, dir string) ([]row, []string, error) {
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	defer up.Close()
	stock, rg := side{lab.StockCorefile, cacheHitQueries}, side{lab.RaceguardCorefile, cacheHitQueries}

	hits, err := compareRuns(bin, dir, "hits", stock, rg, up.Addr, true, true)
	if err != nil {
		return nil, nil, err
	}
	noise, err := compareRuns(bin, dir, "aa", stock, stock, up.Addr, true, false)
	if err != nil {
		return nil, nil, err
	}
	// The same cache-hit row measured the old way, each server alone on its CPU, one after the
	// other: for comparison with the figures of earlier runs, and to show the drift.
	alone, err := compareRuns(bin, dir, "alone", stock, rg, up.Addr, false, false)
	if err != nil {
		return nil, nil, err
	}
	aloneNoise, err := compareRuns(bin, dir, "alone-aa", stock, stock, up.Addr, false, false)
	if err != nil {
		return nil, nil, err
	}
	full, err := compareRuns(bin, dir, "full", stock, side{fullTableCorefile, cacheHitQueries}, up.Addr, true, false)
	if err != nil {
		return nil, nil, err
	}
	expanded := side{fixedListCorefile, expandedQueries}
	ap, err := compareRuns(bin, dir, "autopath", side{AutopathCorefile, expandedQueries}, expanded, up.Addr, true, true)
	if err != nil {
		return nil, nil, err
	}
	direct, err := compareRuns(bin, dir, "direct", side{fixedListCorefile, directQueries}, expanded, up.Addr, true, false)
	if err != nil {
		return nil, nil, err
	}
	// The limit against stock autopath: the final names' rate over autopath's, in one comparison.
	limit, err := compareRuns(bin, dir, "limit", side{AutopathCorefile, expandedQueries}, side{fixedListCorefile, directQueries}, up.Addr, true, false)
	if err != nil {
		return nil, nil, err
	}
	// The latency rows, at two fixed rates. A server answering at a fixed rate spends more CPU a
	// query than one under full load (fewer queries per wake-up), so half of what one core serves
	// under full load keeps it 60 to 90 % busy: there the p99 is a queue's, and the expanded
	// names' few percent more CPU a query (the rows above) come back several-fold. A quarter keeps
	// it about half busy. Each row says how busy the server was.
	direct1 := side{fixedListCorefile, directQueries}
	var lat, latNoise [2]latencies
	for k, div := range []float64{4, 2} {
		rate := int(direct.a.perCPUSecond() / div)
		if lat[k], err = fixedRate(bin, dir, fmt.Sprintf("rate%d", k), direct1, expanded, up.Addr, rate); err != nil {
			return nil, nil, err
		}
		if latNoise[k], err = fixedRate(bin, dir, fmt.Sprintf("rate%d-aa", k), direct1, direct1, up.Addr, rate); err != nil {
			return nil, nil, err
		}
	}
	up.SetDelay(20 * time.Millisecond)
	dupS, dupSP, err := duplicateMisses(bin, dir, "stock", lab.StockCorefile, up, 1)
	if err != nil {
		return nil, nil, err
	}
	dupR, dupRP, err := duplicateMisses(bin, dir, "raceguard", lab.RaceguardCorefile, up, 2)
	if err != nil {
		return nil, nil, err
	}
	up.SetDelay(0)

	runs := fmt.Sprintf("%d rounds of %d s, the two servers loaded at once, sharing CPU %s with GOMAXPROCS=1 each, each by its own dnsperf on CPU %s; ratios are medians of per-round ratios", *rounds, *seconds, serverCPU, loadCPU)
	us := func(p perf) string { return fmt.Sprintf("%.1f µs", float64(p.cpuPerQuery())/1e3) }
	capacity := func(p perf) string { return fmt.Sprintf("%.0f", p.perCPUSecond()) }
	qps := func(p perf) string { return fmt.Sprintf("%.0f", p.QPS) }
	rows := []row{
		{"Cache hits, both directives on: queries per second of server CPU (" + runs + ")", capacity(hits.a), capacity(hits.b), pct(hits.ratio)},
		{"Cache hits: server CPU per query", us(hits.a), us(hits.b), pct(hits.cpuRatio)},
		{"Noise of this machine: the cache-hit row, stock against stock (queries per CPU second; CPU per query)", capacity(noise.a) + "; " + us(noise.a), capacity(noise.b) + "; " + us(noise.b), pct(noise.ratio) + "; " + pct(noise.cpuRatio)},
		{fmt.Sprintf("Cache hits, each server alone on CPU %s, one after the other in %d interleaved rounds: queries/s; CPU per query", serverCPU, *rounds), qps(alone.a) + "; " + us(alone.a), qps(alone.b) + "; " + us(alone.b), pct(alone.qpsRatio) + "; " + pct(alone.cpuRatio)},
		{"Noise of that row: stock against stock, alone in interleaved rounds", qps(aloneNoise.a) + "; " + us(aloneNoise.a), qps(aloneNoise.b) + "; " + us(aloneNoise.b), pct(aloneNoise.qpsRatio) + "; " + pct(aloneNoise.cpuRatio)},
		{"Cache hits with the fingerprint table full (fingerprints 64): queries per CPU second; CPU per query", capacity(full.a) + "; " + us(full.a), capacity(full.b) + "; " + us(full.b), pct(full.ratio) + "; " + pct(full.cpuRatio)},
		{"Search-expanded names (stock column: `autopath` on the same list): queries per CPU second", capacity(ap.a), capacity(ap.b), pct(ap.ratio)},
		{"Search-expanded names: server CPU per query", us(ap.a), us(ap.b), pct(ap.cpuRatio)},
		{"Search-expanded names against the same lookups asked by their final names (both raceguard): queries per CPU second", capacity(direct.a), capacity(direct.b), pct(direct.ratio)},
		{"Search-expanded names against final names: server CPU per query", us(direct.a), us(direct.b), pct(direct.cpuRatio)},
		{"The limit against autopath: the final names (raceguard) against stock autopath's expanded ones, queries per CPU second", capacity(limit.a), capacity(limit.b), pct(limit.ratio)},
		latencyRow(fmt.Sprintf("Latency at %s, each server alone on CPU %s, %d interleaved runs: final names against expanded, p50 / p99 (medians over runs; ratios: medians of per-round ratios)", lat[0].load(), serverCPU, *rateRounds), lat[0]),
		latencyRow("Noise of that row: final names against final names, p50 / p99", latNoise[0]),
		latencyRow(fmt.Sprintf("Latency at %s, half of what one core serves: final names against expanded, p50 / p99", lat[1].load()), lat[1]),
		latencyRow("Noise of that row: final names against final names, p50 / p99", latNoise[1]),
		{"Search-expanded names: answers that are NOERROR", pct(frac(ap.a.RCode("NOERROR"), ap.a.Sent)), pct(frac(ap.b.RCode("NOERROR"), ap.b.Sent)), ""},
		{"Duplicate-heavy misses (300 new names × 10 clients at once, 20 ms upstream): upstream queries per name",
			fmt.Sprintf("%.2f", dupS), fmt.Sprintf("%.2f", dupR), pct(dupR / dupS)},
		{"Duplicate-heavy misses: mean client latency (queries lost / of them dropped by the kernel at a full socket buffer)",
			fmt.Sprintf("%s (%d / %d)", ms(dupSP.Latency), dupSP.Lost, dupSP.bufDrops),
			fmt.Sprintf("%s (%d / %d)", ms(dupRP.Latency), dupRP.Lost, dupRP.bufDrops), pct(dupRP.Latency / dupSP.Latency)},
	}
	notes := []string{
		"CPU profile, cache hits, stock (one round):\n\n```\n" + hits.profiles[0] + "\n```",
		"CPU profile, cache hits, raceguard (one round):\n\n```\n" + hits.profiles[1] + "\n```",
		"CPU profile, search-expanded names, stock autopath (one round):\n\n```\n" + ap.profiles[0] + "\n```",
		"CPU profile, search-expanded names, raceguard (one round):\n\n```\n" + ap.profiles[1] + "\n```",
	}
	return rows, notes, nil
}
