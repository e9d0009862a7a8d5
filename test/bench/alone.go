package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"

	"github.com/raceguard/raceguard/test/dnsperf"
	"github.com/raceguard/raceguard/test/lab"
)

// The single-server rows measure what a user sizing replicas would: each server alone on CPU 0
// with GOMAXPROCS=1, dnsperf and the upstream (this process) on CPU 1, the servers of a
// comparison one after the other in each round, the order rotating from round to round. Each
// ratio is the median over rounds of the two servers' ratio within the round, so a slow stretch
// of this machine counts against both; the stock-against-stock column says how far apart two
// identical servers land.

// column is one server of a single-server comparison.
type column struct {
	label    string
	corefile string
	env      []string // VAR=value added to the server's environment
}

// aloneRuns are the runs of each column, round by round.
type aloneRuns struct {
	runs     [][]perf
	profiles []string // each column's CPU profile over the middle round, when asked for
	servers  []*server
}

// runAlone starts a pinned server for each column, warms each (its cache, and the runtime's
// state under load: a GC has sized the goroutines' starting stack), then runs dnsperf against each
// alone in every round. With profile set, a CPU profile of each server is kept over the middle
// round. The servers are killed when done returns.
func runAlone(bin, dir, label string, cols []column, queries []string, upstream, kubeconfig string, profile bool) (a aloneRuns, done func(), err error) {
	done = func() {
		for _, s := range a.servers {
			s.p.Kill()
		}
	}
	qfile := filepath.Join(dir, label+".queries")
	if err := dnsperf.WriteQueries(qfile, queries); err != nil {
		return a, done, err
	}
	load := []string{"-l", strconv.Itoa(*seconds), "-c", "64", "-q", "200"}
	pprofs := make([]string, len(cols))
	for i, c := range cols {
		s, pp, err := startAlone(bin, dir, fmt.Sprintf("%s-%d", label, i), c, upstream, kubeconfig, profile)
		if err != nil {
			return a, done, err
		}
		a.servers, pprofs[i] = append(a.servers, s), pp
		warm(s.addr, queries)
		if _, err := runDNSPerf(s.addr, qfile, "-l", strconv.Itoa(*warmFor), "-c", "64", "-q", "200"); err != nil {
			return a, done, err
		}
	}
	a.runs = make([][]perf, len(cols))
	a.profiles = make([]string, len(cols))
	for round := range *rounds {
		for j := range cols {
			i := (round + j) % len(cols)
			var prof chan string
			if profile && round == *rounds/2 {
				prof = make(chan string, 1)
				go func() { prof <- fetchProfile(pprofs[i], dir, fmt.Sprintf("%s-%d", label, i)) }()
			}
			p, err := measure(a.servers[i], qfile, load...)
			if prof != nil {
				a.profiles[i] = <-prof
			}
			if err != nil {
				return a, done, err
			}
			a.runs[i] = append(a.runs[i], p)
		}
	}
	return a, done, nil
}

// startAlone starts the server of column c on loopback, pinned with one P, with health, ready
// and (with profile) pprof on ports of their own; it returns the pprof address.
func startAlone(bin, dir, name string, c column, upstream, kubeconfig string, profile bool) (*server, string, error) {
	ports, err := lab.FreeLoopbackPorts(5)
	if err != nil {
		return nil, "", err
	}
	d := lab.CorefileData{Port: ports[0], Metrics: "127.0.0.1:" + ports[1], Health: "127.0.0.1:" + ports[2], Ready: "127.0.0.1:" + ports[3], Upstream: upstream, Kubeconfig: kubeconfig}
	text, err := lab.Render(c.corefile, d, dir)
	if err != nil {
		return nil, "", err
	}
	pprofAddr := ""
	if profile {
		pprofAddr = "127.0.0.1:" + ports[4]
	}
	text = onLoopback(text, pprofAddr)
	wrap := append(append([]string{"env", "GOMAXPROCS=1"}, c.env...), "taskset", "-c", serverCPU)
	addr := "127.0.0.1:" + ports[0]
	p, err := lab.StartProcess("", bin, dir, name, text, addr, wrap...)
	if err != nil {
		return nil, "", err
	}
	return &server{p: p, addr: addr, metrics: d.Metrics}, pprofAddr, nil
}

// onLoopback binds every server block of the Corefile text to 127.0.0.1, and adds pprof at
// pprofAddr, if set, to the first block, the one that answers.
func onLoopback(text, pprofAddr string) string {
	var b strings.Builder
	first := true
	for _, line := range strings.SplitAfter(text, "\n") {
		b.WriteString(line)
		if strings.HasSuffix(line, " {\n") && !strings.HasPrefix(line, " ") {
			b.WriteString("    bind 127.0.0.1\n")
			if first && pprofAddr != "" {
				b.WriteString("    pprof " + pprofAddr + "\n")
			}
			first = false
		}
	}
	return b.String()
}

// cpuRatio is the median over rounds of column i's CPU time per query over column 0's.
func (a aloneRuns) cpuRatio(i int) float64 {
	return a.ratio(i, func(p perf) float64 { return float64(p.cpuPerQuery()) })
}

// qpsRatio is the same for the queries a second dnsperf saw.
func (a aloneRuns) qpsRatio(i int) float64 {
	return a.ratio(i, func(p perf) float64 { return p.QPS })
}

func (a aloneRuns) ratio(i int, f func(perf) float64) float64 {
	r := make([]float64, len(a.runs[i]))
	for k := range r {
		r[k] = f(a.runs[i][k]) / f(a.runs[0][k])
	}
	return medianOf(r)
}

// cell is column i's median CPU time per query and queries a second.
func (a aloneRuns) cell(i int) string {
	cpu := each(a.runs[i], func(p perf) float64 { return float64(p.cpuPerQuery()) / 1e3 })
	qps := each(a.runs[i], func(p perf) float64 { return p.QPS })
	return fmt.Sprintf("%.1f µs; %.0f/s", medianOf(cpu), medianOf(qps))
}

// pinSelf moves every thread of this process (the upstream's among them) to cpu, and returns
// what moves them back to every CPU.
func pinSelf(cpu string) (func(), error) {
	pid := strconv.Itoa(os.Getpid())
	if out, err := exec.Command("taskset", "-a", "-cp", cpu, pid).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("taskset: %v: %s", err, out)
	}
	all := fmt.Sprintf("0-%d", runtime.NumCPU()-1)
	return func() { exec.Command("taskset", "-a", "-cp", all, pid).Run() }, nil
}
