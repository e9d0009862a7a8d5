package cluster

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/test/lab"
)

// libcs are the two resolvers every scenario runs.
var libcs = []lab.Libc{lab.Glibc, lab.Musl}

// loopNames are the names the scenarios' lookups ask: a Service of the pod's namespace, one of
// another namespace, and an external name (a cache hit after the first, and a search walk of five
// tries with ndots:5).
var loopNames = []string{"web", "api.shop", "example.org"}

// slowLookup is how long a lookup may take before the summary counts it as slow. A lookup that
// waited for a resolver retry (glibc waits 5 s, musl 2.5 s) is a stall: the scenarios assert on
// stalls, which a loaded machine does not make, not on slow lookups, which it can.
const (
	slowLookup  = time.Second
	stallLookup = 2400 * time.Millisecond
)

// record is one lookup of a scenario.
type record struct {
	pod  string
	libc lab.Libc
	lab.Result
}

// tally is what a scenario prints in its summary line.
type tally struct {
	lookups, failures, slow int
	stalls                  int      // lookups of stallLookup or more
	conntrack               int      // conntrack entries made by the pods' DNS
	node                    Counters // node1's counters over the scenario
	ct                      conntrack.Stats
	failed, stalled         []string // the first few, for the error messages
}

// add counts rs against want (a lookup fails when its outcome differs).
func (tl *tally) add(rs []record, want func(r record) string) {
	for _, r := range rs {
		tl.lookups++
		if w := want(r); r.String() != w {
			tl.failures++
			if len(tl.failed) < 8 {
				tl.failed = append(tl.failed, fmt.Sprintf("%s %s %s: %s, want %s (began %s, took %s)", r.pod, r.libc, r.Name, r, w,
					r.Started.Format("15:04:05.000"), r.Elapsed.Round(time.Millisecond)))
			}
		}
		if r.Elapsed >= stallLookup {
			tl.stalls++
			if len(tl.stalled) < 8 {
				tl.stalled = append(tl.stalled, fmt.Sprintf("%s %s %s: %s, took %s (began %s)", r.pod, r.libc, r.Name, r,
					r.Elapsed.Round(time.Millisecond), r.Started.Format("15:04:05.000")))
			}
		}
		if r.Elapsed >= slowLookup {
			tl.slow++
		}
	}
}

// summary prints the scenario's line for the table of the closing note:
//
//	SUMMARY mode=nftables scenario=1-transparent lookups=... failures=... slow=... stalls=... conntrack=... node: ...
func summary(t *testing.T, mode, scenario string, tl tally, extra string) {
	t.Helper()
	summaries.Lock()
	summaries.rows = append(summaries.rows, fmt.Sprintf("| %s | %s | %d | %d | %d | %d | %d | %s | %d / %d / %d | %s |", mode, scenario,
		tl.lookups, tl.failures, tl.slow, tl.stalls, tl.conntrack, tl.node, tl.ct.ClashResolve, tl.ct.InsertFailed, tl.ct.Drop, extra))
	summaries.Unlock()
	t.Logf("SUMMARY mode=%s scenario=%s lookups=%d failures=%d slow=%d stalls=%d conntrack=%d node: %s clash_resolve=%d insert_failed=%d drop=%d%s",
		mode, scenario, tl.lookups, tl.failures, tl.slow, tl.stalls, tl.conntrack, tl.node, tl.ct.ClashResolve, tl.ct.InsertFailed, tl.ct.Drop,
		map[bool]string{true: " " + extra, false: ""}[extra != ""])
}

// summaries are the SUMMARY lines of the run, as rows of the table TestCluster ends with.
var summaries struct {
	sync.Mutex
	rows []string
}

// summaryTable returns the run's summaries as one markdown table.
func summaryTable() string {
	summaries.Lock()
	defer summaries.Unlock()
	return "| mode | scenario | lookups | failures | slow ≥1 s | stalls ≥2.4 s | pod DNS conntrack entries | node counters | clash_resolve / insert_failed / drop | |\n" +
		"|---|---|---|---|---|---|---|---|---|---|\n" + strings.Join(summaries.rows, "\n")
}

// ctStats reads node n's conntrack statistics over netlink, as raceguard does.
func ctStats(t *testing.T, n *Node) conntrack.Stats {
	t.Helper()
	var s conntrack.Stats
	err := lab.Do(n.NS, func() error {
		r, err := conntrack.NewNetlink()
		if err != nil {
			return err
		}
		defer r.Close()
		s, err = r.Read()
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// ctSub is a - b for the counters a summary shows.
func ctSub(a, b conntrack.Stats) conntrack.Stats {
	return conntrack.Stats{ClashResolve: a.ClashResolve - b.ClashResolve, InsertFailed: a.InsertFailed - b.InsertFailed,
		Drop: a.Drop - b.Drop, EarlyDrop: a.EarlyDrop - b.EarlyDrop, Invalid: a.Invalid - b.Invalid}
}

// meter reads a node's counters, flows and conntrack statistics at the start of a scenario and
// gives the differences at its end.
type meter struct {
	n     *Node
	c     Counters
	ct    conntrack.Stats
	flows []string
}

func startMeter(t *testing.T, n *Node) *meter {
	t.Helper()
	m := &meter{n: n, ct: ctStats(t, n)}
	var err error
	if m.c, err = n.Counters(); err != nil {
		t.Fatal(err)
	}
	if m.flows, err = n.DNSFlows(); err != nil {
		t.Fatal(err)
	}
	return m
}

// into fills tl with what changed since the meter started: the node's counters and conntrack
// statistics, and the pods' new DNS conntrack entries.
func (m *meter) into(t *testing.T, tl *tally) {
	t.Helper()
	c, err := m.n.Counters()
	if err != nil {
		t.Fatal(err)
	}
	flows, err := m.n.DNSFlows()
	if err != nil {
		t.Fatal(err)
	}
	tl.node = c.Sub(m.c)
	tl.ct = ctSub(ctStats(t, m.n), m.ct)
	tl.conntrack = len(lab.NewFlows(m.flows, flows))
}

// client is one lookup loop's source: a pod and a resolver.
type client struct {
	pod  *Pod
	libc lab.Libc
}

// loops runs lookups from clients continuously until stopped: each client one process after
// another, each asking names in turn, then pausing pause (a steady rate). Every loop is bounded
// by loopLimit and loopMax.
type loops struct {
	check func(record) // called on every lookup, from its loop, if set before the loops start

	mu      sync.Mutex
	records []record // protected by mu
	errs    []error  // protected by mu
	stop    chan struct{}
	wg      sync.WaitGroup
}

const (
	loopLimit = 90 * time.Second
	loopMax   = 2000
)

func startLoops(clients []client, pause time.Duration, names ...string) *loops {
	return startLoopsFunc(clients, pause, nil, func(client, int) []string { return names })
}

// startLoopsFunc is startLoops with the names of each client's i-th process from names, and
// check, if not nil, called on every lookup as soon as it is done.
func startLoopsFunc(clients []client, pause time.Duration, check func(record), names func(c client, i int) []string) *loops {
	l := &loops{stop: make(chan struct{}), check: check}
	for _, c := range clients {
		l.wg.Add(1)
		go func() {
			defer l.wg.Done()
			for i, start := 0, time.Now(); i < loopMax && time.Since(start) < loopLimit; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				rs, err := c.pod.Lookup(c.libc, lab.Unspec, 1, names(c, i)...)
				l.mu.Lock()
				if err != nil {
					l.errs = append(l.errs, err)
				}
				for _, r := range rs {
					l.records = append(l.records, record{c.pod.Name, c.libc, r})
				}
				l.mu.Unlock()
				if l.check != nil {
					for _, r := range rs {
						l.check(record{c.pod.Name, c.libc, r})
					}
				}
				select {
				case <-l.stop:
					return
				case <-time.After(pause):
				}
			}
		}()
	}
	return l
}

// end stops the loops, waits for their last lookups and returns every record, failing t on a
// client that could not run.
func (l *loops) end(t *testing.T) []record {
	t.Helper()
	close(l.stop)
	l.wg.Wait()
	for _, err := range l.errs {
		t.Error(err)
	}
	return l.records
}

// snapshot returns the records so far.
func (l *loops) snapshot() []record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.records)
}

// lookupAll looks names up once from every client (workers processes each) and returns the
// records.
func lookupAll(t *testing.T, clients []client, workers int, names ...string) []record {
	t.Helper()
	var out []record
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rs, err := c.pod.Lookup(c.libc, lab.Unspec, workers, names...)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			for _, r := range rs {
				out = append(out, record{c.pod.Name, c.libc, r})
			}
		}()
	}
	wg.Wait()
	return out
}

// firstFew joins up to n of s.
func firstFew(s []string, n int) string {
	return strings.Join(s[:min(n, len(s))], "; ")
}

// waitFor polls cond every 100 ms until it holds or timeout passes.
func waitFor(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
	return true
}

// explain asks the pod's nameserver, from the pod, for every name the pod's resolver tries for
// r.Name (its search list, then as is), A and AAAA, and returns the answers: what a wrong or
// failed lookup saw, right after it.
func (w *world) explain(r record) string {
	p := w.pods[r.pod]
	var search []string
	var server string
	for _, line := range strings.Split(p.ResolvConfText(), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && f[0] == "search" {
			search = f[1:]
		}
		if len(f) > 1 && f[0] == "nameserver" && server == "" {
			server = f[1]
		}
	}
	var out []string
	for _, name := range append(append([]string{}, func() []string {
		var c []string
		for _, d := range search {
			c = append(c, r.Name+"."+d)
		}
		return c
	}()...), r.Name) {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA} {
			m, err := lab.Exchange(p.NS, "udp", server+":53", new(dns.Msg).SetQuestion(dns.Fqdn(name), qt), time.Second)
			if err != nil {
				out = append(out, fmt.Sprintf("%s/%s: %v", name, dns.TypeToString[qt], err))
				continue
			}
			out = append(out, fmt.Sprintf("%s/%s: %s %d answers", name, dns.TypeToString[qt], dns.RcodeToString[m.Rcode], len(m.Answer)))
		}
	}
	return strings.Join(out, "; ")
}

// logLines returns the last n lines of log that contain what.
func logLines(log, what string, n int) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out[max(0, len(out)-n):], "\n")
}
