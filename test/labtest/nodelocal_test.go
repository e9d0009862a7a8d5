package labtest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// The node-local tests: raceguard's nodelocal directive on the lab's node, in transparent mode
// (it binds the kube-dns ClusterIP and 169.254.20.10), in front of kube-dns (the lab's two DNS
// servers, stock CoreDNS behind the ClusterIP's DNAT), with real glibc and musl clients in the
// pod and, for the output path, in the node itself (hostNetwork).

// startNodeLocal starts a node-local raceguard with extra nodelocal options and stops it when t
// ends.
func startNodeLocal(t *testing.T, l *lab.Lab, options string, wrap ...string) *lab.Process {
	t.Helper()
	p, err := l.StartNodeLocal(lab.NodeLocalWith(options), wrap...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.StopWithin(10 * time.Second) })
	waitInstalled(t, l, p)
	return p
}

// waitInstalled waits until the node-local server reports its rules installed.
func waitInstalled(t *testing.T, l *lab.Lab, p *lab.Process) {
	t.Helper()
	if err := l.WaitNodeLocalRules(15 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
}

// nodeState is what raceguard may change on the node: its nftables, addresses and links.
func nodeState(t *testing.T, l *lab.Lab) string {
	t.Helper()
	var out []string
	for _, cmd := range [][]string{{"nft", "list", "ruleset"}, {"ip", "-o", "addr"}, {"ip", "-o", "link"}} {
		s, err := l.NodeExec(cmd...)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, stripCounters(s))
	}
	return strings.Join(out, "\n")
}

// stripCounters removes what changes by itself: nft packet counts, and the "tentative" flag of an
// IPv6 address still in duplicate address detection when the lab was made moments before.
func stripCounters(s string) string {
	var lines []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "counter packets"); i >= 0 {
			line = line[:i] + "counter"
		}
		lines = append(lines, strings.Replace(line, " tentative ", " ", 1))
	}
	return strings.Join(lines, "\n")
}

// stalled returns how many of rs took at least a second, and the slowest.
func stalled(rs []lab.Result) (n int, worst time.Duration) {
	for _, r := range rs {
		if r.Elapsed >= time.Second {
			n++
		}
		worst = max(worst, r.Elapsed)
	}
	return n, worst
}

// TestNodeLocalNoStallLab: with the emulated conntrack race (5 % of parallel pairs lose their
// second packet in the node's conntrack path), lookups through kube-dns directly stall by a
// resolver timeout about 1-0.95^5 of the time; through a node-local raceguard none do, because
// NOTRACK keeps the pod's DNS out of conntrack altogether: the node has no conntrack entry for any
// pod DNS query. In link-local mode (nameserver 169.254.20.10) it is the same.
func TestNodeLocalNoStallLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	if err := l.SetFault(lab.FaultSecond, 5); err != nil {
		t.Fatal(err)
	}
	const lookups, workers = 150, 32
	names := slices.Repeat([]string{"example.org"}, lookups)
	run := func(rc lab.ResolvConf) (glibc, musl []lab.Result) {
		t.Helper()
		var err error
		if glibc, err = l.Lookup(lab.Glibc, lab.Unspec, rc, workers, names...); err != nil {
			t.Fatal(err)
		}
		if musl, err = l.Lookup(lab.Musl, lab.Unspec, rc, workers, names...); err != nil {
			t.Fatal(err)
		}
		return glibc, musl
	}

	c0, _ := l.Counters()
	g, m := run(lab.DefaultResolvConf())
	c1, _ := l.Counters()
	gs, gw := stalled(g)
	ms, mw := stalled(m)
	t.Logf("through kube-dns (DNAT): glibc %d/%d stalled ≥1s (worst %s), musl %d/%d (worst %s); %d packets dropped by the emulated race",
		gs, lookups, gw.Round(time.Millisecond), ms, lookups, mw.Round(time.Millisecond), c1.Sub(c0).FaultDrops)
	if gs < lookups/20 || ms < lookups/20 {
		t.Errorf("Expected the emulated race to stall at least 5 %% of lookups through kube-dns, got glibc %d and musl %d of %d", gs, ms, lookups)
	}

	startNodeLocal(t, l, "")
	for _, mode := range []struct {
		name string
		rc   lab.ResolvConf
	}{{"transparent (nameserver " + lab.ClusterIP + ")", lab.DefaultResolvConf()}, {"link-local (nameserver " + lab.LinkLocalIP + ")", lab.LinkLocalResolvConf()}} {
		c0, _ := l.Counters()
		flows0, err := l.PodDNSFlows()
		if err != nil {
			t.Fatal(err)
		}
		g, m := run(mode.rc)
		c1, _ := l.Counters()
		d := c1.Sub(c0)
		gs, gw := stalled(g)
		ms, mw := stalled(m)
		t.Logf("node-local raceguard, %s: glibc %d/%d stalled (worst %s), musl %d/%d (worst %s); %d queries to the node-local server, %d through the DNAT, %d dropped",
			mode.name, gs, lookups, gw.Round(time.Millisecond), ms, lookups, mw.Round(time.Millisecond), d.LocalUDP, d.ServerUDP, d.FaultDrops)
		if gs+ms != 0 {
			t.Errorf("%s: Expected no stalled lookup through the node-local server, got glibc %d and musl %d", mode.name, gs, ms)
		}
		for _, r := range slices.Concat(g, m) {
			if r.String() != testenv.Joined("192.0.2.10", "2001:db8::10") {
				t.Errorf("%s: Expected example.org's addresses, got %s", mode.name, r)
				break
			}
		}
		if d.LocalUDP < 2*lookups || d.ServerUDP != 0 || d.FaultDrops != 0 {
			t.Errorf("%s: Expected every query at the node-local server and none through the DNAT or dropped, got %+v", mode.name, d)
		}
		// Over TCP (glibc use-vc): the handshake's last ACK finds a request socket, not a full one.
		for _, r := range lookupsOK(t, l, lab.Glibc, mode.rc.WithOptions("use-vc"), "web", "example.org") {
			if r.Elapsed >= time.Second {
				t.Errorf("%s: TCP lookup of %s took %s", mode.name, r.Name, r.Elapsed)
			}
		}
		flows1, err := l.PodDNSFlows()
		if err != nil {
			t.Fatal(err)
		}
		// The entries of the kube-dns run above time out after 30 s or more: count new ones only.
		if fresh := lab.NewFlows(flows0, flows1); len(fresh) > 0 {
			t.Errorf("%s: Expected no conntrack entry for a pod DNS query to the node-local server, got %d: %v", mode.name, len(fresh), fresh[:min(5, len(fresh))])
		}
	}
}

// lookupsOK looks names up once each from the pod and fails t on a lookup that did not resolve.
func lookupsOK(t *testing.T, l *lab.Lab, libc lab.Libc, rc lab.ResolvConf, names ...string) []lab.Result {
	t.Helper()
	rs, err := l.Lookup(libc, lab.Unspec, rc, 1, names...)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Err != "" {
			t.Errorf("%s %s: Expected an answer, got %s", libc, r.Name, r)
		}
	}
	return rs
}

// TestNodeLocalRealRaceLab: real parallel A+AAAA pairs (two CPUs, one socket, the same instant)
// and real SYN pairs race in the node's conntrack on the way to kube-dns, moving clash_resolve and
// insert_failed; through the node-local server every conntrack counter stays flat.
func TestNodeLocalRealRaceLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	var nl conntrack.Reader
	if err := lab.Do(l.Node, func() (err error) { nl, err = conntrack.NewNetlink(); return err }); err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	read := func() conntrack.Stats {
		t.Helper()
		s, err := nl.Read()
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	race := func() (res lab.RaceResult, d conntrack.Stats) {
		t.Helper()
		before := read()
		res, err := lab.UDPPairRace(l.Client, lab.ClusterIP+":53", racePairs)
		if errors.Is(err, lab.ErrUnavailable) {
			t.Skipf("Skipping: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := lab.SYNRace(l.Client, lab.ClusterIP+":53", racePairs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the last SYN-ACKs and resets
		after := read()
		return res, conntrack.Stats{ClashResolve: after.ClashResolve - before.ClashResolve,
			InsertFailed: after.InsertFailed - before.InsertFailed, Drop: after.Drop - before.Drop,
			EarlyDrop: after.EarlyDrop - before.EarlyDrop, Invalid: after.Invalid - before.Invalid}
	}

	res, d := race()
	t.Logf("through kube-dns (DNAT): %d UDP pairs, %d both answered; %d SYN pairs; node clash_resolve +%d, insert_failed +%d, drop +%d",
		res.Pairs, res.BothAnswered, racePairs, d.ClashResolve, d.InsertFailed, d.Drop)
	if d.ClashResolve < racePairs/10 || d.InsertFailed < racePairs/10 {
		t.Errorf("Expected the races to move clash_resolve and insert_failed through the DNAT, got %+v", d)
	}

	startNodeLocal(t, l, "")
	res, d = race()
	t.Logf("through the node-local server: %d UDP pairs, %d both answered; %d SYN pairs; node clash_resolve +%d, insert_failed +%d, drop +%d, early_drop +%d, invalid +%d",
		res.Pairs, res.BothAnswered, racePairs, d.ClashResolve, d.InsertFailed, d.Drop, d.EarlyDrop, d.Invalid)
	if d.ClashResolve != 0 || d.InsertFailed != 0 || d.Drop != 0 || d.EarlyDrop != 0 || d.Invalid != 0 {
		t.Errorf("Expected every conntrack counter flat through the node-local server, got %+v", d)
	}
	if res.BothAnswered != res.Pairs {
		t.Errorf("Expected every pair answered by the node-local server, got %d of %d", res.BothAnswered, res.Pairs)
	}
}

// lookupLog is every lookup of a continuous run, with when it ended.
type lookupLog struct {
	mu      sync.Mutex
	results []lab.Result
	ends    []time.Time
	errs    []error
}

func (g *lookupLog) add(rs []lab.Result, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if err != nil {
		g.errs = append(g.errs, err)
	}
	now := time.Now()
	for _, r := range rs {
		g.results = append(g.results, r)
		g.ends = append(g.ends, now)
	}
}

// TestNodeLocalKillLab: clients resolve continuously (glibc and musl pods, and a glibc
// hostNetwork client on the node) while the node-local raceguard is SIGKILLed, as the OOM killer
// would: the kernel drops its owner table with the process, every lookup still succeeds, through
// kube-proxy's DNAT to kube-dns, and none begun after the kill waits for a resolver timeout (a
// query already inside the killed process is lost with it; its lookup retries). Restarted, it
// takes the traffic back: its request counter moves, and no query goes through the DNAT any more.
func TestNodeLocalKillLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	p := startNodeLocal(t, l, "")
	names := []string{"web", "example.org", "kubernetes.default", "api.shop", "www.example.org"}
	want := map[string]string{
		"web": testenv.Joined("10.96.12.34", "fd00:96::12:34"), "example.org": testenv.Joined("192.0.2.10", "2001:db8::10"),
		"kubernetes.default": "10.96.0.1", "api.shop": testenv.Joined("10.96.40.2", "fd00:96::40:2"),
		"www.example.org": testenv.Joined("192.0.2.10", "2001:db8::10"),
	}

	var pods, node lookupLog
	stop := make(chan struct{})
	var wg sync.WaitGroup
	const runLimit = 60 * time.Second // bounds the loops whatever happens below
	loop := func(g *lookupLog, lookup func(libc lab.Libc) ([]lab.Result, error), libcs ...lab.Libc) {
		defer wg.Done()
		for i, start := 0, time.Now(); time.Since(start) < runLimit; i++ {
			select {
			case <-stop:
				return
			default:
			}
			g.add(lookup(libcs[i%len(libcs)]))
		}
	}
	// Independent client loops of a few names each: a lookup waiting for its retry holds up only
	// its own loop.
	for i := range 4 {
		wg.Add(1)
		go loop(&pods, func(libc lab.Libc) ([]lab.Result, error) {
			return l.Lookup(libc, lab.Unspec, lab.DefaultResolvConf(), 1, names[i%len(names)], names[(i+1)%len(names)])
		}, lab.Glibc, lab.Musl)
	}
	for i := range 2 {
		wg.Add(1)
		go loop(&node, func(libc lab.Libc) ([]lab.Result, error) {
			return l.LookupFromNode(libc, lab.Inet, lab.DefaultResolvConf(), 1, names[i%len(names)], names[(i+2)%len(names)])
		}, lab.Glibc)
	}

	counters := func() lab.Counters {
		c, err := l.Counters()
		if err != nil {
			t.Error(err)
		}
		return c
	}
	time.Sleep(2 * time.Second)
	c0 := counters()
	signalled := time.Now()
	p.Kill() // returns once the process is reaped: its sockets are closed
	killed := time.Now()
	if rs, _ := l.NodeRuleset(); strings.Contains(rs, "table inet raceguard") {
		t.Errorf("Expected the kernel to drop the owner table with the killed process, got:\n%s", rs)
	}
	// Longer than glibc's 5 s timeout: a loop whose lookup was in flight at the kill gets to
	// start more while raceguard is dead.
	time.Sleep(6 * time.Second)
	c1 := counters()
	restarted := time.Now()
	p2, err := l.StartNodeLocal(lab.NodeLocalWith(""))
	if err != nil {
		close(stop)
		wg.Wait()
		t.Fatal(err)
	}
	t.Cleanup(func() { p2.StopWithin(10 * time.Second) })
	waitInstalled(t, l, p2)
	c2 := counters()
	m2, _ := l.ScrapeNode()
	time.Sleep(3 * time.Second)
	c3 := counters()
	m3, _ := l.ScrapeNode()
	close(stop)
	wg.Wait()

	for _, g := range []struct {
		who string
		log *lookupLog
	}{{"pods", &pods}, {"hostNetwork", &node}} {
		var failed, late []string
		var during, inFlight int
		var worst time.Duration
		for _, r := range g.log.results {
			w := want[r.Name]
			if g.who == "hostNetwork" { // AF_INET
				w, _, _ = strings.Cut(w, ",")
			}
			start, end := r.Started, r.Started.Add(r.Elapsed)
			if r.String() != w {
				failed = append(failed, fmt.Sprintf("%s: %s (began %s after the kill signal, the restart at %s; took %s)", r.Name, r,
					start.Sub(signalled).Round(time.Millisecond), restarted.Sub(signalled).Round(time.Millisecond), r.Elapsed.Round(time.Millisecond)))
			}
			switch {
			case start.Before(killed) && end.After(signalled):
				// Its query may have reached the process between the signal and its end: its
				// socket buffers die with it, and the client's retry is all that can answer.
				inFlight++
			case r.Elapsed >= time.Second:
				late = append(late, fmt.Sprintf("%s took %s, started %s after the kill", r.Name, r.Elapsed.Round(time.Millisecond), start.Sub(killed).Round(time.Millisecond)))
			}
			if !start.Before(killed) && start.Before(restarted) {
				during++
				worst = max(worst, r.Elapsed)
			}
		}
		t.Logf("%s: %d lookups, %d of them started while raceguard was dead (worst %s), %d in flight during the %s the kill took; %d failed",
			g.who, len(g.log.results), during, worst.Round(time.Millisecond), inFlight, killed.Sub(signalled).Round(time.Millisecond), len(failed))
		for _, err := range g.log.errs {
			t.Errorf("%s: %v", g.who, err)
		}
		if len(failed) > 0 {
			t.Errorf("%s: Expected every lookup to succeed across the SIGKILL, %d failed: %v", g.who, len(failed), failed[:min(5, len(failed))])
		}
		if len(late) > 0 {
			t.Errorf("%s: Expected no lookup begun after the kill to wait for a resolver timeout: %v", g.who, late[:min(5, len(late))])
		}
		if during == 0 {
			t.Errorf("%s: Expected lookups while raceguard was dead", g.who)
		}
	}
	dead, back := c1.Sub(c0), c3.Sub(c2)
	t.Logf("node counters while dead: %d queries through the DNAT, %d to the node; after the restart: %d through the DNAT, %d to the node",
		dead.ServerUDP, dead.LocalUDP, back.ServerUDP, back.LocalUDP)
	if dead.ServerUDP == 0 {
		t.Error("Expected the pods' queries to go through kube-proxy's DNAT to kube-dns while raceguard was dead")
	}
	if back.ServerUDP != 0 || back.LocalUDP == 0 {
		t.Errorf("Expected every pod query at the restarted node-local server and none through the DNAT, got %+v", back)
	}
	requests := func(m lab.Metrics) float64 { return m.Sum("coredns_dns_requests_total", nil) }
	if requests(m3) <= requests(m2) {
		t.Errorf("Expected the restarted server's request counter to move, got %v then %v", requests(m2), requests(m3))
	}
}
