package cluster

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// checkInterval bounds how long the node-local server's periodic check may take to notice
// something: the chart's check_interval (nodelocal's default, 10 s), twice, and a margin.
const checkInterval = 25 * time.Second

// nodeLocal returns node n's running node-local pod, starting one (the DaemonSet's) if none runs,
// and waits until it is Ready with its rules in.
func (w *world) nodeLocal(t *testing.T, n *Node) *Pod {
	t.Helper()
	if p := w.nl[n]; p != nil {
		return p
	}
	p := w.runNodeLocal(t, n, "")
	if err := p.WaitReady(t.Context(), 60*time.Second); err != nil {
		w.nl[n] = nil
		p.remove(t.Context())
		t.Fatalf("%v\n%s", err, tail(p.Log(), 30))
	}
	w.waitRules(t, n, p)
	return p
}

// runNodeLocal starts a node-local pod on n with corefile ("" for the chart's) and makes it n's.
func (w *world) runNodeLocal(t *testing.T, n *Node, corefile string) *Pod {
	t.Helper()
	w.nlSeq++
	p, err := n.RunNodeLocal(t.Context(), fmt.Sprintf("raceguard-node-local-%s-%d", n.Name, w.nlSeq), corefile)
	if err != nil {
		t.Fatalf("%s: node-local: %v\n%s", n.Name, err, p.Log())
	}
	w.nl[n], w.nlKind = p, nodeLocalChart
	return p
}

// waitRules waits until node n's node-local server captures the pods' DNS.
func (w *world) waitRules(t *testing.T, n *Node, p *Pod) {
	t.Helper()
	if !waitFor(30*time.Second, func() bool { return capturing(n) }) {
		t.Fatalf("%s: the node-local server did not capture the pods' DNS within 30s:\n%s", n.Name, tail(p.Log(), 30))
	}
}

// capturing reports whether n's node-local server says it captures the pods' DNS (its NOTRACK
// rules in), rather than holding or not running.
func capturing(n *Node) bool {
	m, err := n.Scrape(9153)
	return err == nil && m.Sum("coredns_raceguard_nodelocal_state", map[string]string{"state": "capture"}) == 1 &&
		m.Sum("coredns_raceguard_nodelocal_rules_present", map[string]string{"kind": "notrack"}) == 1
}

// stopNodeLocal stops n's node-local pod, if one runs, as a deletion does: SIGTERM, its lameduck,
// its clean teardown.
func (w *world) stopNodeLocal(t *testing.T, n *Node) {
	t.Helper()
	p := w.nl[n]
	if p == nil {
		return
	}
	w.nl[n] = nil
	if err := p.Delete(t.Context()); err != nil {
		t.Fatal(err)
	}
	if c, err := n.Tables("inet raceguard"); err != nil || c != 0 {
		t.Fatalf("%s: after the node-local server's clean stop: %d raceguard tables (%v)", n.Name, c, err)
	}
}

// key names a baseline answer.
func key(pod string, libc lab.Libc, name string) string { return pod + " " + string(libc) + " " + name }

// recordBaseline asks names from every client pod with both resolvers through kube-proxy's path
// to kube-dns, with nothing in the way, and keeps the answers: what every later lookup must get.
func (w *world) recordBaseline(t *testing.T, names ...string) {
	t.Helper()
	var clients []client
	for _, p := range w.pods {
		for _, libc := range libcs {
			clients = append(clients, client{p, libc})
		}
	}
	for _, r := range lookupAll(t, clients, 4, names...) {
		w.base[key(r.pod, r.libc, r.Name)] = r.String()
	}
	// The cluster's answers are the API server's: the Services' ClusterIPs, the headless
	// Service's pods, and the internet's.
	for name, want := range map[string]string{
		"web": w.ip["web"], "api.shop": w.ip["api"], "example.org": "192.0.2.10,2001:db8::10",
	} {
		if got := w.base[key("cf", lab.Glibc, name)]; got != want {
			t.Fatalf("baseline: cf glibc %s: %s, want %s", name, got, want)
		}
	}
}

// want is the answer a lookup must get: the baseline's, or for a name of the internet's
// wildcard *.wild.example.com its address.
func (w *world) want(r record) string {
	if strings.HasSuffix(r.Name, ".wild.example.com") {
		return "203.0.113.77"
	}
	if v, ok := w.base[key(r.pod, r.libc, r.Name)]; ok {
		return v
	}
	return "(no baseline for " + r.Name + ")"
}

// ruleOrder reports whether, in node n's iptables filter INPUT and OUTPUT chains (iptables-nft),
// every raceguard accept rule comes before any rule that could drop a packet: a jump to another
// chain, DROP or REJECT. It returns "" when they do, or what is wrong; ok is false where iptables
// has neither chain on the node (iptables-nft makes a base chain when a rule first needs it).
func ruleOrder(n *Node) (problem string, ok bool) {
	var problems []string
	for _, chain := range []string{"INPUT", "OUTPUT"} {
		// iptables -S prints a chain's default policy even where the table does not exist.
		if _, err := n.Exec("nft", "list", "chain", "ip", "filter", chain); err != nil {
			continue
		}
		ok = true
		out, err := n.Exec("iptables", "-w", "-S", chain)
		if err != nil {
			return "", false
		}
		var ours, firstOther int
		firstOther = -1
		var other string
		for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
			switch {
			case strings.Contains(line, "raceguard: accept untracked DNS"):
				ours++
				if firstOther >= 0 {
					problems = append(problems, fmt.Sprintf("%s: raceguard's rule %d comes after %q", chain, i, other))
				}
			case strings.HasPrefix(line, "-A ") && !strings.HasSuffix(line, "-j ACCEPT") && !strings.HasSuffix(line, "-j RETURN") && firstOther < 0:
				firstOther, other = i, line
			}
		}
		if ours == 0 {
			problems = append(problems, chain+": no raceguard accept rule")
		}
	}
	return strings.Join(problems, "; "), ok
}

// waitRuleOrder waits, at most checkInterval, until ruleOrder holds on n, and fails t if it does
// not; where the node has no iptables filter chains it logs that and returns false.
func (w *world) waitRuleOrder(t *testing.T, n *Node) bool {
	t.Helper()
	var problem string
	var ok bool
	if waitFor(checkInterval, func() bool { problem, ok = ruleOrder(n); return !ok || problem == "" }) {
		if !ok {
			t.Logf("%s: no iptables filter chains (kube-proxy %s mode): no accept rule to order", n.Name, w.mode)
		}
		return ok
	}
	w.orderProblems = append(w.orderProblems, problem)
	in, _ := n.Exec("iptables", "-w", "-S", "INPUT")
	out, _ := n.Exec("iptables", "-w", "-S", "OUTPUT")
	t.Errorf("%s: Expected raceguard's accept rules before any chain that could drop the untracked DNS within %s (the periodic check restores their order), got: %s\n%s%s",
		n.Name, checkInterval, problem, in, out)
	return true
}
