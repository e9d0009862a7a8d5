package cluster

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// scenarioChurn (4): kube-dns replicas come and go while pods resolve continuously through the
// node-local server, names that miss its cache (the internet's wildcard, a new name each time)
// and a Service: a third replica is added, the one on node1 deleted (marked terminating, taken
// out of the EndpointSlices by the endpointslice controller, SIGTERM, its lameduck), another
// added on node1, the extra one deleted. kube-proxy follows the EndpointSlices; no lookup fails.
func scenarioChurn(t *testing.T, w *world) {
	n := w.nodes[0]
	nl := w.nodeLocal(t, n)
	ctx := t.Context()
	corefile, err := w.c.KubeDNSCorefile(ctx, w.stock)
	if err != nil {
		t.Fatal(err)
	}
	// The node-local server's errors of its forwarder, which name the upstream's address: one
	// socket of its pool still DNATed to a kube-dns pod that has exited is one.
	upstreamErrors := func() []string {
		var out []string
		for _, l := range strings.Split(nl.Log(), "\n") {
			if strings.Contains(l, "plugin/errors") && strings.Contains(l, "->"+w.up+":53") {
				out = append(out, l)
			}
		}
		return out
	}
	e0 := len(upstreamErrors())
	m := startMeter(t, n)
	check := func(r record) {
		if r.String() != w.want(r) {
			t.Logf("%s %s %s: %s, want %s; right after, the server says: %s", r.pod, r.libc, r.Name, r, w.want(r), w.explain(r))
		}
	}
	l := startLoopsFunc([]client{{w.pods["cf"], lab.Glibc}, {w.pods["cf"], lab.Musl}, {w.pods["hostnet"], lab.Glibc}}, 50*time.Millisecond, check,
		func(c client, i int) []string {
			return []string{fmt.Sprintf("churn%d-%s-%s.wild.example.com", i, c.pod.Name, c.libc), "web"}
		})
	ready := func(pods ...*Pod) error {
		var ips []string
		for _, p := range pods {
			ips = append(ips, p.IP)
		}
		return w.c.WaitEndpoints(ctx, "kube-system", "kube-dns-upstream", 30*time.Second, ips...)
	}
	var steps []string
	began := time.Now()
	step := func(what string, f func() error) {
		start := time.Now()
		if err := f(); err != nil {
			l.end(t)
			t.Fatalf("%s: %v", what, err)
		}
		steps = append(steps, fmt.Sprintf("%s %s-%s", what, start.Format("15:04:05.000"), time.Now().Format("15:04:05.000")))
		time.Sleep(2 * time.Second)
	}
	a, b := w.dns[0], w.dns[1]
	var c, d *Pod
	time.Sleep(2 * time.Second)
	step("replica c added on node2", func() (err error) {
		if c, err = w.nodes[1].RunKubeDNS(ctx, fmt.Sprintf("coredns-c%d", w.nlSeq), corefile); err != nil {
			return err
		}
		return ready(a, b, c)
	})
	step("replica a (node1) deleted", func() error {
		if err := a.Delete(ctx); err != nil {
			return err
		}
		return ready(b, c)
	})
	step("replica d added on node1", func() (err error) {
		if d, err = n.RunKubeDNS(ctx, fmt.Sprintf("coredns-d%d", w.nlSeq), corefile); err != nil {
			return err
		}
		return ready(b, c, d)
	})
	step("replica c deleted", func() error {
		if err := c.Delete(ctx); err != nil {
			return err
		}
		return ready(b, d)
	})
	w.dns = []*Pod{d, b}
	rs := l.end(t)
	var tl tally
	tl.add(rs, w.want)
	m.into(t, &tl)
	errs := upstreamErrors()[e0:]
	summary(t, w.mode, "4-kube-dns-churn", tl, fmt.Sprintf("node_local_upstream_errors=%d", len(errs)))
	t.Logf("loops began %s; steps: %s", began.Format("15:04:05.000"), strings.Join(steps, "; "))
	if tl.failures != 0 {
		t.Errorf("Expected no lookup lost through the node-local server while kube-dns churned, %d of %d failed: %s\nthe node-local server's errors:\n%s",
			tl.failures, tl.lookups, firstFew(tl.failed, 6), logLines(nl.Log(), "plugin/errors", 10))
	}
	// The deployed forwarder replaces each pooled socket within kube-dns's lameduck: none is still
	// DNATed to a replica when it exits (deploy/node-local/configmap.yaml).
	if len(errs) != 0 {
		t.Errorf("Expected no upstream error at the node-local server while kube-dns churned (no pooled socket left on an exiting replica), got %d:\n%s",
			len(errs), strings.Join(errs[:min(6, len(errs))], "\n"))
	}
	if tl.node.DNATUDP != 0 {
		t.Errorf("Expected every query at the node-local server, got %s", tl.node)
	}
}

// scenarioSurge (5): the node-local DaemonSet rolls with surge: a new pod starts beside the old
// one on the same addresses (a table of its own), and once it is ready the old one is deleted:
// SIGTERM, its lameduck, its teardown. Lookups at a steady rate lose nothing, none stalls, none
// falls back to kube-proxy's path, and one raceguard table is left: the new pod's.
func scenarioSurge(t *testing.T, w *world) {
	n := w.nodes[0]
	old := w.nodeLocal(t, n)
	m := startMeter(t, n)
	l := startLoops([]client{{w.pods["cf"], lab.Glibc}, {w.pods["cf"], lab.Musl}, {w.pods["hostnet"], lab.Glibc}, {w.pods["none-ndots2"], lab.Musl}},
		50*time.Millisecond, loopNames...)
	began := time.Now()
	at := func() string { return time.Since(began).Round(time.Millisecond).String() }
	var timeline []string
	time.Sleep(time.Second)
	timeline = append(timeline, "new pod started "+at())
	p := w.runNodeLocal(t, n, "")
	// Ready, as the kubelet sees it (the probe may reach either pod): the DaemonSet controller
	// deletes the old pod then. The new one must capture with a table of its own (raceguard-2)
	// while the old one is in its lameduck.
	if err := p.WaitReady(t.Context(), 60*time.Second); err != nil {
		l.end(t)
		t.Fatal(err)
	}
	timeline = append(timeline, "ready "+at())
	deleted := time.Now()
	gone := make(chan error, 1)
	go func() { gone <- old.Delete(t.Context()) }()
	tabled := waitFor(30*time.Second, func() bool { c, _ := n.Tables("inet raceguard-2"); return c == 1 })
	timeline = append(timeline, "its table in "+at())
	if err := <-gone; err != nil {
		t.Error(err)
	}
	if !tabled {
		l.end(t)
		t.Fatalf("the surge pod installed no table of its own within 30s:\n%s", tail(p.Log(), 30))
	}
	stopped := time.Since(deleted)
	timeline = append(timeline, "old pod deleted "+deleted.Sub(began).Round(time.Millisecond).String()+", gone "+at())
	time.Sleep(3 * time.Second)
	rs := l.end(t)
	var tl tally
	tl.add(rs, w.want)
	m.into(t, &tl)
	summary(t, w.mode, "5-surge", tl, "")
	old1, _ := n.Tables("inet raceguard")
	new1, _ := n.Tables("inet raceguard-2")
	t.Logf("the old pod stopped %s after its deletion; tables left: raceguard %d, raceguard-2 %d", stopped.Round(time.Millisecond), old1, new1)
	t.Logf("timeline (from the loops' start): %s", strings.Join(timeline, ", "))
	if l := logLines(p.Log(), "does not reach this server", 2); l != "" {
		t.Logf("the surge pod's self-check, with the old pod still serving:\n%s", l)
	}
	for _, r := range rs {
		if r.Elapsed >= stallLookup {
			t.Logf("stall: %s %s %s began %s, took %s", r.pod, r.libc, r.Name, r.Started.Sub(began).Round(time.Millisecond), r.Elapsed.Round(time.Millisecond))
		}
	}
	if tl.failures+tl.stalls != 0 {
		t.Errorf("Expected no lookup lost or stalled across the rollout, got %d failed, %d stalled: %s %s", tl.failures, tl.stalls, firstFew(tl.failed, 4), firstFew(tl.stalled, 4))
	}
	if tl.node.DNATUDP != 0 || tl.conntrack != 0 {
		t.Errorf("Expected every query at a node-local server across the rollout, got %s, %d conntrack entries", tl.node, tl.conntrack)
	}
	if old1 != 0 || new1 != 1 || !capturing(n) {
		t.Errorf("Expected the new pod's table alone after the rollout, got raceguard %d, raceguard-2 %d", old1, new1)
	}
	if l := logLines(old.Log(), "handed 2 UDP sockets over", 1); l == "" {
		t.Errorf("Expected the old pod to hand its two UDP sockets (link-local, ClusterIP) over to the new one:\n%s", tail(old.Log(), 20))
	} else {
		t.Logf("the old pod: %s", l)
	}
}

// scenarioRace (7): the real conntrack race. Parallel A+AAAA pairs from one socket on two CPUs,
// and pairs of identical SYNs, from a pod to the kube-dns ClusterIP: through kube-proxy's real
// DNAT they race in node1's conntrack (clash_resolve, insert_failed and drop rise); with the
// emulated pair drop, kube-dns's raceguard sees the late siblings. Through the node-local server
// every conntrack counter stays flat and no late sibling is seen.
func scenarioRace(t *testing.T, w *world) {
	const pairs = 400
	n := w.nodes[0]
	cf := w.pods["cf"]
	race := func() (lab.RaceResult, Counters) {
		t.Helper()
		c0, _ := n.Counters()
		res, err := lab.UDPPairRace(cf.NS, KubeDNSIP+":53", pairs)
		if errors.Is(err, lab.ErrUnavailable) {
			t.Skipf("Skipping: %v", err)
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := lab.SYNRace(cf.NS, KubeDNSIP+":53", pairs); err != nil {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond) // the last SYN-ACKs and resets
		c1, _ := n.Counters()
		return res, c1.Sub(c0)
	}
	lateSiblings := func(scrape func() (lab.Metrics, error)) float64 {
		t.Helper()
		m, err := scrape()
		if err != nil {
			t.Fatal(err)
		}
		return m.Sum("coredns_raceguard_late_siblings_total", nil)
	}
	kubeDNSLate := func() float64 {
		var sum float64
		for _, p := range w.dns {
			sum += lateSiblings(func() (lab.Metrics, error) {
				text, err := lab.ScrapeURL(n.NS, "http://"+p.IP+":9153/metrics")
				return lab.ParseMetrics(text), err
			})
		}
		return sum
	}
	dropped := func() (tally, float64) {
		t.Helper()
		if err := n.SetFault(100); err != nil {
			t.Fatal(err)
		}
		defer n.SetFault(0)
		var names []string
		for i := range 6 {
			names = append(names, fmt.Sprintf("race%d-%d.wild.example.com", i, time.Now().UnixNano()))
		}
		var tl tally
		tl.add(lookupAll(t, []client{{cf, lab.Glibc}}, 6, names...), w.want)
		return tl, 0
	}

	w.stopNodeLocal(t, n)
	m := startMeter(t, n)
	res, c := race()
	late0 := kubeDNSLate()
	dtl, _ := dropped()
	late := kubeDNSLate() - late0
	var via tally
	m.into(t, &via)
	via.lookups, via.failures, via.slow, via.stalls = dtl.lookups, dtl.failures, dtl.slow, dtl.stalls
	summary(t, w.mode, "7-real-race/via-kube-dns", via, fmt.Sprintf("udp_pairs=%d both_answered=%d syn_pairs=%d kube_dns_late_siblings=%v", res.Pairs, res.BothAnswered, pairs, late))
	if via.ct.ClashResolve+via.ct.InsertFailed < pairs/10 {
		t.Errorf("Expected the real race through kube-proxy's DNAT to move clash_resolve or insert_failed by %d or more, got %+v", pairs/10, via.ct)
	}
	if late < float64(dtl.stalls) || late == 0 {
		t.Errorf("Expected kube-dns's raceguard to fingerprint every dropped AAAA as a late sibling, got %v for %d stalled lookups (%d drops)", late, dtl.stalls, c.FaultDrops)
	}

	w.nodeLocal(t, n)
	nlLate := func() float64 { return lateSiblings(func() (lab.Metrics, error) { return n.Scrape(9153) }) }
	m = startMeter(t, n)
	res, _ = race()
	late0 = nlLate()
	dtl, _ = dropped()
	late = nlLate() - late0
	var tl tally
	m.into(t, &tl)
	tl.lookups, tl.failures, tl.slow, tl.stalls = dtl.lookups, dtl.failures, dtl.slow, dtl.stalls
	summary(t, w.mode, "7-real-race", tl, fmt.Sprintf("udp_pairs=%d both_answered=%d syn_pairs=%d node_local_late_siblings=%v", res.Pairs, res.BothAnswered, pairs, late))
	if tl.ct.ClashResolve != 0 || tl.ct.InsertFailed != 0 || tl.ct.Drop != 0 || tl.ct.EarlyDrop != 0 || tl.ct.Invalid != 0 {
		t.Errorf("Expected every conntrack counter flat through the node-local server, got %+v", tl.ct)
	}
	if res.BothAnswered != res.Pairs || tl.failures+tl.stalls != 0 || late != 0 || tl.node.FaultDrops != 0 {
		t.Errorf("Expected every pair answered and no lookup dropped through the node-local server, got %d of %d pairs, %d failed, %d stalled, %v late siblings, %s",
			res.BothAnswered, res.Pairs, tl.failures, tl.stalls, late, tl.node)
	}
}
