package labtest

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// deployCorefile returns the Corefile of a deploy/ ConfigMap file: the block under "Corefile: |".
func deployCorefile(t *testing.T, file string) string {
	t.Helper()
	p, err := lab.RepoPath(file)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	_, body, ok := strings.Cut(string(b), "  Corefile: |\n")
	if !ok {
		t.Fatalf("%s: no Corefile", file)
	}
	var out strings.Builder
	for _, line := range strings.Split(body, "\n") {
		if line != "" && !strings.HasPrefix(line, "    ") {
			break
		}
		out.WriteString(strings.TrimPrefix(line, "    ") + "\n")
	}
	return out.String()
}

// TestNodeLocalObserveLab runs deploy/node-local-observe's Corefile on the lab's node, with its
// nodelocal block (capture off): it makes its own link-local address and nothing else, its table
// lists the address and has no rule, the pods' DNS keeps going through kube-proxy's DNAT, it reads
// the node's conntrack counters over netlink, its self-check passes, it answers the node on its
// address through kube-dns, and SIGTERM leaves nothing.
func TestNodeLocalObserveLab(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	t.Setenv("KUBE_DNS_SERVICE_HOST", lab.ClusterIP) // the service link, inherited by the server
	const observeIP = "169.254.20.11"
	p, err := l.StartNodeLocalIn(deployCorefile(t, "deploy/node-local-observe/configmap.yaml"), "observe")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.StopWithin(15 * time.Second) })

	tables, rules := ruleCount(t, l)
	if len(tables) != 1 || rules != 0 {
		rs, _ := l.NodeRuleset()
		t.Errorf("Expected one raceguard table with no rule, got %v with %d:\n%s", tables, rules, rs)
	}
	addrs, err := l.NodeExec("ip", "-o", "addr")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(addrs, " "+observeIP+"/") || strings.Contains(addrs, " "+lab.ClusterIP+"/") || strings.Contains(addrs, " "+lab.LinkLocalIP+"/") {
		t.Errorf("Expected %s on the node and neither %s nor %s:\n%s", observeIP, lab.ClusterIP, lab.LinkLocalIP, addrs)
	}

	c0 := counters(t, l)
	lookupsOK(t, l, lab.Glibc, lab.DefaultResolvConf(), "web", "example.org")
	lookupsOK(t, l, lab.Musl, lab.DefaultResolvConf(), "api.shop")
	if d := counters(t, l).Sub(c0); d.ServerUDP == 0 || d.LocalUDP != 0 {
		t.Errorf("Expected the pods' queries through kube-proxy's DNAT and none to the node, got %+v", d)
	}
	m := new(dns.Msg).SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
	if r, err := lab.Exchange(l.Node, "udp", observeIP+":53", m, 2*time.Second); err != nil || len(r.Answer) == 0 {
		t.Errorf("Expected the observing server to answer the node at %s through kube-dns, got %v %v", observeIP, r, err)
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ms := scrapeNode(t, l)
		if ms.Sum("coredns_raceguard_conntrack_up", map[string]string{"source": "netlink"}) == 1 &&
			ms.Sum("coredns_raceguard_nodelocal_self_check", map[string]string{"address": observeIP}) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Expected conntrack_up{source=netlink} 1 and the self-check of %s passed:\n%s", observeIP, p.Log())
		}
	}

	p.StopWithin(15 * time.Second)
	if left := leftBehind(t, l); len(left) > 0 {
		t.Errorf("Expected nothing left after SIGTERM, got %v", left)
	}
	if addrs, _ := l.NodeExec("ip", "-o", "addr"); strings.Contains(addrs, " "+observeIP+"/") {
		t.Errorf("Expected %s removed after SIGTERM:\n%s", observeIP, addrs)
	}
}
