// Command soak loads a node-local raceguard in the network-namespace lab for a minute at the
// highest query rate this machine sustains, with the emulated conntrack drop on, and prints a
// markdown report: queries lost against packets the fault dropped, latency percentiles, the
// CoreDNS process's RSS and goroutines over the run, and the occupancy of raceguard's tables.
// It exits non-zero when a check fails. `make soak` runs it; the README carries its latest output.
//
// The load is dnsperf in the client namespace against the ClusterIP, so every query crosses the
// node's DNAT and the fault rule, from -clients sockets, over a bounded mix of cluster, external,
// wildcard, nonexistent, search-expanded and duplicate-heavy names; beside it a probe makes
// pod-like lookups (a fresh socket per lookup, A and AAAA together, resent after 1 s), the flows
// the emulated race drops. See queries.go and probe.go.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

var (
	corednsFlag = flag.String("coredns", os.Getenv("RACEGUARD_COREDNS"), "custom CoreDNS binary (default $RACEGUARD_COREDNS, else ./coredns)")
	duration    = flag.Duration("duration", 60*time.Second, "length of the soak")
	rateFlag    = flag.Int("rate", 0, "dnsperf queries per second; 0 finds the highest this machine sustains with a short ramp first")
	headroom    = flag.Float64("headroom", 0.8, "with -rate 0, the soak's rate as a fraction of the highest rate the ramp found sustained")
	dropPercent = flag.Int("drop", 5, "emulated drop, percent of the packets the fault selects")
	faultFlag   = flag.String("fault", "parallel", "emulated drop: parallel (the 2nd packet of a flow while the 1st is unanswered) or second (the 2nd packet of every flow)")
	clients     = flag.Int("clients", 200, "dnsperf clients, each its own socket and source port")
	probeRate   = flag.Int("probe", 100, "probe lookups (A+AAAA from a fresh socket) per second")
	floodRate   = flag.Int("flood", 200, "random-subdomain first tries per second from a hostNetwork pod, beside the load; 0 for none")
	interval    = flag.Duration("interval", 10*time.Second, "time between samples of RSS, goroutines and tables")
	upDelay     = flag.Duration("upstream-delay", 2*time.Millisecond, "the upstream's delay before each answer")
	cpuprofile  = flag.String("cpuprofile", "", "write a CPU profile of CoreDNS, taken in the middle of the soak, to this file")
)

// nodeCorefile is raceguard on a node-local server in the node's namespace, as the hostNetwork
// DaemonSet of deploy/ runs it (test/labtest/fingerprint_test.go's nodeCorefile), forwarding to
// the soak's own upstream. The walk budget is off: dnsperf is one client at thousands of queries a
// second.
const nodeCorefile = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    raceguard {
        node_search ` + lab.NodeDomain + `
        ` + lab.PodWatchOptions + `
        walk_budget 0
    }
    cache 30
    collapse
    file {{.ClusterZone}} cluster.local
    forward . ` + upstreamAddr + `
}
`

// upstreamAddr is where the soak's upstream listens, in the lab's upstream namespace.
const upstreamAddr = lab.UpstreamIP + ":5353"

// The soak's upstream gives each name its own TTL in this range (lab.Upstream.SpreadTTLs), so that
// the names cache 30 holds do not all expire in the same second and return as a wave of misses.
const (
	minTTL = 10 // seconds
	maxTTL = 30 // cache 30's cap
)

const (
	dnsperfTimeout = 3        // seconds before dnsperf counts a query lost
	rampStep       = 4        // seconds of each ramp step
	rampMaxLoss    = 0.001    // a sustained rate loses less than this fraction
	rampMinRate    = 0.97     // and dnsperf reaches at least this fraction of it
	soakMinRate    = 0.9      // the soak reaches this fraction of its rate: within the ramp's step
	growthFraction = 0.25     // memory check: end RSS at most this much above the warm value...
	growthBytes    = 30 << 20 // ...or this many bytes, whichever is larger
	goroutineSlack = 50       // goroutine check
)

func main() {
	flag.Parse()
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() { <-ctx.Done(); stop() }() // a second signal kills at once

	fault := lab.FaultParallel
	switch *faultFlag {
	case "parallel":
	case "second":
		fault = lab.FaultSecond
	default:
		return fail(fmt.Errorf("-fault: want parallel or second, got %q", *faultFlag))
	}
	if *clients < 1 || *floodRate < 0 || *duration < 5*time.Second || *dropPercent < 0 || *dropPercent > 100 || *headroom <= 0 || *headroom > 1 {
		return fail(errors.New("want -clients ≥ 1, -flood ≥ 0, -duration ≥ 5s, -drop 0 to 100 and -headroom in (0, 1]"))
	}
	bin := *corednsFlag
	if bin == "" {
		var err error
		if bin, err = lab.RepoPath("coredns"); err != nil {
			return fail(err)
		}
	}
	if _, err := os.Stat(bin); err != nil {
		return fail(fmt.Errorf("%v (run make coredns)", err))
	}
	if _, err := exec.LookPath("dnsperf"); err != nil {
		return fail(fmt.Errorf("%v (apt-get install dnsperf)", err))
	}

	l, err := lab.New(bin)
	if err != nil {
		return fail(err)
	}
	defer l.Close()
	dir, err := os.MkdirTemp("", "raceguard-soak-")
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(dir)

	up, err := lab.StartUpstream(l.Upstream, upstreamAddr)
	if err != nil {
		return fail(err)
	}
	defer up.Close()
	up.SetDelay(*upDelay)
	up.SpreadTTLs(minTTL, maxTTL)
	corefile := nodeCorefile
	if *cpuprofile != "" {
		corefile = withPprof(corefile)
	}
	proc, err := l.StartNodeDNSFor(corefile, lab.DefaultResolvConf())
	if err != nil {
		return fail(err)
	}
	defer proc.Stop()

	r := &report{fault: *faultFlag, drop: *dropPercent, duration: *duration, clients: *clients, probeRate: *probeRate, floodRate: *floodRate, upDelay: *upDelay}
	s, err := takeSample(l, proc.Pid(), 0, "started, idle")
	if err != nil {
		return fail(err)
	}
	r.started = s

	// Warm-up, fault off: the ramp, or a short run at the given rate.
	progress("warming up")
	r.mix = buildMix(*clients)
	qfile := filepath.Join(dir, "queries")
	if err := r.mix.write(qfile); err != nil {
		return fail(err)
	}
	if *rateFlag > 0 {
		r.rate = *rateFlag
		if _, err := runDNSPerf(ctx, l.Client, qfile, true, paced(r.rate, rampStep)...); err != nil {
			return fail(err)
		}
	} else {
		if r.rampRate, r.ramp, err = findRate(ctx, l.Client, qfile, func() (sample, error) {
			return takeSample(l, proc.Pid(), time.Since(r.started.wall), "ramp")
		}); err != nil {
			return fail(err)
		}
		r.rate = int(math.Round(float64(r.rampRate)**headroom/100)) * 100
	}
	if ctx.Err() != nil {
		return interrupted()
	}

	if err := l.SetFault(fault, *dropPercent); err != nil {
		return fail(err)
	}
	if r.idle, err = takeSample(l, proc.Pid(), 0, "warmed up, idle"); err != nil {
		return fail(err)
	}
	c0, err := l.Counters()
	if err != nil {
		return fail(err)
	}
	node0, err := lab.ReadUDPStats(l.Node)
	if err != nil {
		return fail(err)
	}
	client0, err := lab.ReadUDPStats(l.Client)
	if err != nil {
		return fail(err)
	}
	up0 := up.Total()
	log0 := strings.Count(proc.Log(), "[ERROR]")

	progress(fmt.Sprintf("%d q/s for %s, fault %s %d %%", r.rate, *duration, *faultFlag, *dropPercent))
	start := time.Now()
	perfDone := make(chan struct{})
	var perfErr error
	go func() {
		defer close(perfDone)
		r.perf, perfErr = runDNSPerf(ctx, l.Client, qfile, true, paced(r.rate, int(duration.Seconds()))...)
	}()
	floodDone := make(chan struct{})
	var floodErr error
	go func() {
		defer close(floodDone)
		r.flood, floodErr = runFlood(l.Node, *floodRate, *duration)
	}()
	probeCtx, stopProbe := context.WithCancel(ctx)
	probeDone := make(chan struct{})
	go func() {
		defer close(probeDone)
		r.probe = runProbe(probeCtx, l.Client, *probeRate, probeNames())
	}()

	profileDone := make(chan error, 1)
	if *cpuprofile != "" {
		go func() {
			seconds := int(min(10*time.Second, *duration/3).Seconds())
			select {
			case <-time.After(*duration / 3):
				profileDone <- cpuProfile(ctx, l.Node, *cpuprofile, seconds)
			case <-ctx.Done():
				profileDone <- ctx.Err()
			}
		}()
	} else {
		profileDone <- nil
	}
	tick := time.NewTicker(*interval)
	var sampleErr error
	sampleNow := func(phase string) {
		s, err := takeSample(l, proc.Pid(), time.Since(start), phase)
		if err != nil {
			sampleErr = err
			return
		}
		r.load = append(r.load, s)
	}
	sampleNow("load")
wait:
	for {
		select {
		case <-tick.C:
			sampleNow("load")
		case <-perfDone:
			break wait
		}
	}
	tick.Stop()
	stopProbe()
	sampleNow("end of load")
	<-probeDone
	<-floodDone
	if ctx.Err() != nil {
		return interrupted()
	}
	if perfErr != nil {
		return fail(perfErr)
	}
	if floodErr != nil {
		return fail(floodErr)
	}
	if sampleErr != nil {
		return fail(sampleErr)
	}
	if err := <-profileDone; err != nil {
		return fail(err)
	}
	// The probe's last lookups may still wait on a dropped packet: read the counters after it.
	c1, err := l.Counters()
	if err != nil {
		return fail(err)
	}
	r.counters = c1.Sub(c0)
	node1, err := lab.ReadUDPStats(l.Node)
	if err != nil {
		return fail(err)
	}
	client1, err := lab.ReadUDPStats(l.Client)
	if err != nil {
		return fail(err)
	}
	r.nodeUDP, r.clientUDP = node1.Sub(node0), client1.Sub(client0)
	r.upstream = up.Total() - up0
	r.errorLogs = strings.Count(proc.Log(), "[ERROR]") - log0
	if err := l.SetFault(lab.FaultOff, 0); err != nil {
		return fail(err)
	}

	// Idle again: in-flight work drains (a search walk is bounded by 5 s).
	progress("settling")
	settleStart := time.Now()
	for {
		time.Sleep(time.Second)
		s, err := takeSample(l, proc.Pid(), time.Since(start), "settled, idle")
		if err != nil {
			return fail(err)
		}
		r.settled = s
		waited := time.Since(settleStart)
		if waited >= 2*time.Second && s.goroutines <= r.idle.goroutines+goroutineSlack || waited >= 10*time.Second || ctx.Err() != nil {
			break
		}
	}
	r.settleTime = time.Since(settleStart)
	// Every soak sample gets the soak's dnsperf's CPU time: none before it started, all after it
	// ended.
	for i := range r.load {
		s := &r.load[i]
		switch {
		case i == len(r.load)-1:
			s.perfCPU = r.perf.cpu
		case s.perfPID == 0:
			s.perfCPU = 0
		}
		s.perfPID = -1
	}
	r.settled.perfPID, r.settled.perfCPU = -1, r.perf.cpu
	if ctx.Err() != nil {
		return interrupted()
	}

	r.date = time.Now().UTC()
	if !r.print(os.Stdout) {
		return 1
	}
	return 0
}

// paced returns dnsperf's arguments for a run of seconds at rate queries per second.
//
// It lets dnsperf have 25 ms of queries in flight (at least 200): ten times the latency of a
// server that keeps up. dnsperf paces by sending whatever it is behind its schedule as fast as it
// can, up to that bound; with a bound of thousands, one stall of the server (or of the machine)
// turns into a burst that overflows the server's socket buffer, each query lost there holds its
// slot until the timeout, and the loss feeds itself. With 25 ms, a server that falls behind makes
// dnsperf send less, which the ramp sees as a rate not reached.
func paced(rate, seconds int) []string {
	return []string{"-l", strconv.Itoa(seconds), "-Q", strconv.Itoa(rate), "-c", strconv.Itoa(*clients),
		"-q", strconv.Itoa(max(200, rate/40)), "-t", strconv.Itoa(dnsperfTimeout)}
}

// rampStepResult is one step of the ramp.
type rampStepResult struct {
	target        int // 0: unpaced
	p             perf
	sustained     bool
	before, after sample
}

// findRate finds the highest rate this machine sustains: an unpaced run gives the ceiling, then
// paced runs step down from it by a tenth until one loses less than rampMaxLoss of its queries and
// reaches rampMinRate of its target. The fault is off: the ramp measures capacity. dnsperf runs
// with -v, as in the soak, since printing a line per query costs it a share of its throughput.
func findRate(ctx context.Context, ns, qfile string, sampleNow func() (sample, error)) (int, []rampStepResult, error) {
	var steps []rampStepResult
	step := func(target int, args ...string) (rampStepResult, error) {
		before, err := sampleNow()
		if err != nil {
			return rampStepResult{}, err
		}
		p, err := runDNSPerf(ctx, ns, qfile, true, args...)
		if err != nil {
			return rampStepResult{}, err
		}
		after, err := sampleNow()
		what := "unpaced"
		if target > 0 {
			what = fmt.Sprintf("target %d q/s", target)
		}
		progress(fmt.Sprintf("ramp, %s: %.0f q/s, %d of %d lost", what, p.QPS, p.Lost, p.Sent))
		return rampStepResult{target: target, p: p, before: before, after: after}, err
	}
	st, err := step(0, "-l", strconv.Itoa(rampStep), "-c", strconv.Itoa(*clients), "-q", "500", "-t", "2")
	if err != nil {
		return 0, nil, err
	}
	steps = append(steps, st)
	p := st.p
	ceiling := p.QPS
	for f := 10; f >= 3; f-- {
		if ctx.Err() != nil {
			return 0, steps, nil
		}
		target := int(math.Round(ceiling*float64(f)/10/100)) * 100
		st, err := step(target, paced(target, rampStep)...)
		if err != nil {
			return 0, nil, err
		}
		p := st.p
		st.sustained = p.Sent > 0 && float64(p.Lost) < rampMaxLoss*float64(p.Sent) && p.QPS >= rampMinRate*float64(target)
		steps = append(steps, st)
		if st.sustained {
			return target, steps, nil
		}
	}
	return 0, steps, errors.New("no rate down to 30 % of the unpaced ceiling was sustained")
}

func progress(s string) { fmt.Fprintf(os.Stderr, "soak: %s\n", s) }

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "soak:", err)
	return 1
}

func interrupted() int {
	fmt.Fprintln(os.Stderr, "soak: interrupted; lab torn down")
	return 130
}
