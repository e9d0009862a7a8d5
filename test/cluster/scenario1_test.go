package cluster

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// repeat is names n times over.
func repeat(n int, names ...string) []string { return slices.Repeat(names, n) }

// scenarioTransparent (1): with the emulated conntrack race on node1 (5 % of the pods' parallel
// pairs lose their second packet in conntrack's path to kube-proxy's DNAT), glibc and musl lookups
// through kube-dns stall by a resolver timeout; through the node-local server in transparent mode
// none does, none fails, and no pod DNS query has a conntrack entry: every query is answered on
// the node, none goes through the DNAT.
func scenarioTransparent(t *testing.T, w *world) {
	n := w.nodes[0]
	w.stopNodeLocal(t, n)
	if err := n.SetFault(5); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.SetFault(0) })
	names := repeat(34, loopNames...)
	pods := []client{{w.pods["cf"], lab.Glibc}, {w.pods["cf"], lab.Musl}}

	m := startMeter(t, n)
	var via tally
	via.add(lookupAll(t, pods, 6, names...), w.want)
	m.into(t, &via)
	summary(t, w.mode, "1-transparent/via-kube-dns", via, "")
	// Each dropped packet costs its lookup a resolver retry (two drops can hit one lookup). How
	// many packets there are to drop depends on kube-dns: raceguard's with search pods answers a
	// pod's first try with the name its list finds, so the pods send fewer.
	if via.node.FaultDrops == 0 || via.stalls == 0 || 2*via.stalls < via.node.FaultDrops {
		t.Errorf("Expected the emulated race to stall a lookup through kube-dns for each packet it drops, got %d stalled of %d (%d drops)", via.stalls, via.lookups, via.node.FaultDrops)
	}

	w.nodeLocal(t, n)
	link := w.checkLink(t, n)
	pods = append(pods, client{w.pods["hostnet"], lab.Glibc}, client{w.pods["hostnet"], lab.Musl})
	m = startMeter(t, n)
	var tl tally
	tl.add(lookupAll(t, pods, 6, names...), w.want)
	m.into(t, &tl)
	summary(t, w.mode, "1-transparent", tl, "link="+link)
	if tl.failures+tl.stalls != 0 {
		t.Errorf("Expected every lookup answered without a resolver retry through the node-local server, got %d failed, %d stalled: %s %s",
			tl.failures, tl.stalls, firstFew(tl.failed, 4), firstFew(tl.stalled, 4))
	}
	if tl.conntrack != 0 {
		t.Errorf("Expected no conntrack entry for a pod DNS query through the node-local server, got %d", tl.conntrack)
	}
	if tl.node.DNATUDP != 0 || tl.node.FaultDrops != 0 || tl.node.LocalUDP < 2*len(names) || tl.node.HostUDP < 2*len(names) {
		t.Errorf("Expected every query at the node-local server and none through kube-proxy's DNAT, got %s", tl.node)
	}
}

// checkLink returns where node n's node-local server put its addresses (its nodelocal_link metric):
// on its dummy link where the kernel can make one, else on lo, which it logs as not exercised.
func (w *world) checkLink(t *testing.T, n *Node) string {
	t.Helper()
	m, err := n.Scrape(9153)
	if err != nil {
		t.Fatal(err)
	}
	want := "dummy"
	if _, err := n.Exec("ip", "link", "add", "rgprobe", "type", "dummy"); err != nil {
		want = "lo"
		t.Logf("Not exercised: this kernel has no dummy links (%v): the node-local addresses go on lo", strings.TrimSpace(err.Error()))
	} else {
		n.Exec("ip", "link", "del", "rgprobe")
	}
	if m.Sum("coredns_raceguard_nodelocal_link", map[string]string{"kind": want}) != 1 {
		t.Errorf("Expected the node-local addresses on %s, got nodelocal_link{kind=dummy} %v, {kind=lo} %v", want,
			m.Sum("coredns_raceguard_nodelocal_link", map[string]string{"kind": "dummy"}), m.Sum("coredns_raceguard_nodelocal_link", map[string]string{"kind": "lo"}))
	}
	return want
}

// scenarioKill (2): lookups run continuously from the pods and a hostNetwork pod while the
// node-local server is killed (SIGKILL, as the OOM killer does): the kernel drops its owner table
// with it, every lookup is still answered, through kube-proxy's DNAT to kube-dns, and none begun
// after the kill waits for a resolver retry; restarted, it takes the traffic back.
func scenarioKill(t *testing.T, w *world) {
	n := w.nodes[0]
	p := w.nodeLocal(t, n)
	corefile, err := w.c.NodeLocalCorefile(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	m := startMeter(t, n)
	l := startLoops([]client{{w.pods["cf"], lab.Glibc}, {w.pods["cf"], lab.Musl}, {w.pods["hostnet"], lab.Glibc}}, 50*time.Millisecond, loopNames...)
	time.Sleep(2 * time.Second)
	signalled := time.Now()
	p.Kill()
	killed := time.Now()
	if c, err := n.Tables("inet raceguard"); err != nil || c != 0 {
		t.Errorf("Expected the kernel to drop the owner table with the killed process, got %d (%v)", c, err)
	}
	c0, _ := n.Counters()
	// Longer than glibc's 5 s timeout: a lookup in flight at the kill gets to retry, and others
	// begin while the server is dead.
	time.Sleep(6 * time.Second)
	c1, _ := n.Counters()
	restarted := time.Now()
	if err := p.Restart(t.Context(), corefile, 60*time.Second); err != nil {
		l.end(t)
		t.Fatalf("%v\n%s", err, p.Log())
	}
	w.waitRules(t, n, p)
	c2, _ := n.Counters()
	time.Sleep(3 * time.Second)
	c3, _ := n.Counters()
	rs := l.end(t)

	var tl tally
	var during, inFlight int
	var late []string
	for _, r := range rs {
		start, end := r.Started, r.Started.Add(r.Elapsed)
		switch {
		case start.Before(killed) && end.After(signalled):
			inFlight++ // its query may have died in the process's socket buffer: only a retry answers it
		case r.Elapsed >= stallLookup:
			late = append(late, r.pod+" "+string(r.libc)+" "+r.Name+" took "+r.Elapsed.Round(time.Millisecond).String())
		}
		if !start.Before(killed) && start.Before(restarted) {
			during++
		}
	}
	tl.add(rs, w.want)
	m.into(t, &tl)
	dead, back := c1.Sub(c0), c3.Sub(c2)
	summary(t, w.mode, "2-kill", tl, "")
	t.Logf("%d lookups began while the server was dead, %d were in flight at the kill; while dead: %s; after the restart: %s", during, inFlight, dead, back)
	if l := logLines(p.Log(), "does not reach this server", 2); l != "" {
		t.Logf("the restarted server's self-check:\n%s", l)
	}
	if tl.failures != 0 {
		t.Errorf("Expected every lookup answered across the SIGKILL, %d failed: %s", tl.failures, firstFew(tl.failed, 5))
	}
	if len(late) > 0 {
		t.Errorf("Expected no lookup begun after the kill to wait for a resolver timeout: %s", firstFew(late, 5))
	}
	if during == 0 || dead.DNATUDP == 0 {
		t.Errorf("Expected lookups through kube-proxy's DNAT while the server was dead, got %d lookups, %s", during, dead)
	}
	if back.DNATUDP != 0 || back.LocalUDP == 0 {
		t.Errorf("Expected the restarted server to take every query back, got %s", back)
	}
}

// scenarioProxyRestart (3): kube-proxy is restarted twice while the pods resolve continuously
// through the node-local server: a plain restart (its full resync) and one after its jumps in the
// filter chains were lost (a firewall reload flushes INPUT and OUTPUT; kube-proxy's resync
// puts its jumps back at the top). No lookup is lost or stalls, the node-local server keeps every
// query (none through the DNAT), its table is never removed or duplicated, and its accept rules
// come before any chain that could drop the untracked DNS again within the periodic check.
func scenarioProxyRestart(t *testing.T, w *world) {
	n := w.nodes[0]
	w.nodeLocal(t, n)
	m := startMeter(t, n)
	l := startLoops([]client{{w.pods["cf"], lab.Glibc}, {w.pods["cf"], lab.Musl}, {w.pods["hostnet"], lab.Glibc}}, 50*time.Millisecond, loopNames...)
	stop := make(chan struct{})
	tables := make(chan []int, 1)
	go func() { // the raceguard tables every 50 ms, bounded by loopLimit
		var seen []int
		defer func() { tables <- seen }()
		for start := time.Now(); time.Since(start) < loopLimit; {
			select {
			case <-stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			if c, err := n.Tables("inet raceguard"); err == nil {
				seen = append(seen, c)
			}
		}
	}()
	time.Sleep(time.Second)
	n.StopProxy()
	if err := n.StartProxy(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	lost := dropKubeProxyJumps(t, n)
	n.StopProxy()
	if err := n.StartProxy(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	w.waitRuleOrder(t, n)
	close(stop)
	rs := l.end(t)
	seen := <-tables

	var tl tally
	tl.add(rs, w.want)
	m.into(t, &tl)
	summary(t, w.mode, "3-proxy-restart", tl, "")
	t.Logf("kube-proxy restarted twice; %d of its jumps dropped before the second start", lost)
	if tl.failures+tl.stalls != 0 {
		t.Errorf("Expected no lookup lost or stalled across kube-proxy's restarts, got %d failed, %d stalled: %s %s", tl.failures, tl.stalls,
			firstFew(tl.failed, 4), firstFew(tl.stalled, 4))
	}
	if tl.node.DNATUDP != 0 || tl.node.LocalUDP == 0 {
		t.Errorf("Expected the node-local server to keep every query across kube-proxy's resyncs, got %s", tl.node)
	}
	if len(seen) == 0 || slices.ContainsFunc(seen, func(c int) bool { return c != 1 }) {
		t.Errorf("Expected exactly one raceguard table at every sample across the resyncs, got %v", seen)
	}
}

// dropKubeProxyJumps deletes kube-proxy's jumps from the filter INPUT and OUTPUT chains, as a
// firewall reload that flushes them does, and returns how many it deleted (0 where iptables has
// no filter chains: nftables mode).
func dropKubeProxyJumps(t *testing.T, n *Node) int {
	t.Helper()
	deleted := 0
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		out, err := n.Exec("iptables", "-w", "-S", chain)
		if err != nil {
			return 0
		}
		for _, line := range strings.Split(out, "\n") {
			if !strings.HasPrefix(line, "-A ") || !strings.Contains(line, "-j KUBE-") {
				continue
			}
			args := append([]string{"iptables", "-w", "-D"}, splitRule(strings.TrimPrefix(line, "-A "))...)
			if _, err := n.Exec(args...); err != nil {
				t.Fatal(err)
			}
			deleted++
		}
	}
	return deleted
}

// splitRule splits a rule as iptables -S prints it into arguments: fields, with double-quoted
// strings (comments) as one.
func splitRule(s string) []string {
	var out []string
	var cur strings.Builder
	quoted, any := false, false
	for _, r := range s {
		switch {
		case r == '"':
			quoted, any = !quoted, true
		case r == ' ' && !quoted:
			if any {
				out = append(out, cur.String())
			}
			cur.Reset()
			any = false
		default:
			cur.WriteRune(r)
			any = true
		}
	}
	if any {
		out = append(out, cur.String())
	}
	return out
}

// resolverRetry is when a resolver sends a lookup's query again after no answer, with the
// kubelet's resolv.conf (no timeout or attempts options): glibc after 5 s, musl after 2.5 s (its
// 5 s timeout over its 2 attempts).
var resolverRetry = map[lab.Libc]time.Duration{lab.Glibc: 5 * time.Second, lab.Musl: 2500 * time.Millisecond}

// bootWindow is how long node1 runs its node-local server before kube-proxy starts: longer than
// the server's forwarder tries one query (5 s), as a node's kube-proxy can take at boot.
const bootWindow = 8 * time.Second

// scenarioBootOrder (1b): node1 boots (kube-proxy's rules gone, its conntrack empty) and the
// node-local server starts bootWindow before kube-proxy, while the pods resolve continuously.
// Until kube-proxy syncs, neither ClusterIP leads anywhere: a server that captured the pods'
// queries then fails them (its forwarder gives up on kube-dns-upstream), where the pods' own retry
// through kube-proxy's path would have been answered once it synced. The expected behaviour:
// every lookup whose resolver retries after the sync is answered (the ones begun earlier are lost
// on either path and only counted), and the server takes the traffic once its upstream answers
// (its rules in, no query through the DNAT after that). In iptables mode its accept rules must
// also end above the jumps kube-proxy inserts at the top when it starts after it.
func scenarioBootOrder(t *testing.T, w *world) {
	n := w.nodes[0]
	w.stopNodeLocal(t, n)
	n.StopProxy()
	if err := n.CleanupProxy(); err != nil {
		t.Fatal(err)
	}
	if err := n.FlushConntrack(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // the next scenario needs kube-proxy, whatever happened here
		if n.proxy == nil {
			if err := n.StartProxy(); err != nil {
				t.Error(err)
			}
		}
	})
	m := startMeter(t, n)
	p := w.runNodeLocal(t, n, "")
	l := startLoops([]client{{w.pods["cf"], lab.Glibc}, {w.pods["cf"], lab.Musl}, {w.pods["hostnet"], lab.Glibc}}, 200*time.Millisecond, loopNames...)
	time.Sleep(bootWindow)
	early := capturing(n)
	if err := n.StartProxy(); err != nil {
		l.end(t)
		t.Fatal(err)
	}
	synced := time.Now()
	taken := waitFor(30*time.Second, func() bool { return capturing(n) })
	var c0, c1 Counters
	if taken {
		c0, _ = n.Counters()
		time.Sleep(3 * time.Second)
		c1, _ = n.Counters()
	}
	rs := l.end(t)
	// Split the lookups: those whose first retry came after the sync, which kube-proxy's path
	// answers, and the earlier ones, lost on any path.
	var answerable []record
	var before tally
	for _, r := range rs {
		if r.Started.Add(resolverRetry[r.libc]).After(synced) {
			answerable = append(answerable, r)
		} else {
			before.add([]record{r}, w.want)
		}
	}
	var tl tally
	tl.add(answerable, w.want)
	m.into(t, &tl)
	after := c1.Sub(c0)
	summary(t, w.mode, "1b-boot-order", tl, fmt.Sprintf("before_sync_lookups=%d before_sync_failures=%d", before.lookups, before.failures))
	t.Logf("rules in before kube-proxy synced: %v; after the sync: %v; kube-proxy synced %s after the server started; once the server had its rules: %s",
		early, taken, synced.Sub(m0(rs)).Round(time.Millisecond), after)
	if early {
		t.Errorf("Expected the node-local server not to capture the pods' DNS before its upstream answers: its rules were in before kube-proxy synced")
	}
	if tl.failures != 0 {
		t.Errorf("Expected no lookup lost that kube-proxy's path would have answered (the node-local server must not capture the pods' DNS until its upstream answers), %d of %d failed: %s",
			tl.failures, tl.lookups, firstFew(tl.failed, 6))
	}
	if !taken {
		t.Fatalf("Expected the node-local server to take the traffic once its upstream answers: no rules within 30s of kube-proxy's sync\n%s", tail(p.Log(), 30))
	}
	if after.DNATUDP != 0 || after.LocalUDP == 0 {
		t.Errorf("Expected every query at the node-local server once its rules were in, got %s", after)
	}
	if err := p.WaitReady(t.Context(), 30*time.Second); err != nil {
		t.Error(err)
	}
	w.waitRuleOrder(t, n)
}

// m0 is when the first of rs began.
func m0(rs []record) time.Time {
	var first time.Time
	for _, r := range rs {
		if first.IsZero() || r.Started.Before(first) {
			first = r.Started
		}
	}
	return first
}
