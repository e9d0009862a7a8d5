package cluster

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// policyChain is the iptables chain of the emulated ingress policy.
const policyChain = "RGLAB-POLICY"

// scenarioPolicy (6): the pods behind a conntrack-based ingress policy, as Calico's policy chains
// are: only replies of established connections reach them, the rest is dropped. Two forms of it:
//
//   - in iptables' filter table (iptables-nft), as Calico's iptables dataplane does: a chain jumped
//     to from the top of FORWARD and OUTPUT for the pods' links, inserted after the node-local
//     server started, as Calico (re)inserts its jumps. The untracked replies of the node-local
//     server are neither ESTABLISHED nor RELATED: they pass only if raceguard's accept rules come
//     before the jump, which its periodic check must restore. Expected: no failed lookup once it
//     has. A pod with dnsPolicy Default (its DNS forwarded by the node, tracked) shows the
//     policy lets established replies through.
//   - in an nftables table of its own, as Calico's nftables dataplane or a firewalld does: no rule
//     in another table can overrule its drop, so the operator must allow the untracked DNS
//     replies there (`ct state untracked udp sport 53 accept`, and tcp): the lookups fail
//     without that rule and pass with it.
func scenarioPolicy(t *testing.T, w *world) {
	n := w.nodes[0]
	w.nodeLocal(t, n)
	cf, dflt := w.pods["cf"], w.pods["dflt"]
	links := []string{cf.link, dflt.link}
	// Six lookups per client, all at once: a lookup whose reply is dropped costs its resolver's
	// whole timeout (10 s with glibc), once.
	run := func(clients []client) tally {
		var tl tally
		tl.add(lookupAll(t, clients, 6, repeat(2, loopNames...)...), w.want)
		return tl
	}
	pods := []client{{cf, lab.Glibc}, {cf, lab.Musl}}
	routed := []client{{dflt, lab.Glibc}, {dflt, lab.Musl}}

	// The iptables form.
	script := [][]string{{"-N", policyChain},
		{"-A", policyChain, "-m", "conntrack", "--ctstate", "RELATED,ESTABLISHED", "-j", "ACCEPT"},
		{"-A", policyChain, "-j", "DROP"}}
	for _, l := range links {
		script = append(script, []string{"-I", "FORWARD", "1", "-o", l, "-j", policyChain}, []string{"-I", "OUTPUT", "1", "-o", l, "-j", policyChain})
	}
	removeIPTables := func() {
		for _, l := range links {
			n.Exec("iptables", "-w", "-D", "FORWARD", "-o", l, "-j", policyChain)
			n.Exec("iptables", "-w", "-D", "OUTPUT", "-o", l, "-j", policyChain)
		}
		n.Exec("iptables", "-w", "-F", policyChain)
		n.Exec("iptables", "-w", "-X", policyChain)
	}
	t.Cleanup(removeIPTables)
	for _, s := range script {
		if _, err := n.Exec(append([]string{"iptables", "-w"}, s...)...); err != nil {
			t.Fatal(err)
		}
	}
	m := startMeter(t, n)
	sane := run(routed)
	var first tally // before raceguard's periodic check: one lookup each
	first.add(lookupAll(t, pods, 1, "web"), w.want)
	before := len(w.orderProblems)
	ordered := w.waitRuleOrder(t, n)
	var tl tally
	if len(w.orderProblems) == before {
		tl = run(pods)
	} else { // the accept rules stayed below the policy: one lookup each shows it
		tl.add(lookupAll(t, pods, 1, "web"), w.want)
	}
	m.into(t, &tl)
	summary(t, w.mode, "6-policy/iptables", tl, fmt.Sprintf("before_reorder_failures=%d/%d routed_failures=%d/%d", first.failures, first.lookups, sane.failures, sane.lookups))
	if sane.failures != 0 {
		t.Errorf("Expected the policy to let the replies of tracked DNS through, %d of %d failed: %s", sane.failures, sane.lookups, firstFew(sane.failed, 4))
	}
	if !ordered {
		t.Errorf("Expected iptables filter chains on the node once the policy made them")
	}
	if tl.failures != 0 {
		t.Errorf("Expected every lookup through the node-local server to pass the conntrack-based policy once raceguard's accept rules come first, %d of %d failed: %s",
			tl.failures, tl.lookups, firstFew(tl.failed, 4))
	}

	// The nftables form, alone.
	removeIPTables()
	ifs := `{ "` + strings.Join(links, `", "`) + `" }`
	policy := "table inet rglab-policy {\n"
	for _, hook := range []string{"forward", "output"} {
		policy += "\tchain " + hook + " {\n\t\ttype filter hook " + hook + " priority filter; policy accept;\n" +
			"\t\toifname " + ifs + " ct state established,related accept\n" +
			"\t\toifname " + ifs + " drop\n\t}\n"
	}
	policy += "}\n"
	if err := lab.NFT(n.NS, policy); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lab.NFT(n.NS, "delete table inet rglab-policy\n") })
	sane = run(routed)
	// One lookup each: a dropped reply costs a resolver its whole timeout.
	var denied tally
	denied.add(lookupAll(t, pods, 1, "web"), w.want)
	allow := ""
	for _, hook := range []string{"forward", "output"} {
		for _, proto := range []string{"udp", "tcp"} {
			allow += "insert rule inet rglab-policy " + hook + " oifname " + ifs + " ct state untracked " + proto + " sport 53 accept\n"
		}
	}
	if err := lab.NFT(n.NS, allow); err != nil {
		t.Fatal(err)
	}
	allowed := run(pods)
	if readme := string(testenv.ReadRepoFile(t, "README.md")); !strings.Contains(readme, "`ct state untracked udp sport 53 accept`") {
		t.Errorf("Expected the README (Deployment) to say what a policy in a table of its own must allow: ct state untracked udp sport 53 accept")
	}
	summary(t, w.mode, "6-policy/nftables", allowed, fmt.Sprintf("without_allow_failures=%d/%d routed_failures=%d/%d", denied.failures, denied.lookups, sane.failures, sane.lookups))
	if sane.failures != 0 {
		t.Errorf("Expected the nftables policy to let the replies of tracked DNS through, %d of %d failed", sane.failures, sane.lookups)
	}
	if denied.failures == 0 {
		t.Errorf("Expected a drop in an nftables table of its own to stop the untracked replies (no accept elsewhere can overrule it), got %d lookups answered", denied.lookups)
	}
	if allowed.failures != 0 {
		t.Errorf("Expected the lookups to pass once the policy allows untracked DNS replies, %d of %d failed: %s", allowed.failures, allowed.lookups, firstFew(allowed.failed, 4))
	}
}
