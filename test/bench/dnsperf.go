package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
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
	qps, latency float64 // queries per second; mean latency in seconds
	sent, lost   int
	noerror      int
}

var (
	qpsRe     = regexp.MustCompile(`Queries per second:\s+([0-9.]+)`)
	latRe     = regexp.MustCompile(`Average Latency \(s\):\s+([0-9.]+)`)
	sentRe    = regexp.MustCompile(`Queries sent:\s+(\d+)`)
	lostRe    = regexp.MustCompile(`Queries lost:\s+(\d+)`)
	noerrorRe = regexp.MustCompile(`NOERROR (\d+)`)
)

func dnsperf(addr, queries string) (perf, error) {
	host, port, _ := net.SplitHostPort(addr)
	out, err := exec.Command("dnsperf", "-s", host, "-p", port, "-d", queries,
		"-l", strconv.Itoa(*seconds), "-c", "8", "-q", "200").CombinedOutput()
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %v: %s", err, out)
	}
	s := string(out)
	num := func(re *regexp.Regexp) float64 {
		m := re.FindStringSubmatch(s)
		if m == nil {
			return 0
		}
		v, _ := strconv.ParseFloat(m[1], 64)
		return v
	}
	return perf{qps: num(qpsRe), latency: num(latRe), sent: int(num(sentRe)), lost: int(num(lostRe)), noerror: int(num(noerrorRe))}, nil
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

// compareRuns runs dnsperf on queries against stock and raceguard servers built from the two
// Corefiles, alternating, and returns the median runs.
func compareRuns(bin, dir, label, stockCorefile, rgCorefile string, queries []string, upstream string) (perf, perf, error) {
	qfile := filepath.Join(dir, label+".queries")
	if err := os.WriteFile(qfile, []byte(strings.Join(queries, "\n")+"\n"), 0o644); err != nil {
		return perf{}, perf{}, err
	}
	stock, err := startLoopback(bin, dir, label+"-stock", stockCorefile, upstream)
	if err != nil {
		return perf{}, perf{}, err
	}
	defer stock.p.Stop()
	rg, err := startLoopback(bin, dir, label+"-raceguard", rgCorefile, upstream)
	if err != nil {
		return perf{}, perf{}, err
	}
	defer rg.p.Stop()
	warm(stock.addr, queries)
	warm(rg.addr, queries)

	var s, r []perf
	for i := range *rounds {
		order := []*server{stock, rg}
		if i%2 == 1 {
			order = []*server{rg, stock}
		}
		for _, srv := range order {
			p, err := dnsperf(srv.addr, qfile)
			if err != nil {
				return perf{}, perf{}, err
			}
			if srv == stock {
				s = append(s, p)
			} else {
				r = append(r, p)
			}
		}
	}
	return median(s), median(r), nil
}

// median returns the run with the median throughput.
func median(ps []perf) perf {
	slices.SortFunc(ps, func(a, b perf) int {
		switch {
		case a.qps < b.qps:
			return -1
		case a.qps > b.qps:
			return 1
		}
		return 0
	})
	return ps[len(ps)/2]
}

func throughputRows(bin, dir string) ([]row, error) {
	up, err := lab.StartUpstream("", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	defer up.Close()

	hitS, hitR, err := compareRuns(bin, dir, "hits", lab.StockCorefile, lab.RaceguardCorefile, cacheHitQueries, up.Addr)
	if err != nil {
		return nil, err
	}
	apS, apR, err := compareRuns(bin, dir, "autopath", AutopathCorefile, lab.RaceguardCorefile, expandedQueries, up.Addr)
	if err != nil {
		return nil, err
	}
	runs := fmt.Sprintf("median of %d × %d s", *rounds, *seconds)
	return []row{
		{"Cache hits: dnsperf queries/s (" + runs + ")", qps(hitS), qps(hitR), pct(hitR.qps / hitS.qps)},
		{"Cache hits: mean latency", ms(hitS.latency), ms(hitR.latency), pct(hitR.latency / hitS.latency)},
		{"Search-expanded names: queries/s (stock column: `autopath` on resolv.conf)", qps(apS), qps(apR), pct(apR.qps / apS.qps)},
		{"Search-expanded names: mean latency", ms(apS.latency), ms(apR.latency), pct(apR.latency / apS.latency)},
		{"Search-expanded names: answers that are NOERROR", pct(frac(apS.noerror, apS.sent)), pct(frac(apR.noerror, apR.sent)), ""},
	}, nil
}

func qps(p perf) string   { return fmt.Sprintf("%.0f", p.qps) }
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
