package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/dnsperf"
	"github.com/raceguard/raceguard/test/lab"
)

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

// expandedQueries are the first search candidates a pod in namespace "default" sends for names
// that exist further down its search list (external names, another namespace), and one that
// exists as asked. (A one-label name such as registry, found in the node domain, is left out:
// stock autopath completes it, and is wrong to, as TestSearchKubernetesLab shows.)
var expandedQueries = []string{
	"example.org.default.svc.cluster.local A",
	"example.org.default.svc.cluster.local AAAA",
	"www.example.org.default.svc.cluster.local A",
	"chain.example.net.default.svc.cluster.local A",
	"api.shop.default.svc.cluster.local A",
	"api.shop.default.svc.cluster.local AAAA",
	"web.default.svc.cluster.local A",
}

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

// perf is one dnsperf run.
type perf struct {
	dnsperf.Stats
	bufDrops int // datagrams the kernel dropped at full socket buffers during the run, if counted
}

// runDNSPerf runs dnsperf against addr with the query file queries and the given extra arguments
// (by default a timed run of -seconds).
func runDNSPerf(addr, queries string, args ...string) (perf, error) {
	host, port, _ := net.SplitHostPort(addr)
	if len(args) == 0 {
		args = []string{"-l", strconv.Itoa(*seconds), "-c", "8", "-q", "200"}
	}
	out, err := exec.Command("dnsperf", append([]string{"-s", host, "-p", port, "-d", queries}, args...)...).CombinedOutput()
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %v: %s", err, out)
	}
	// dnsperf succeeded: its statistics are there, and a figure missing from them reads 0.
	st, _ := dnsperf.ParseStats(string(out))
	return perf{Stats: st}, nil
}

// server is one CoreDNS on loopback.
type server struct {
	p    *lab.Process
	addr string
}

func startLoopback(bin, dir, name, corefile, upstream string) (*server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	metrics, err := freePort()
	if err != nil {
		return nil, err
	}
	text, err := lab.Render(corefile, lab.CorefileData{Port: port, Metrics: "127.0.0.1:" + metrics, Upstream: upstream}, dir)
	if err != nil {
		return nil, err
	}
	text = strings.Replace(text, "errors\n", "bind 127.0.0.1\n    errors\n", 1)
	addr := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, dir, name, text, addr)
	if err != nil {
		return nil, err
	}
	return &server{p: p, addr: addr}, nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port, nil
}

// warm asks every query once so the measured runs see a warm cache.
func warm(addr string, queries []string) {
	for _, q := range queries {
		name, typ, _ := strings.Cut(q, " ")
		m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.StringToType[typ])
		lab.Exchange("", "udp", addr, m, 2*time.Second)
	}
}

// comparison is the outcome of interleaved dnsperf runs of two servers.
type comparison struct {
	stock, rg perf    // the median runs
	ratio     float64 // median over rounds of raceguard's throughput over stock's in that round
}

// compareRuns runs dnsperf on queries against servers built from the two Corefiles, one after the
// other in each round, alternating which goes first. Throughput on a shared machine drifts over
// seconds, so each round's ratio compares runs made side by side, and the median ratio is kept.
func compareRuns(bin, dir, label, stockCorefile, rgCorefile string, queries []string, upstream string) (comparison, error) {
	qfile := filepath.Join(dir, label+".queries")
	if err := dnsperf.WriteQueries(qfile, queries); err != nil {
		return comparison{}, err
	}
	stock, err := startLoopback(bin, dir, label+"-stock", stockCorefile, upstream)
	if err != nil {
		return comparison{}, err
	}
	defer stock.p.Stop()
	rg, err := startLoopback(bin, dir, label+"-raceguard", rgCorefile, upstream)
	if err != nil {
		return comparison{}, err
	}
	defer rg.p.Stop()
	warm(stock.addr, queries)
	warm(rg.addr, queries)

	var s, r []perf
	var ratios []float64
	for i := range *rounds {
		var ps, pr perf
		for j := range 2 {
			srv := stock
			if (i+j)%2 == 1 {
				srv = rg
			}
			p, err := runDNSPerf(srv.addr, qfile)
			if err != nil {
				return comparison{}, err
			}
			if srv == stock {
				ps = p
			} else {
				pr = p
			}
		}
		s, r = append(s, ps), append(r, pr)
		ratios = append(ratios, pr.QPS/ps.QPS)
	}
	slices.Sort(ratios)
	return comparison{stock: median(s), rg: median(r), ratio: ratios[len(ratios)/2]}, nil
}

// median returns the run with the median throughput.
func median(ps []perf) perf {
	slices.SortFunc(ps, func(a, b perf) int {
		switch {
		case a.QPS < b.QPS:
			return -1
		case a.QPS > b.QPS:
			return 1
		}
		return 0
	})
	return ps[len(ps)/2]
}

// duplicateMisses measures a burst of identical misses: names nobody asked before, each asked by
// ten clients at once, against an upstream that takes a while to answer. It returns the upstream
// A queries per distinct name and dnsperf's run.
func duplicateMisses(bin, dir, label, corefile string, up *lab.Upstream, round int) (float64, perf, error) {
	const names, copies = 300, 10
	var qs []string
	for i := range names {
		for range copies {
			qs = append(qs, fmt.Sprintf("dup%d-%s-%d.wild.example.com A", round, label, i))
		}
	}
	qfile := filepath.Join(dir, fmt.Sprintf("dup-%s-%d.queries", label, round))
	if err := dnsperf.WriteQueries(qfile, qs); err != nil {
		return 0, perf{}, err
	}
	srv, err := startLoopback(bin, dir, fmt.Sprintf("dup-%s-%d", label, round), corefile, up.Addr)
	if err != nil {
		return 0, perf{}, err
	}
	defer srv.p.Stop()
	// Only A queries count: with raceguard each name's sibling AAAA is prefetched too.
	before := up.TotalType(dns.TypeA)
	// dnsperf's burst of 500 queries in flight can overflow the server's socket buffer on
	// loopback: those losses are the kernel's, counted apart from the server's.
	udp0, err := lab.ReadUDPStats("")
	if err != nil {
		return 0, perf{}, err
	}
	p, err := runDNSPerf(srv.addr, qfile, "-n", "1", "-c", "10", "-q", "500")
	if err != nil {
		return 0, perf{}, err
	}
	udp1, err := lab.ReadUDPStats("")
	if err != nil {
		return 0, perf{}, err
	}
	p.bufDrops = udp1.Sub(udp0).BufferDrops()
	return float64(up.TotalType(dns.TypeA)-before) / names, p, nil
}

func throughputRows(bin, dir string) ([]row, error) {
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer up.Close()

	hits, err := compareRuns(bin, dir, "hits", lab.StockCorefile, lab.RaceguardCorefile, cacheHitQueries, up.Addr)
	if err != nil {
		return nil, err
	}
	noise, err := compareRuns(bin, dir, "aa", lab.StockCorefile, lab.StockCorefile, cacheHitQueries, up.Addr)
	if err != nil {
		return nil, err
	}
	ap, err := compareRuns(bin, dir, "autopath", AutopathCorefile, lab.RaceguardCorefile, expandedQueries, up.Addr)
	if err != nil {
		return nil, err
	}
	up.SetDelay(20 * time.Millisecond)
	dupS, dupSP, err := duplicateMisses(bin, dir, "stock", lab.StockCorefile, up, 1)
	if err != nil {
		return nil, err
	}
	dupR, dupRP, err := duplicateMisses(bin, dir, "raceguard", lab.RaceguardCorefile, up, 2)
	if err != nil {
		return nil, err
	}
	up.SetDelay(0)

	runs := fmt.Sprintf("%d interleaved rounds of %d s", *rounds, *seconds)
	return []row{
		{"Cache hits, both directives on: dnsperf queries/s (" + runs + "; ratio is the median of per-round ratios)", qps(hits.stock), qps(hits.rg), pct(hits.ratio)},
		{"Cache hits: mean latency", ms(hits.stock.Latency), ms(hits.rg.Latency), pct(hits.rg.Latency / hits.stock.Latency)},
		{"Noise of this machine: the same row, stock against stock", qps(noise.stock), qps(noise.rg), pct(noise.ratio)},
		{"Search-expanded names: queries/s (stock column: `autopath` on resolv.conf)", qps(ap.stock), qps(ap.rg), pct(ap.ratio)},
		{"Search-expanded names: mean latency", ms(ap.stock.Latency), ms(ap.rg.Latency), pct(ap.rg.Latency / ap.stock.Latency)},
		{"Search-expanded names: answers that are NOERROR", pct(frac(ap.stock.RCode("NOERROR"), ap.stock.Sent)), pct(frac(ap.rg.RCode("NOERROR"), ap.rg.Sent)), ""},
		{"Duplicate-heavy misses (300 new names × 10 clients at once, 20 ms upstream): upstream queries per name",
			fmt.Sprintf("%.2f", dupS), fmt.Sprintf("%.2f", dupR), pct(dupR / dupS)},
		{"Duplicate-heavy misses: mean client latency (queries lost / of them dropped by the kernel at a full socket buffer)",
			fmt.Sprintf("%s (%d / %d)", ms(dupSP.Latency), dupSP.Lost, dupSP.bufDrops),
			fmt.Sprintf("%s (%d / %d)", ms(dupRP.Latency), dupRP.Lost, dupRP.bufDrops), pct(dupRP.Latency / dupSP.Latency)},
	}, nil
}

func qps(p perf) string   { return fmt.Sprintf("%.0f", p.QPS) }
func ms(s float64) string { return fmt.Sprintf("%.2f ms", s*1000) }
func pct(f float64) string {
	return fmt.Sprintf("%.1f %%", f*100)
}

func frac(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
