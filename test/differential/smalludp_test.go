package differential

import (
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// smallUDPNames exist beyond the cluster domains, and their replies fit 512 bytes as their own
// names' but not as a search completion of their first try, which carries a longer question and
// a CNAME (test/lab/external.db): 30 addresses, and a 224-byte name of 4 dots.
var smallUDPNames = []string{"t30.example.io", strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + "." + strings.Repeat("d", 29) + ".io"}

// addressesIn512 returns how many A records of stock's reply m to name would reach a client
// without EDNS (512 bytes, as CoreDNS truncates) as it is, and as a completion of the first try
// of a pod in namespace default.
func addressesIn512(m *dns.Msg, name string) (own, completed int) {
	count := func(m *dns.Msg) int {
		m.Truncate(dns.MinMsgSize)
		n := 0
		for _, rr := range m.Answer {
			if rr.Header().Rrtype == dns.TypeA {
				n++
			}
		}
		return n
	}
	c := m.Copy()
	first := name + "default.svc.cluster.local."
	c.Question[0].Name = first
	c.Answer = append([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: first, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 30}, Target: name}}, c.Answer...)
	return count(m.Copy()), count(c)
}

// TestSmallUDPDifferential proves, with real glibc and musl clients (AF_UNSPEC, AF_INET,
// AF_INET6), that a completion that would not fit the client's 512 bytes is not sent (issue 11,
// case 3): musl 1.2.3 keeps what fits of a truncated reply and does not retry over TCP, so the
// completion of smallUDPNames' first tries would lose addresses (3 of 30 before the fix) or all
// of them (EAI_NONAME for the 224-byte name), where each name's own reply fits. A node-local
// raceguard that knows the client's list, which would otherwise complete them, passes them
// through (search_passed_total{reason="truncated"}), and every lookup ends as with stock.
func TestSmallUDPDifferential(t *testing.T) {
	l := testenv.NewLab(t)
	startDeployment(t, l, lab.StockCorefile)
	for _, name := range smallUDPNames {
		m, err := lab.Exchange(l.Client, "udp", lab.ClusterIP+":53", new(dns.Msg).SetQuestion(name+".", dns.TypeA), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		own, completed := addressesIn512(m, name+".")
		t.Logf("%.20s...: %d addresses fit 512 bytes in its own reply, %d in a completion", name, own, completed)
		if own != len(m.Answer) || completed >= own {
			t.Errorf("Expected every address of %s in its own reply and fewer in a completion, got %d of %d, and %d", name, own, len(m.Answer), completed)
		}
	}
	stock, stockQ := LookupAll(t, l, smallUDPNames)

	startNodeLocalFor(t, l, withNodeLocal(lab.RaceguardCorefile), lab.DefaultResolvConf())
	got, gotQ := LookupAll(t, l, smallUDPNames)
	reportDiffs(t, "node-local", stock, got)
	truncated := nodeSum(t, l, "coredns_raceguard_search_passed_total", map[string]string{"reason": "truncated"})
	t.Logf("Queries: %d stock, %d node-local; %v walks passed through because their completion would not fit", stockQ, gotQ, truncated)
	if truncated == 0 {
		t.Errorf("Expected walks passed through as truncated, got none")
	}
	for k, v := range stock {
		if k.Libc == lab.Musl && k.Family != lab.Inet6 && strings.HasPrefix(k.Name, "t30") && strings.Count(v, ",") < 29 {
			t.Errorf("Expected musl to get all 30 addresses of t30.example.io, got %s", v)
		}
	}
}
