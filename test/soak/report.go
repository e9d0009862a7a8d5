package main

import (
	"fmt"
	"io"
	"maps"
	"math"
	"runtime"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/hostile"
	"github.com/raceguard/raceguard/test/lab"
)

// report is everything the soak measured.
type report struct {
	date                time.Time
	fault               string
	drop                int
	duration            time.Duration
	clients, probeRate  int
	floodRate           int
	flood               hostile.FloodResult
	upDelay             time.Duration
	mix                 mix
	rate, rampRate      int
	ramp                []rampStepResult
	perf                perf
	probe               probeResult
	counters            lab.Counters // node counters over the soak
	nodeUDP, clientUDP  lab.UDPStats
	upstream, errorLogs int

	started, idle, settled sample
	load                   []sample // under load, the last at its end
	settleTime             time.Duration
}

// warm returns the load sample the memory check starts from: the first at least a quarter of the
// soak (at most 15 s) into it, when the caches and tables have filled (the fingerprints' window
// is 15 s, a search walk's memory 10 s at most) and the load ramp-up is over.
func (r *report) warm() sample {
	at := min(15*time.Second, r.duration/4)
	for _, s := range r.load {
		if s.at >= at {
			return s
		}
	}
	return r.load[len(r.load)-1]
}

func (r *report) end() sample { return r.load[len(r.load)-1] }

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// print writes the report and returns whether every check passed.
func (r *report) print(w io.Writer) bool {
	p := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	p("`make soak`, %s, %s\n\n", r.date.Format("2006-01-02"), lab.Machine())

	how := "given with -rate"
	if len(r.ramp) > 0 {
		how = fmt.Sprintf("%.0f %% of %d q/s, the highest rate the ramp below found sustained: < %.1f %% lost and ≥ %.0f %% "+
			"of the target reached in %d s; a minute at the edge of a saturated machine meets stalls that a %d-s step misses",
			float64(r.rate)/float64(r.rampRate)*100, r.rampRate, rampMaxLoss*100, rampMinRate*100, rampStep, rampStep)
	}
	faultWhat := map[string]string{
		"parallel": "the second packet of a UDP flow while its first is unanswered (a pair really in flight together)",
		"second":   "the second packet of every UDP flow",
	}[r.fault]
	para := fmt.Sprintf("dnsperf for %s at **%d queries/s** (%s), from %d clients (a socket and source port each) "+
		"in the client namespace to the ClusterIP, through the node's DNAT and fault rule, to raceguard node-local in the "+
		"node namespace (cache 30, collapse; forward to an upstream that answers after %s and gives each name its own TTL, "+
		"%d to %d s). The query file has %d lines, %d distinct name/type pairs: cluster and external names, upstream "+
		"wildcards, NXDOMAINs, search-expanded first tries, runs of %d identical queries. Beside it a probe makes %d "+
		"pod-like lookups/s, each A+AAAA from a fresh socket, resending what is unanswered after %s. "+
		"Emulated conntrack race (`%s`): %d %% of %s.",
		r.duration, r.rate, how, r.clients, r.upDelay, minTTL, maxTTL, len(r.mix.lines), r.mix.distinct, dupRun,
		r.probeRate, probeTimeout, r.fault, r.drop, faultWhat)
	if r.floodRate > 0 {
		para += fmt.Sprintf(" And a random-subdomain flood: a hostNetwork pod (the node's address) sends %d first tries a "+
			"second of names that exist nowhere, each new.", r.floodRate)
	}
	p("%s\n\n", wrap(para, 110))

	if len(r.ramp) > 0 {
		p("| Ramp step (%d s, fault off) | Target q/s | Achieved q/s | Lost | Sustained | CPU, %% of one core: CoreDNS / dnsperf / this program / softirq / rest |\n|---|---|---|---|---|---|\n", rampStep)
		for i, s := range r.ramp {
			target, verdict := "unpaced", ""
			if s.target > 0 {
				target, verdict = fmt.Sprint(s.target), map[bool]string{true: "yes", false: "no"}[s.sustained]
			}
			p("| %d | %s | %.0f | %d / %d | %s | %s |\n", i+1, target, s.p.QPS, s.p.Lost, s.p.Sent, verdict, cpuCell(s.before, s.after, s.p.cpu))
		}
		p("\n")
	}

	pr := r.probe
	p("| Queries | Value |\n|---|---|\n")
	p("| dnsperf: sent / completed / lost (timed out after %d s) | %d / %d / %d (%d) (%.0f q/s achieved) |\n",
		dnsperfTimeout, r.perf.Sent, r.perf.Completed, r.perf.Lost, r.perf.timeouts, r.perf.QPS)
	p("| dnsperf: response codes | %s |\n", r.perf.RCodes)
	p("| probe: lookups / failed after %d tries / queries lost and resent | %d / %d / %d |\n", probeAttempts, pr.lookups, pr.failed, pr.lost)
	if pr.skipped+pr.sendErrors+pr.badReply+pr.servfail > 0 {
		p("| probe: ticks skipped (%d in flight) / socket errors / mismatched replies / SERVFAIL | %d / %d / %d / %d |\n",
			probeInflight, pr.skipped, pr.sendErrors, pr.badReply, pr.servfail)
	}
	if r.floodRate > 0 {
		p("| flood of random first tries from a hostNetwork pod: sent / answered within 5 s / mismatched / NXDOMAIN | %d / %d / %d / %d |\n",
			r.flood.Sent, r.flood.Answered, r.flood.Mismatch, r.flood.Rcodes[dns.RcodeNameError])
	}
	p("| packets the fault dropped (node nft counter) | %d |\n", r.counters.FaultDrops)
	p("| UDP queries the node saw from the client | %d |\n", r.counters.ClientUDP)
	p("| UDP datagrams the kernel dropped for full buffers: node / client namespace | %d / %d |\n",
		r.nodeUDP.BufferDrops(), r.clientUDP.BufferDrops())
	p("| queries to the upstream / CoreDNS [ERROR] log lines | %d / %d |\n", r.upstream, r.errorLogs)
	p("\n")

	p("| Latency | p50 | p90 | p99 | p99.9 | max |\n|---|---|---|---|---|---|\n")
	if r.perf.lat != nil {
		p("| dnsperf, per query (%d answered) | %s |\n", r.perf.lat.n, r.perf.lat.percentileCells())
	}
	if r.floodRate > 0 {
		p("| flood, per query (%d answered) | %s / - / %s / - / %s |\n", r.flood.Answered, r.flood.Quantile(0.5).Round(time.Microsecond),
			r.flood.Quantile(0.99).Round(time.Microsecond), r.flood.Quantile(1).Round(time.Microsecond))
	}
	p("| probe, per lookup: A+AAAA, retries included (%d; %d ≥ %s) | %s |\n", pr.lat.n, pr.lat.atLeast(probeTimeout), probeTimeout, pr.lat.percentileCells())
	p("\n")

	r.printSamples(p)
	r.printMechanisms(p)
	return r.printChecks(p)
}

func (r *report) printSamples(p func(string, ...any)) {
	tables := r.end().tables()
	p("| t | Phase | RSS | Go heap in use | Goroutines | CPU, %% of one core: CoreDNS / dnsperf / this program / softirq / rest | Node buffer drops in the soak | Cache entries | %s |\n", strings.Join(tables, " | "))
	p("|---|---|---|---|---|---|---|---|%s\n", strings.Repeat("---|", len(tables)))
	all := append(append([]sample{r.started, r.idle}, r.load...), r.settled)
	for i, s := range all {
		cpu := "-"
		if i > 2 && s.wall.Sub(all[i-1].wall) >= 500*time.Millisecond { // not across the ramp
			cpu = cpuCell(all[i-1], s, -1)
		}
		at := "-"
		if i >= 2 {
			at = fmt.Sprintf("%.0f s", s.at.Seconds())
		}
		var cells []string
		for _, t := range tables {
			cells = append(cells, fmt.Sprintf("%.0f", s.entries[t]))
		}
		drops := "-"
		if i >= 2 {
			drops = fmt.Sprint(s.bufDrops - r.idle.bufDrops)
		}
		p("| %s | %s | %s | %s | %d | %s | %s | %.0f | %s |\n", at, s.phase, mib(s.rss), mib(int64(s.heap)), s.goroutines, cpu,
			drops, s.cache, strings.Join(cells, " | "))
	}
	p("\n")
	end := r.end()
	p("| Table at the end of load | Entries / capacity | Most seen under load | Overflows during the soak |\n|---|---|---|---|\n")
	for _, t := range tables {
		most := 0.0
		for _, s := range r.load {
			most = max(most, s.entries[t])
		}
		p("| %s | %.0f / %.0f | %.0f | %.0f |\n", t, end.entries[t], end.capacity[t], most, end.overflows[t]-r.idle.overflows[t])
	}
	p("\n")
}

// printMechanisms shows how much of raceguard the mix exercised.
func (r *report) printMechanisms(p func(string, ...any)) {
	a, b := r.idle.m, r.end().m
	d := func(name string, labels map[string]string) float64 { return b.Sum(name, labels) - a.Sum(name, labels) }
	p("| During the soak | Count |\n|---|---|\n")
	p("| requests served / cache hits / cache misses | %.0f / %.0f / %.0f |\n",
		d("coredns_dns_requests_total", nil), d("coredns_cache_hits_total", nil), d("coredns_cache_misses_total", nil))
	var walks []string
	for _, o := range []string{"answered", "as_asked", "passed_through", "exhausted"} {
		walks = append(walks, fmt.Sprintf("%s %.0f", o, d("coredns_raceguard_search_walks_total", map[string]string{"outcome": o})))
	}
	p("| search walks | %s |\n", strings.Join(walks, ", "))
	var declined []string
	reasons := map[string]bool{}
	for _, smp := range b {
		if smp.Name == "coredns_raceguard_search_declined_total" {
			reasons[smp.Labels["reason"]] = true
		}
	}
	for _, reason := range slices.Sorted(maps.Keys(reasons)) {
		if n := d("coredns_raceguard_search_declined_total", map[string]string{"reason": reason}); n > 0 {
			declined = append(declined, fmt.Sprintf("%s %.0f", reason, n))
		}
	}
	p("| search: first tries served as they are, by reason | %s |\n", strings.Join(declined, ", "))
	p("| search: queries saved / answered from memory | %.0f / %.0f |\n",
		d("coredns_raceguard_search_queries_saved_total", nil), d("coredns_raceguard_search_remembered_total", nil))
	p("| collapse: queries collapsed / retransmissions collapsed / waiter timeouts / overflows | %.0f / %.0f / %.0f / %.0f |\n",
		d("coredns_raceguard_collapsed_total", nil), d("coredns_raceguard_collapsed_retransmits_total", nil),
		d("coredns_raceguard_collapse_waiter_timeouts_total", nil), d("coredns_raceguard_collapse_overflows_total", nil))
	p("| sibling prefetches / hits / skipped | %.0f / %.0f / %.0f |\n", d("coredns_raceguard_sibling_prefetches_total", nil),
		d("coredns_raceguard_sibling_prefetch_hits_total", nil), d("coredns_raceguard_sibling_prefetches_skipped_total", nil))
	p("| fingerprints: late siblings / retransmissions | %.0f / %.0f |\n",
		d("coredns_raceguard_late_siblings_total", nil), d("coredns_raceguard_retransmits_total", nil))
	p("\n")
	p("dnsperf asks a name's A and AAAA from unrelated clients at unrelated times, and reuses query IDs, so most late\n")
	p("siblings and retransmissions above are its artifacts; the probe's dropped AAAAs are among them. Both send only\n")
	p("first tries: search memory answers a client's later tries, which neither sends.\n\n")
}

// printChecks prints a PASS or FAIL line per check and returns whether all passed.
func (r *report) printChecks(p func(string, ...any)) bool {
	ok := true
	check := func(pass bool, format string, args ...any) {
		verdict := "PASS"
		if !pass {
			verdict, ok = "FAIL", false
		}
		p("- **%s** %s\n", verdict, fmt.Sprintf(format, args...))
	}
	warm, end := r.warm(), r.end()
	maxRSS := int64(0)
	for _, s := range r.load {
		maxRSS = max(maxRSS, s.rss)
	}

	// Memory: the end of load against the warm sample, both under the same load.
	allowed := max(int64(float64(warm.rss)*growthFraction), growthBytes)
	queriesAfter := float64(r.perf.Sent) * (r.duration - warm.at).Seconds() / r.duration.Seconds()
	check(end.rss <= warm.rss+allowed,
		"memory flat: RSS %s at %.0f s (warm), %s at the end of load (%+.1f MiB; max %s), allowed +%s (+%.0f %% or +%s, "+
			"whichever is larger; over the %.0f queries after the warm sample that is %.0f bytes per query)",
		mib(warm.rss), warm.at.Seconds(), mib(end.rss), float64(end.rss-warm.rss)/(1<<20), mib(maxRSS), mib(allowed),
		growthFraction*100, mib(growthBytes), queriesAfter, float64(allowed)/max(1, queriesAfter))

	// Goroutines: idle against idle. Under load the count is the queries in flight, which only
	// says how far behind the server is at that instant.
	minG, maxG := math.MaxInt, 0
	for _, s := range r.load[:len(r.load)-1] { // not the end of load: dnsperf has finished by then
		minG, maxG = min(minG, s.goroutines), max(maxG, s.goroutines)
	}
	check(r.settled.goroutines <= r.idle.goroutines+goroutineSlack,
		"goroutines flat: %d idle after the warm-up, %d idle %.0f s after the load (allowed +%d); %d to %d under load",
		r.idle.goroutines, r.settled.goroutines, r.settleTime.Seconds(), goroutineSlack, minG, maxG)

	// Loss: every query lost is one the fault dropped, or one the kernel dropped at a full socket
	// buffer because the machine fell behind; the second kind must stay as rare as the ramp allowed.
	// The flood's queries share the server's socket, and so its buffer.
	lost := r.perf.Lost + r.probe.lost + r.flood.Unanswered()
	sent := r.perf.Sent + 2*r.probe.lookups + r.flood.Sent
	buffers := r.nodeUDP.BufferDrops() + r.clientUDP.BufferDrops()
	tolerance := sent / 100000
	check(lost <= r.counters.FaultDrops+buffers+tolerance,
		"no lost query beyond the fault's drops: %d lost (dnsperf %d, probe %d, flood %d) against %d packets the fault dropped "+
			"and %d datagrams the kernel dropped at full socket buffers; tolerance %d (1 in 100,000 sent, for answers later than the timeout)",
		lost, r.perf.Lost, r.probe.lost, r.flood.Unanswered(), r.counters.FaultDrops, buffers, tolerance)
	check(float64(buffers) < rampMaxLoss*float64(sent) && r.perf.QPS >= soakMinRate*float64(r.rate),
		"rate sustained: %.0f q/s of %d reached (allowed ≥ %.0f %%: the ramp's step), %d of %d queries (%.3f %%) dropped at full socket buffers (allowed < %.1f %%, as in the ramp)%s",
		r.perf.QPS, r.rate, soakMinRate*100, buffers, sent, 100*float64(buffers)/float64(max(1, sent)), rampMaxLoss*100, r.otherLoad())
	if r.floodRate > 0 {
		// The fault drops only the pods' flows; a flood query unanswered can only be one the
		// kernel dropped at a full socket buffer, which the loss check above accounts for.
		check(r.flood.Unanswered() <= buffers && r.flood.Mismatch == 0 && r.flood.Rcodes[dns.RcodeServerFailure] == 0,
			"flood answered: %d of %d random first tries from the hostNetwork pod answered within 5 s (the rest within the %d datagrams dropped at full socket buffers), %d SERVFAIL, %d mismatched",
			r.flood.Answered, r.flood.Sent, buffers, r.flood.Rcodes[dns.RcodeServerFailure], r.flood.Mismatch)
	}
	check(r.perf.RCode("SERVFAIL")+r.probe.servfail == 0 && r.probe.failed == 0 && r.probe.badReply == 0,
		"every query answered: %d SERVFAIL (dnsperf %d, probe %d), %d probe lookups failed after %d tries, %d mismatched replies",
		r.perf.RCode("SERVFAIL")+r.probe.servfail, r.perf.RCode("SERVFAIL"), r.probe.servfail, r.probe.failed, probeAttempts, r.probe.badReply)

	// Tables: never above their capacity at any sample.
	within := true
	var worst []string
	for _, s := range append(append([]sample{r.started, r.idle}, r.load...), r.settled) {
		for t, c := range s.capacity {
			if s.entries[t] > c {
				within = false
				worst = append(worst, fmt.Sprintf("%s %.0f / %.0f at %.0f s", t, s.entries[t], c, s.at.Seconds()))
			}
		}
	}
	detail := "every table at or below its capacity in every sample"
	if !within {
		detail = strings.Join(worst, "; ")
	}
	check(within && len(end.capacity) > 0, "tables within capacity: %s", detail)
	return ok
}

// otherLoad notes the CPU other processes took during the soak when it is more than a fifth of a
// core: on a shared machine their load, not the server, may explain a loss.
func (r *report) otherLoad() string {
	first, last := r.load[0], r.end()
	span := float64(last.wall.Sub(first.wall))
	if span <= 0 {
		return ""
	}
	pct := func(d time.Duration) float64 { return 100 * float64(d) / span }
	perf := r.perf.cpu
	ticks := float64(max(1, last.machine.all-first.machine.all)) / float64(runtime.NumCPU())
	busy := 100 * float64(last.machine.busy-first.machine.busy) / ticks
	soft := 100 * float64(last.machine.softirq-first.machine.softirq) / ticks
	rest := busy - soft - pct(last.cpu-first.cpu) - pct(perf) - pct(last.self-first.self)
	if rest < 20 {
		return ""
	}
	return fmt.Sprintf(" (other processes took %.0f %% of a core on average during the soak)", rest)
}

// cpuCell shows where the CPU time went between two samples, in percent of one core: CoreDNS,
// dnsperf, this program (the upstream, the probe, reading dnsperf), the kernel's softirq (packet
// processing, attributed to no process) and the rest (other processes on the machine, and
// whatever of the lab's own kernel work is not softirq). perf is dnsperf's CPU time between them,
// or negative to read it from the samples.
func cpuCell(a, b sample, perf time.Duration) string {
	span := float64(b.wall.Sub(a.wall))
	pct := func(d time.Duration) float64 { return 100 * float64(d) / span }
	if perf < 0 {
		perf = 0
		if a.perfPID != 0 && a.perfPID == b.perfPID {
			perf = b.perfCPU - a.perfCPU
		}
	}
	ticks := float64(max(1, b.machine.all-a.machine.all)) / float64(runtime.NumCPU()) // per core
	busy := 100 * float64(b.machine.busy-a.machine.busy) / ticks
	soft := 100 * float64(b.machine.softirq-a.machine.softirq) / ticks
	rest := busy - soft - pct(b.cpu-a.cpu) - pct(perf) - pct(b.self-a.self)
	return fmt.Sprintf("%.0f / %.0f / %.0f / %.0f / %.0f", pct(b.cpu-a.cpu), pct(perf), pct(b.self-a.self), soft, max(0, rest))
}

// wrap breaks s into lines of at most width columns.
func wrap(s string, width int) string {
	var b strings.Builder
	n := 0
	for _, word := range strings.Fields(s) {
		l := utf8.RuneCountInString(word)
		if n > 0 && n+1+l > width {
			b.WriteByte('\n')
			n = 0
		} else if n > 0 {
			b.WriteByte(' ')
			n++
		}
		b.WriteString(word)
		n += l
	}
	return b.String()
}
