package nodenet

import (
	"bufio"
	"encoding/binary"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
)

func TestWant(t *testing.T) {
	tb := &table{t: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}}
	for _, tc := range []struct {
		addrs       []string
		health      uint16
		rules, sets int
	}{
		{[]string{"169.254.20.10", "10.96.0.10"}, 0, 6, 1},
		{[]string{"169.254.20.10", "10.96.0.10"}, 8080, 8, 1},
		{[]string{"169.254.20.10", "fd00:10:96::a"}, 8080, 16, 2},
	} {
		cfg := Config{Port: 53, HealthPort: tc.health}
		for _, a := range tc.addrs {
			cfg.Addrs = append(cfg.Addrs, netip.MustParseAddr(a))
		}
		s := tb.want(cfg, true)
		if len(s.rules) != tc.rules || len(s.sets) != tc.sets || len(s.chains) != 2 {
			t.Errorf("%v health %d: Expected %d rules and %d sets, got %d and %d", tc.addrs, tc.health, tc.rules, tc.sets, len(s.rules), len(s.sets))
		}
		var pre int
		for _, r := range s.rules {
			cm, ok := userdata.GetString(r.UserData, userdata.TypeComment)
			if !ok || !strings.HasPrefix(cm, "raceguard: ") {
				t.Errorf("Expected every rule named by a raceguard comment, got %q", cm)
			}
			if r.Chain.Name == "prerouting" {
				pre++
				if cm != commentPods {
					t.Errorf("Expected only the socket-conditioned rules in prerouting, got %q", cm)
				}
			}
		}
		if want := 2 * tc.sets; pre != want {
			t.Errorf("Expected %d prerouting rules (UDP and TCP per family), got %d", want, pre)
		}
	}
}

// TestWantHold: holding, the table has no NOTRACK rule; it drops what reaches a ClusterIP
// untranslated and refuses what reaches a link-local address, UDP and TCP each, and only what no
// other raceguard made untracked. Observing, it lists the addresses and has no chain.
func TestWantHold(t *testing.T) {
	tb := &table{t: &nftables.Table{Name: TableName, Family: nftables.TableFamilyINet}}
	cfg := Config{Port: 53, HealthPort: 8080, Addrs: []netip.Addr{netip.MustParseAddr("169.254.20.10"), netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a")}}
	s := tb.want(cfg, false)
	if len(s.chains) != 1 || s.chains[0].Name != "input" || *s.chains[0].Hooknum != *nftables.ChainHookInput {
		t.Fatalf("Expected one input chain, got %v", s.chains)
	}
	if len(s.sets) != 2 {
		t.Errorf("Expected both address sets (another raceguard's proof that this one serves them), got %v", s.sets)
	}
	verdicts := map[string]int{}
	for _, r := range s.rules {
		cm, _ := userdata.GetString(r.UserData, userdata.TypeComment)
		var ct, notrack bool
		verdict := ""
		for _, e := range r.Exprs {
			switch e := e.(type) {
			case *expr.Ct:
				ct = e.Key == expr.CtKeySTATE
			case *expr.Notrack:
				notrack = true
			case *expr.Verdict:
				verdict = "drop"
			case *expr.Reject:
				verdict = "reject"
			}
		}
		if notrack || !ct {
			t.Errorf("%q: Expected a ct state condition and no notrack", cm)
		}
		verdicts[verdict]++
		if (verdict == "reject") != (cm == commentRefuse) {
			t.Errorf("%q: verdict %s", cm, verdict)
		}
	}
	if verdicts["drop"] != 4 || verdicts["reject"] != 2 {
		t.Errorf("Expected UDP and TCP dropped for the two ClusterIPs and refused for the link-local address, got %v", verdicts)
	}

	cfg.Observe, cfg.Addrs = true, cfg.Addrs[:1]
	if s := tb.want(cfg, false); len(s.chains) != 0 || len(s.rules) != 0 || len(s.sets["addrs4"]) != 1 {
		t.Errorf("Expected an observing table to list its address and nothing else, got %+v", s)
	}
}

// TestPlanChain: raceguard's accept rules must come before every other rule of their chain.
func TestPlanChain(t *testing.T) {
	for _, tc := range []struct {
		name       string
		have, want []string
		reorder    bool
		missing    []string
		dups       []int
	}{
		{"in place", []string{"a", "b", "", ""}, []string{"a", "b"}, false, nil, nil},
		{"empty chain", nil, []string{"a", "b"}, false, []string{"a", "b"}, nil},
		{"flushed, firewall back", []string{"", ""}, []string{"a", "b"}, false, []string{"a", "b"}, nil},
		{"kube-proxy's jump above", []string{"", "a", "b", ""}, []string{"a", "b"}, true, nil, nil},
		{"one above, one missing", []string{"a", "", ""}, []string{"a", "b"}, false, []string{"b"}, nil},
		{"one below another's", []string{"a", "", "b"}, []string{"a", "b"}, true, nil, nil},
		{"a duplicate", []string{"a", "b", "a", ""}, []string{"a", "b"}, false, nil, []int{2}},
	} {
		p := planChain(tc.have, tc.want)
		if p.reorder != tc.reorder || !slices.Equal(p.missing, tc.missing) || !slices.Equal(p.dups, tc.dups) {
			t.Errorf("%s: Expected reorder %v, missing %v, dups %v; got %+v", tc.name, tc.reorder, tc.missing, tc.dups, p)
		}
	}
}

func TestFirewallRules(t *testing.T) {
	cfg := Config{Port: 53, Addrs: []netip.Addr{netip.MustParseAddr("169.254.20.10"), netip.MustParseAddr("fd00::a")}}
	rs := firewallRules(cfg)
	if len(rs) != 8 {
		t.Fatalf("Expected 8 accept rules (2 addresses, UDP and TCP, INPUT and OUTPUT), got %d", len(rs))
	}
	var comments []string
	for _, r := range rs {
		comments = append(comments, r.comment)
		if len(r.comment) >= 256 {
			t.Errorf("Expected a comment iptables can hold, got %d bytes", len(r.comment))
		}
	}
	slices.Sort(comments)
	if len(slices.Compact(comments)) != len(rs) {
		t.Errorf("Expected every accept rule named uniquely, got %v", comments)
	}
	if rs[0].family != nftables.TableFamilyIPv4 || rs[len(rs)-1].family != nftables.TableFamilyIPv6 {
		t.Error("Expected IPv4 rules in ip filter and IPv6 rules in ip6 filter")
	}
}

func TestParseIPVS(t *testing.T) {
	const ipvs = `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port Forward Weight ActiveConn InActConn
UDP  0A60000A:0035 rr
  -> 0AF40105:0035      Masq    1      0          0
TCP  0A600001:01BB rr
UDP  [fd00:0010:0096:0000:0000:0000:0000:000a]:0035 rr
`
	addrs := []netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00:10:96::a"), netip.MustParseAddr("10.96.0.1")}
	got := parseIPVS(bufio.NewScanner(strings.NewReader(ipvs)), 53, addrs)
	want := []string{"udp 10.96.0.10:53", "udp [fd00:10:96::a]:53"}
	if !slices.Equal(got, want) {
		t.Errorf("Expected %v, got %v", want, got)
	}
}

func TestSocketCovers(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("fd00::a")
	for _, tc := range []struct {
		bound  string
		a      netip.Addr
		covers bool
	}{
		{"10.96.0.10", v4, true}, {"10.96.0.11", v4, false}, {"0.0.0.0", v4, true}, {"0.0.0.0", v6, false},
		{"::", v4, true}, {"::", v6, true}, {"fd00::a", v6, true},
	} {
		s := socket{local: netip.AddrPortFrom(netip.MustParseAddr(tc.bound), 53)}
		if s.covers(tc.a) != tc.covers {
			t.Errorf("Expected a socket on %s to cover %s: %v", tc.bound, tc.a, tc.covers)
		}
	}
}

func TestTableFlags(t *testing.T) {
	// What google/nftables v0.3.0 decodes from the kernel's big-endian NFTA_TABLE_FLAGS.
	decoded := binary.NativeEndian.Uint32([]byte{0, 0, 0, nftTableOwner}) // host order, as the library reads it
	if f := tableFlags(&nftables.Table{Flags: decoded}); f != nftTableOwner {
		t.Errorf("Expected the owner flag back, got %#x", f)
	}
}
