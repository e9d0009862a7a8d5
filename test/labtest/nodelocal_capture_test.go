package labtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// The node-local server captures the pods' DNS only while it can answer: while its upstream (the
// kube-dns-upstream Service) answers a probe sent down its own chain.

// lookupLoops resolves names from the pod with glibc and musl in independent loops until stop is
// closed (at most a minute), into g.
func lookupLoops(t *testing.T, l *lab.Lab, g *lookupLog, stop chan struct{}) *sync.WaitGroup {
	t.Helper()
	names := []string{"web", "example.org", "api.shop", "kubernetes.default"}
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			libc := []lab.Libc{lab.Glibc, lab.Musl}[i%2]
			for start := time.Now(); time.Since(start) < time.Minute; {
				select {
				case <-stop:
					return
				default:
				}
				g.add(l.Lookup(libc, lab.Unspec, lab.DefaultResolvConf(), 1, names[i], names[(i+1)%len(names)]))
			}
		}()
	}
	return &wg
}

// failures returns the lookups of g that did not resolve, described.
func failures(g *lookupLog) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	var out []string
	for _, r := range g.results {
		if r.Err != "" || r.String() == "" {
			out = append(out, fmt.Sprintf("%s: %s after %s", r.Name, r, r.Elapsed.Round(time.Millisecond)))
		}
	}
	for _, err := range g.errs {
		out = append(out, err.Error())
	}
	return out
}

// TestNodeLocalBootOrderLab: the node reboots and the node-local server starts before kube-proxy
// has programmed the node: no Service is translated yet, so its upstream (kube-dns-upstream) does
// not answer, and a pod's query to the kube-dns ClusterIP, which is on the node now, would reach
// the server, which could only fail it. The server holds: it takes no pod's query (what reaches
// the ClusterIP untranslated is dropped, as if the address were not there), so each lookup
// retries as it would without raceguard, and none fails. Once kube-proxy programs the node, the
// lookups go to kube-dns through it, the server's probe is answered, and it captures: the pods'
// queries are answered on the node, none through the DNAT.
func TestNodeLocalBootOrderLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	if err := l.SetServices(); err != nil { // kube-proxy has not synced
		t.Fatal(err)
	}
	p, err := l.StartNodeLocalHolding(lab.NodeLocalWith(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.StopWithin(10 * time.Second) })

	var g lookupLog
	stop := make(chan struct{})
	wg := lookupLoops(t, l, &g, stop)
	time.Sleep(2 * time.Second) // lookups sent while nothing translates the ClusterIP
	if err := l.WaitNodeLocalState("hold", 0); err != nil {
		t.Errorf("Expected the server to hold while its upstream does not answer: %v\n%s", err, p.Log())
	}
	if err := l.SetServices(lab.ClusterIP, lab.UpstreamClusterIP); err != nil { // kube-proxy's first sync
		t.Fatal(err)
	}
	synced := time.Now()
	if err := l.WaitNodeLocalRules(15 * time.Second); err != nil {
		t.Errorf("%v\n%s", err, p.Log())
	}
	captured := time.Since(synced)
	time.Sleep(time.Second)
	c0 := counters(t, l)
	time.Sleep(2 * time.Second)
	c1 := counters(t, l)
	close(stop)
	wg.Wait()

	g.mu.Lock()
	n := len(g.results)
	g.mu.Unlock()
	failed := failures(&g)
	t.Logf("boot: %d lookups, %d failed; captured %s after kube-proxy's sync; then %d pod queries to the node, %d through the DNAT",
		n, len(failed), captured.Round(time.Millisecond), c1.Sub(c0).LocalUDP, c1.Sub(c0).ServerUDP)
	if len(failed) > 0 {
		t.Errorf("Expected no lookup lost across the boot (each retries until kube-proxy's path exists), %d failed: %v\n%s", len(failed), failed[:min(5, len(failed))], p.Log())
	}
	if d := c1.Sub(c0); d.LocalUDP == 0 || d.ServerUDP != 0 {
		t.Errorf("Expected the pods' queries answered on the node once it captures, got %+v", d)
	}
	for _, want := range []string{"holding until the upstream answers kubernetes.default.svc.cluster.local. A", "capturing the node's pods' DNS: its upstream answered"} {
		if !strings.Contains(p.Log(), want) {
			t.Errorf("Expected the log to say %q:\n%s", want, p.Log())
		}
	}
}

// TestNodeLocalUpstreamLostLab: the kube-dns-upstream Service goes (deleted, as deleting
// NodeLocal DNSCache's whole manifest does), while the kube-dns ClusterIP stays: after three
// unanswered probes the server holds, says so once, and counts it; the pods' lookups go to
// kube-dns through kube-proxy and succeed. The Service comes back: it captures again.
func TestNodeLocalUpstreamLostLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	p := startNodeLocal(t, l, "")
	if err := l.SetServices(lab.ClusterIP); err != nil {
		t.Fatal(err)
	}
	lost := time.Now()
	if err := l.WaitNodeLocalState("hold", 30*time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	t.Logf("held %s after the upstream Service went", time.Since(lost).Round(time.Millisecond))
	c0 := counters(t, l)
	for _, r := range lookupsOK(t, l, lab.Glibc, lab.DefaultResolvConf(), "web", "example.org") {
		if r.Elapsed >= time.Second {
			t.Errorf("Expected %s resolved at once through kube-proxy, took %s", r.Name, r.Elapsed)
		}
	}
	lookupsOK(t, l, lab.Musl, lab.DefaultResolvConf(), "api.shop")
	if d := counters(t, l).Sub(c0); d.ServerUDP == 0 || d.LocalUDP != 0 {
		t.Errorf("Expected the held node's pods to reach kube-dns through the DNAT, got %+v", d)
	}
	m := scrapeNode(t, l)
	if got := m.Sum("coredns_raceguard_nodelocal_capture_changes_total", map[string]string{"to": "hold"}); got != 1 {
		t.Errorf("Expected one change to hold counted, got %v", got)
	}
	if strings.Count(p.Log(), "holding: the upstream did not answer") != 1 {
		t.Errorf("Expected one log line for the change:\n%s", p.Log())
	}

	if err := l.SetServices(lab.ClusterIP, lab.UpstreamClusterIP); err != nil {
		t.Fatal(err)
	}
	if err := l.WaitNodeLocalRules(15 * time.Second); err != nil {
		t.Fatalf("%v\n%s", err, p.Log())
	}
	c0 = counters(t, l)
	lookupsOK(t, l, lab.Glibc, lab.DefaultResolvConf(), "web", "example.org")
	if d := counters(t, l).Sub(c0); d.ServerUDP != 0 || d.LocalUDP == 0 {
		t.Errorf("Expected the pods' queries back on the node, got %+v", d)
	}
	if got := scrapeNode(t, l).Sum("coredns_raceguard_nodelocal_capture_changes_total", map[string]string{"to": "capture"}); got != 2 {
		t.Errorf("Expected two changes to capture counted (start, return), got %v", got)
	}
}

// TestNodeLocalSelfCheckLab: the self-check says, per address, whether a query from the node
// reaches this server. Then something takes the node's queries to the ClusterIP before any
// rule of raceguard's sees them, as a socket-level service load balancer does (Cilium's
// kube-proxy replacement rewrites the socket's destination to a kube-dns pod; here a stateless
// rewrite ahead of raceguard's hook sends them to another DNS server on the node): the check
// fails for the ClusterIP only, with a log line naming the cause, and its gauge says 0.
func TestNodeLocalSelfCheckLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	p := startNodeLocal(t, l, "")
	gauge := func(addr string) float64 {
		return scrapeNode(t, l).Sum("coredns_raceguard_nodelocal_self_check", map[string]string{"address": addr})
	}
	waitGauge := func(addr string, want float64) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); gauge(addr) != want; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("Expected nodelocal_self_check{address=%s} %v within 10s:\n%s", addr, want, p.Log())
			}
		}
	}
	waitGauge(lab.ClusterIP, 1)
	waitGauge(lab.LinkLocalIP, 1)
	if !strings.Contains(p.Log(), "self-check: DNS from the node to "+lab.ClusterIP+":53 reaches this server") {
		t.Errorf("Expected the self-check's result logged:\n%s", p.Log())
	}

	other, err := lab.StartUpstream(l.Node, lab.ClusterIP+":5353")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	const socketLB = `table inet socketlb {
	chain output {
		type filter hook output priority -301; policy accept;
		ip daddr ` + lab.ClusterIP + ` udp dport 53 udp dport set 5353
		ip saddr ` + lab.ClusterIP + ` udp sport 5353 udp sport set 53
	}
}
`
	if _, err := l.NodeExec("sh", "-c", "echo '"+socketLB+"' | nft -f -"); err != nil {
		t.Fatal(err)
	}
	waitGauge(lab.ClusterIP, 0)
	if gauge(lab.LinkLocalIP) != 1 {
		t.Error("Expected the link-local address's self-check to pass still")
	}
	if want := "self-check: DNS from the node to " + lab.ClusterIP + ":53 does not reach this server: answered by another server"; !strings.Contains(p.Log(), want) ||
		!strings.Contains(p.Log(), "transparent mode does nothing") {
		t.Errorf("Expected the log to say %q and why:\n%s", want, p.Log())
	}
	if _, err := l.NodeExec("nft", "delete", "table", "inet", "socketlb"); err != nil {
		t.Fatal(err)
	}
	waitGauge(lab.ClusterIP, 1)
}
