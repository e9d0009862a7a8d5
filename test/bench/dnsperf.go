package main

import (
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/dnsperf"
	"github.com/raceguard/raceguard/test/lab"
)

// perf is one dnsperf run.
type perf struct {
	dnsperf.Stats
	bufDrops  int             // datagrams the kernel dropped at full socket buffers during the run, if counted
	cpu       time.Duration   // the server's CPU time over the run, when measured
	latencies []time.Duration // per answered query, with -v
}

// cpuPerQuery is the server's CPU time per completed query.
func (p perf) cpuPerQuery() time.Duration {
	if p.Completed == 0 {
		return 0
	}
	return p.cpu / time.Duration(p.Completed)
}

// perCPUSecond is the queries the server completed per second of its CPU time: what one core
// would serve.
func (p perf) perCPUSecond() float64 {
	if p.cpu == 0 {
		return 0
	}
	return float64(p.Completed) / p.cpu.Seconds()
}

// runDNSPerf runs dnsperf against addr with the query file queries and the given extra arguments
// (by default a timed run of -seconds), pinned to the load generator's CPU. With -v among args
// the per-query latencies are kept too.
func runDNSPerf(addr, queries string, args ...string) (perf, error) {
	host, port, _ := net.SplitHostPort(addr)
	if len(args) == 0 {
		args = []string{"-l", strconv.Itoa(*seconds), "-c", "8", "-q", "200"}
	}
	argv := append([]string{"taskset", "-c", loadCPU, "dnsperf", "-s", host, "-p", port, "-d", queries}, args...)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return perf{}, fmt.Errorf("dnsperf: %v: %s", err, out)
	}
	// dnsperf succeeded: its statistics are there, and a figure missing from them reads 0.
	st, _ := dnsperf.ParseStats(string(out))
	p := perf{Stats: st}
	for _, line := range strings.Split(string(out), "\n") {
		if q, ok := dnsperf.ParseQuery(line); ok && q.Answered() {
			p.latencies = append(p.latencies, q.Latency)
		}
	}
	return p, nil
}

// server is one CoreDNS on loopback.
type server struct {
	p       *lab.Process
	addr    string
	metrics string // its prometheus address, where known
}

func startLoopback(bin, dir, name, corefile, upstream string, wrap ...string) (*server, error) {
	ports, err := lab.FreeLoopbackPorts(2)
	if err != nil {
		return nil, err
	}
	port := ports[0]
	text, err := lab.Render(corefile, lab.CorefileData{Port: port, Metrics: "127.0.0.1:" + ports[1], Upstream: upstream}, dir)
	if err != nil {
		return nil, err
	}
	text = strings.Replace(text, "errors\n", "bind 127.0.0.1\n    errors\n", 1)
	addr := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, dir, name, text, addr, wrap...)
	if err != nil {
		return nil, err
	}
	return &server{p: p, addr: addr}, nil
}

// warm asks every query once so the measured runs see a warm cache.
func warm(addr string, queries []string) {
	for _, q := range queries {
		name, typ, _ := strings.Cut(q, " ")
		m := new(dns.Msg).SetQuestion(dns.Fqdn(name), dns.StringToType[typ])
		lab.Exchange("", "udp", addr, m, 2*time.Second)
	}
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
