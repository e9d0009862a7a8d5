package labtest

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// What a node-local raceguard leaves in the node's nftables: its table, by name, and its rules.
var (
	raceguardTable = regexp.MustCompile(`(?m)^table inet (raceguard(-\d+)?) `)
	notrackRule    = regexp.MustCompile(`(?m)^\s+ip6? [sd]addr @addrs[46] .* notrack comment "raceguard: `)
)

// ruleCount returns the raceguard tables of the node and the NOTRACK rules in them.
func ruleCount(t *testing.T, l *lab.Lab) (tables []string, rules int) {
	t.Helper()
	rs, err := l.NodeRuleset()
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range raceguardTable.FindAllStringSubmatch(rs, -1) {
		tables = append(tables, m[1])
	}
	return tables, len(notrackRule.FindAllString(rs, -1))
}

// nodeLocalRules is the number of NOTRACK rules of a node-local server with IPv4 addresses and
// no health port: UDP and TCP, to it in prerouting; from it, and to it from the node, in output.
const nodeLocalRules = 6

// dummyLinks reports whether the kernel can make dummy links, trying in the lab's node.
func dummyLinks(t *testing.T, l *lab.Lab) bool {
	t.Helper()
	if _, err := l.NodeExec("ip", "link", "add", "rgprobe", "type", "dummy"); err != nil {
		return false
	}
	if _, err := l.NodeExec("ip", "link", "del", "rgprobe"); err != nil {
		t.Fatal(err)
	}
	return true
}

// leftBehind lists what of a node-local raceguard's is still on the node.
func leftBehind(t *testing.T, l *lab.Lab) []string {
	t.Helper()
	var out []string
	if tables, rules := ruleCount(t, l); len(tables) > 0 || rules > 0 {
		out = append(out, fmt.Sprintf("tables %v with %d rules", tables, rules))
	}
	addrs, err := l.NodeExec("ip", "-o", "addr")
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{lab.ClusterIP, lab.LinkLocalIP} {
		if strings.Contains(addrs, " "+a+"/") {
			out = append(out, "address "+a)
		}
	}
	if links, _ := l.NodeExec("ip", "-o", "link"); strings.Contains(links, ": raceguard:") {
		out = append(out, "link raceguard")
	}
	if fw, err := l.NodeExec("nft", "list", "ruleset"); err == nil && strings.Contains(fw, "raceguard: accept untracked DNS") {
		out = append(out, "firewall accept rules")
	}
	return out
}

// waitLog waits until the process has logged s n times.
func waitLog(t *testing.T, p *lab.Process, s string, n int) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); strings.Count(p.Log(), s) < n; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("Expected %q %d times in the log within 15s:\n%s", s, n, p.Log())
		}
	}
}

// TestNodeLocalLifecycleLab: start, reload by SIGUSR1, reload by the reload plugin, SIGTERM,
// start again, SIGKILL, start again: the node has one table and its rules exactly once at every
// step; after SIGTERM nothing of raceguard's is left (table, rules, addresses, link); after
// SIGKILL the table is gone and the addresses, which a later raceguard adopts and removes, are
// still there. A removed address is put back, and counted.
func TestNodeLocalLifecycleLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	hasDummy := dummyLinks(t, l)
	check := func(step string) {
		t.Helper()
		tables, rules := ruleCount(t, l)
		if len(tables) != 1 || rules != nodeLocalRules {
			rs, _ := l.NodeRuleset()
			t.Errorf("%s: Expected one raceguard table with %d rules, got %v with %d:\n%s", step, nodeLocalRules, tables, rules, rs)
		}
		if r := testenv.LookupOne(t, l, lab.Glibc, lab.Unspec, lab.DefaultResolvConf(), "web"); r.String() != testenv.Joined("10.96.12.34", "fd00:96::12:34") || r.Elapsed > time.Second {
			t.Errorf("%s: Expected web resolved at once, got %s in %s", step, r, r.Elapsed)
		}
		if c0, c1 := counters(t, l), func() lab.Counters {
			testenv.LookupOne(t, l, lab.Musl, lab.Unspec, lab.DefaultResolvConf(), "api.shop")
			return counters(t, l)
		}(); c1.Sub(c0).ServerUDP != 0 {
			t.Errorf("%s: Expected no query through the DNAT, got %+v", step, c1.Sub(c0))
		}
	}

	// The reload plugin watches the Corefile every 3 s (at most 1 s apart).
	corefile := strings.Replace(lab.NodeLocalWith(""), "    errors\n", "    errors\n    reload 3s 1s\n", 1)
	start := func() *lab.Process {
		t.Helper()
		p, err := l.StartNodeLocal(corefile)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { p.StopWithin(10 * time.Second) })
		waitInstalled(t, l, p)
		return p
	}

	p := start()
	check("start")
	m := scrapeNode(t, l)
	if hasDummy {
		if m.Sum("coredns_raceguard_nodelocal_link", map[string]string{"kind": "dummy"}) != 1 {
			t.Errorf("Expected nodelocal_link{kind=dummy} 1, got %v", m)
		}
	} else {
		if m.Sum("coredns_raceguard_nodelocal_link", map[string]string{"kind": "lo"}) != 1 ||
			m.Sum("coredns_raceguard_nodelocal_fallbacks_total", map[string]string{"reason": "no_dummy"}) != 1 ||
			!strings.Contains(p.Log(), "no dummy links: the node-local addresses go on lo") {
			t.Errorf("Expected the lo fallback logged and exported (nodelocal_link{kind=lo}, fallbacks_total{reason=no_dummy}), got log:\n%s", p.Log())
		}
		if addrs, _ := l.NodeExec("ip", "-o", "-4", "addr", "show", "dev", "lo"); strings.Count(addrs, "lo:raceguard") != 2 {
			t.Errorf("Expected both addresses on lo labelled lo:raceguard, got:\n%s", addrs)
		}
	}

	b, err := os.ReadFile(p.Conf())
	if err != nil {
		t.Fatal(err)
	}
	// A real change: the plugin hashes the parsed Corefile, so a comment would not do.
	if err := os.WriteFile(p.Conf(), []byte(strings.Replace(string(b), "cache 30", "cache 31", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "Reloading complete", 1)
	check("reload plugin")

	// SIGUSR1 after the reload plugin: CoreDNS 1.15's reload plugin starts its watcher only at
	// the first startup, so after a SIGUSR1 it would not see a change any more.
	if err := p.Signal(syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitLog(t, p, "Reloading complete", 2)
	check("SIGUSR1")

	// Someone removes an address: the check puts it back.
	if _, err := l.NodeExec("sh", "-c", "ip addr del "+lab.LinkLocalIP+"/32 dev $(ip -o addr | awk '/"+lab.LinkLocalIP+"\\//{print $2}')"); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if scrapeNode(t, l).Sum("coredns_raceguard_nodelocal_restores_total", map[string]string{"kind": "address"}) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Expected the removed address restored and counted within 10s:\n%s", p.Log())
		}
	}
	check("address restored")

	p.StopWithin(10 * time.Second)
	if left := leftBehind(t, l); len(left) > 0 {
		t.Errorf("SIGTERM: Expected nothing of raceguard's left on the node, got %v", left)
	}

	p = start()
	check("start again")
	p.Kill()
	tables, _ := ruleCount(t, l)
	if len(tables) != 0 {
		t.Errorf("SIGKILL: Expected the kernel to drop the owner table, got %v", tables)
	}
	if left := leftBehind(t, l); len(left) != 2 {
		t.Errorf("SIGKILL: Expected just the two addresses left, got %v", left)
	}
	p = start()
	check("start after SIGKILL")
	p.StopWithin(10 * time.Second)
	if left := leftBehind(t, l); len(left) > 0 {
		t.Errorf("SIGTERM after SIGKILL: Expected nothing of raceguard's left on the node, got %v", left)
	}
}

// TestNodeLocalSurgeLab: a surge rollout starts the new pod beside the old one on the same
// addresses. The new one starts (the old one's owner table vouches for its sockets) with a table
// of its own; the old one's SIGTERM removes its table only, while clients keep resolving: no
// lookup fails or waits, and the new one's rules stay. The last one's SIGTERM leaves nothing.
//
// Queries the upstream never answers are in flight as the old one stops: its server stops
// reading, waits for them (up to its grace period), then closes its socket. Whatever the kernel
// queued on that socket meanwhile would be lost, were the old one's sockets not handed over to
// the new one's first (one lookup in 68 was, in a CI run, without queries held in flight).
func TestNodeLocalSurgeLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	old := startNodeLocal(t, l, "")
	surge, err := l.StartNodeLocal(lab.NodeLocalWith(""))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { surge.StopWithin(10 * time.Second) })
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if tables, rules := ruleCount(t, l); len(tables) == 2 && rules == 2*nodeLocalRules {
			break
		}
		if time.Now().After(deadline) {
			rs, _ := l.NodeRuleset()
			t.Fatalf("Expected the surge pod's own table beside the old one's:\n%s\nsurge log:\n%s", rs, surge.Log())
		}
	}

	// Queries in flight on both servers (from eight source ports: the kernel hashes each to one
	// of the two sockets) when the old one stops.
	l.Up.Drop(func(name string) bool { return name == "hang.example.org." })
	var hung sync.WaitGroup
	for range 8 {
		hung.Go(func() {
			m := new(dns.Msg).SetQuestion("hang.example.org.", dns.TypeA)
			lab.Exchange(l.Client, "udp", lab.ClusterIP+":53", m, 6*time.Second)
		})
	}
	defer hung.Wait()
	done := make(chan []lab.Result)
	go func() {
		var all []lab.Result
		for start := time.Now(); time.Since(start) < 3*time.Second; {
			rs, err := l.Lookup(lab.Glibc, lab.Unspec, lab.DefaultResolvConf(), 2, "web", "example.org", "api.shop", "kubernetes.default")
			if err != nil {
				t.Error(err)
				break
			}
			all = append(all, rs...)
		}
		done <- all
	}()
	time.Sleep(500 * time.Millisecond)
	c0 := counters(t, l)
	old.StopWithin(10 * time.Second)
	rs := <-done
	c1 := counters(t, l)
	bad := 0
	for _, r := range rs {
		if r.Err != "" || r.Elapsed > time.Second {
			bad++
		}
	}
	t.Logf("surge: %d lookups while the old pod stopped, %d failed or slow; %d queries to the node, %d through the DNAT", len(rs), bad, c1.Sub(c0).LocalUDP, c1.Sub(c0).ServerUDP)
	if bad > 0 || len(rs) == 0 {
		t.Errorf("Expected every lookup answered at once across the old pod's stop, %d of %d were not", bad, len(rs))
	}
	if d := c1.Sub(c0); d.ServerUDP != 0 {
		t.Errorf("Expected the node never to fall back to the DNAT during the rollout, %d queries went through it", d.ServerUDP)
	}
	tables, rules := ruleCount(t, l)
	if len(tables) != 1 || rules != nodeLocalRules {
		t.Errorf("Expected the surge pod's table alone after the old pod stopped, got %v with %d rules", tables, rules)
	}
	if left := leftBehind(t, l); len(left) != 3 { // the table and the two addresses
		t.Errorf("Expected the surge pod's table and both addresses in place, got %v", left)
	}
	if !strings.Contains(old.Log(), "still served by") || !strings.Contains(old.Log(), "handed 2 UDP sockets over") {
		t.Errorf("Expected the old pod to say it leaves the addresses, and its two UDP sockets, to the new one:\n%s", old.Log())
	}
	surge.StopWithin(10 * time.Second)
	if left := leftBehind(t, l); len(left) > 0 {
		t.Errorf("Expected nothing left after the last pod's SIGTERM, got %v", left)
	}
}

// TestNodeLocalRefusesLab: another DNS server already serves the ClusterIP on the node (as
// node-local-dns of NodeLocal DNSCache would): raceguard refuses to start, names the address and
// the process that holds it, and changes nothing on the node.
func TestNodeLocalRefusesLab(t *testing.T) {
	l := testenv.NewLab(t)
	if _, err := l.NodeExec("ip", "addr", "add", lab.ClusterIP+"/32", "dev", "lo"); err != nil {
		t.Fatal(err)
	}
	other, err := lab.StartUpstream(l.Node, lab.ClusterIP+":53")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	before := nodeState(t, l)
	_, err = l.StartNodeLocal(lab.NodeLocalWith(""))
	if err == nil {
		t.Fatal("Expected raceguard to refuse to start beside another DNS server on its address")
	}
	want := fmt.Sprintf("%s:53 is already served on the node: udp %s:53 held by pid %d", lab.ClusterIP, lab.ClusterIP, os.Getpid())
	if !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "nothing on the node was changed") {
		t.Errorf("Expected the refusal to say %q, got: %v", want, err)
	}
	if after := nodeState(t, l); after != before {
		t.Errorf("Expected the node unchanged, before:\n%s\nafter:\n%s", before, after)
	}
}

// TestNodeLocalNoNetAdminLab: without CAP_NET_ADMIN (dropped, or only in a user namespace of its
// own, which does not own the node's network namespace) raceguard does not start, says why, and
// changes nothing.
func TestNodeLocalNoNetAdminLab(t *testing.T) {
	l := testenv.NewLab(t)
	before := nodeState(t, l)
	for _, wrap := range [][]string{
		{"setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin"},
		{"unshare", "--user", "--map-root-user"},
	} {
		_, err := l.StartNodeLocal(lab.NodeLocalWith(""), wrap...)
		if err == nil || !strings.Contains(err.Error(), "plugin/nodelocal: CAP_NET_ADMIN is missing") {
			t.Errorf("%s: Expected the startup error naming CAP_NET_ADMIN, got: %v", wrap[0], err)
		}
		if after := nodeState(t, l); after != before {
			t.Errorf("%s: Expected the node unchanged, before:\n%s\nafter:\n%s", wrap[0], before, after)
		}
	}
}

// TestNodeLocalFirewallLab: a node firewall that accepts only tracked traffic (iptables INPUT
// policy DROP, ESTABLISHED,RELATED accepted) drops the untracked DNS. raceguard's accept rules,
// first in iptables' own INPUT and OUTPUT chains and written as iptables-nft writes them, let it
// through; iptables reads them back; when someone flushes the chain, the check puts them back and
// counts it; when a jump to a chain that drops them is put above them (kube-proxy starting after
// raceguard), the check moves them back to the top and counts it; SIGTERM removes them and nothing
// else.
func TestNodeLocalFirewallLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	firewall := [][]string{
		{"iptables", "-A", "INPUT", "-i", "lo", "-j", "ACCEPT"},
		{"iptables", "-A", "INPUT", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "ACCEPT"},
		{"iptables", "-A", "OUTPUT", "-j", "ACCEPT"},
		{"iptables", "-P", "INPUT", "DROP"},
	}
	for _, c := range firewall {
		if _, err := l.NodeExec(c...); err != nil {
			t.Fatal(err)
		}
	}
	own, err := l.NodeExec("iptables", "-S")
	if err != nil {
		t.Fatal(err)
	}
	query := func() error {
		m := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
		_, err := lab.Exchange(l.Client, "udp", lab.ClusterIP+":53", m, 300*time.Millisecond)
		return err
	}

	p := startNodeLocal(t, l, "firewall off")
	if err := query(); err == nil {
		t.Fatal("Expected the firewall to drop untracked DNS without raceguard's accept rules: the test proves nothing otherwise")
	}
	p.StopWithin(10 * time.Second)

	p = startNodeLocal(t, l, "")
	if err := query(); err != nil {
		t.Errorf("Expected DNS through the firewall with raceguard's accept rules: %v", err)
	}
	rules, err := l.NodeExec("iptables", "-S")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`-A INPUT -d 10.96.0.10/32 -p udp -m udp --dport 53 -m comment --comment "raceguard: accept untracked DNS to 10.96.0.10:53 udp" -j ACCEPT`,
		`-A OUTPUT -s 169.254.20.10/32 -p tcp -m tcp --sport 53 -m comment --comment "raceguard: accept untracked DNS from 169.254.20.10:53 tcp" -j ACCEPT`,
	} {
		if !strings.Contains(rules, want) {
			t.Errorf("Expected iptables to read back %s, got:\n%s", want, rules)
		}
	}
	if strings.Index(rules, "-A INPUT -d") > strings.Index(rules, "-A INPUT -i lo") {
		t.Errorf("Expected raceguard's accept rules first in INPUT:\n%s", rules)
	}

	// Someone flushes INPUT and puts the firewall's own rules back, as a firewall reload does.
	for _, c := range append([][]string{{"iptables", "-F", "INPUT"}}, firewall[:2]...) {
		if _, err := l.NodeExec(c...); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if scrapeNode(t, l).Sum("coredns_raceguard_nodelocal_restores_total", map[string]string{"kind": "firewall"}) == 4 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Expected the 4 INPUT accept rules restored and counted within 10s:\n%s", p.Log())
		}
	}
	if err := query(); err != nil {
		t.Errorf("Expected DNS through the firewall once the rules are back: %v", err)
	}

	// kube-proxy (iptables mode) starts after raceguard and inserts its jumps at the top of INPUT;
	// here one to a firewall chain that accepts only tracked traffic from the pods. The check moves
	// raceguard's accept rules back above it, and counts it; kube-proxy, which only inserts a jump
	// that is missing, leaves the order so.
	for _, c := range [][]string{
		{"iptables", "-N", "KUBE-FIREWALL"},
		{"iptables", "-A", "KUBE-FIREWALL", "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED", "-j", "RETURN"},
		{"iptables", "-A", "KUBE-FIREWALL", "-i", "c0", "-j", "DROP"},
		{"iptables", "-I", "INPUT", "1", "-j", "KUBE-FIREWALL"},
	} {
		if _, err := l.NodeExec(c...); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if scrapeNode(t, l).Sum("coredns_raceguard_nodelocal_restores_total", map[string]string{"kind": "firewall_order"}) == 4 {
			break
		}
		if time.Now().After(deadline) {
			rules, _ := l.NodeExec("iptables", "-S", "INPUT")
			t.Fatalf("Expected the 4 INPUT accept rules moved back above the jump and counted within 10s:\n%s\n%s", rules, p.Log())
		}
	}
	rules, err = l.NodeExec("iptables", "-S", "INPUT")
	if err != nil {
		t.Fatal(err)
	}
	if jump, ours := strings.Index(rules, "-A INPUT -j KUBE-FIREWALL"), strings.LastIndex(rules, "raceguard: accept untracked DNS"); jump < 0 || ours > jump {
		t.Errorf("Expected every accept rule of raceguard's above kube-proxy's jump:\n%s", rules)
	}
	if err := query(); err != nil {
		t.Errorf("Expected DNS through the firewall once the rules are back on top: %v", err)
	}
	if !strings.Contains(p.Log(), "moved 4 firewall accept rule(s) back to the top") {
		t.Errorf("Expected the move logged:\n%s", p.Log())
	}
	time.Sleep(2500 * time.Millisecond) // two more checks: nothing more to move
	if got := scrapeNode(t, l).Sum("coredns_raceguard_nodelocal_restores_total", map[string]string{"kind": "firewall_order"}); got != 4 {
		t.Errorf("Expected the order kept once restored, got %v moves", got)
	}
	for _, c := range [][]string{{"iptables", "-D", "INPUT", "-j", "KUBE-FIREWALL"}, {"iptables", "-F", "KUBE-FIREWALL"}, {"iptables", "-X", "KUBE-FIREWALL"}} {
		if _, err := l.NodeExec(c...); err != nil {
			t.Fatal(err)
		}
	}

	p.StopWithin(10 * time.Second)
	after, err := l.NodeExec("iptables", "-S")
	if err != nil {
		t.Fatal(err)
	}
	if after != own {
		t.Errorf("Expected SIGTERM to leave the firewall as it was, before:\n%s\nafter:\n%s", own, after)
	}
}

// TestNodeLocalDummyLab: where the kernel has dummy links, the addresses go on raceguard's own
// dummy link, which SIGTERM removes with them.
func TestNodeLocalDummyLab(t *testing.T) {
	l := testenv.NewLab(t)
	if !dummyLinks(t, l) {
		t.Skip("Skipping: this kernel has no dummy links (CONFIG_DUMMY unset); TestNodeLocalLifecycleLab covers the lo fallback")
	}
	testenv.StartDNS(t, l, lab.StockCorefile)
	p := startNodeLocal(t, l, "")
	link, err := l.NodeExec("ip", "-d", "-o", "addr", "show", "dev", "raceguard")
	if err != nil || !strings.Contains(link, lab.ClusterIP+"/32") || !strings.Contains(link, lab.LinkLocalIP+"/32") {
		t.Errorf("Expected both addresses on dummy link raceguard, got %v:\n%s", err, link)
	}
	if m := scrapeNode(t, l); m.Sum("coredns_raceguard_nodelocal_link", map[string]string{"kind": "dummy"}) != 1 {
		t.Error("Expected nodelocal_link{kind=dummy} 1")
	}
	if r := testenv.LookupOne(t, l, lab.Musl, lab.Unspec, lab.DefaultResolvConf(), "web"); r.String() != testenv.Joined("10.96.12.34", "fd00:96::12:34") {
		t.Errorf("Expected web resolved, got %s", r)
	}
	p.StopWithin(10 * time.Second)
	if left := leftBehind(t, l); len(left) > 0 {
		t.Errorf("Expected nothing left after SIGTERM, got %v", left)
	}
}

func counters(t *testing.T, l *lab.Lab) lab.Counters {
	t.Helper()
	c, err := l.Counters()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestNodeLocalReadmeLab starts the examples of plugin/nodelocal/README.md on the lab's node (they
// would change the machine the test runs on): each starts, answers on the link-local address, and
// leaves nothing behind on SIGTERM.
func TestNodeLocalReadmeLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	readme, err := lab.RepoPath("plugin/nodelocal/README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks, err := testenv.CorefilesFromReadme(readme)
	if err != nil {
		t.Fatal(err)
	}
	if len(blocks) == 0 {
		t.Fatal("Expected ~~~ corefile examples in plugin/nodelocal/README.md")
	}
	for i, b := range blocks {
		p, err := l.StartNodeLocal(b)
		if err != nil {
			t.Errorf("Example %d did not start: %v\n%s", i, err, b)
			continue
		}
		m := new(dns.Msg).SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
		if r, err := lab.Exchange(l.Client, "udp", lab.LinkLocalIP+":53", m, 2*time.Second); err != nil || len(r.Answer) == 0 {
			t.Errorf("Example %d: Expected an answer from the pod, got %v %v", i, r, err)
		}
		p.StopWithin(15 * time.Second)
		if left := leftBehind(t, l); len(left) > 0 {
			t.Errorf("Example %d: Expected nothing left after SIGTERM, got %v", i, left)
		}
	}
}
