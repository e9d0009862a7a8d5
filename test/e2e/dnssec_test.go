package e2e

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// dnssecServers are the two servers of dnssecSetup: stock CoreDNS and raceguard.
type dnssecServers struct {
	stock, rg, rgTCP string // UDP addresses, and raceguard's TCP one
	zone             *signedZone
	up               *adUpstream
}

// dnssecSearch is the fixed search list the raceguard server of dnssecServers completes with,
// trusted whole: the lab client's (test/lab's DefaultResolvConf).
const dnssecSearch = "default.svc.cluster.local svc.cluster.local cluster.local " + lab.NodeDomain

// dnssecSetup signs a copy of the sample cluster zone with the sign plugin and starts two
// CoreDNS servers in-process that serve it with the file plugin and forward the rest to an
// upstream that sets AD: stock (no raceguard) and raceguard completing every first try with
// dnssecSearch. cache is the cache directive of both, or "".
//
// The copy gives svc.cluster.local and default.svc.cluster.local a TXT record each. Without it they
// are empty non-terminals, and the file plugin's NXDOMAIN for a name below one (every first try:
// api.shop.default.svc.cluster.local) denies the wildcard of the apex instead of the one of the
// closest encloser; delv then reports a broken trust chain for it from stock CoreDNS itself, and a
// right answer could not be told from a wrong one.
func dnssecSetup(t *testing.T, cache string) dnssecServers {
	t.Helper()
	body, err := os.ReadFile(testenv.ClusterZone(t))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(t.TempDir(), "cluster.local.db")
	body = append(body, "\nsvc\tIN TXT\t\"an explicit closest encloser\"\ndefault.svc\tIN TXT\t\"an explicit closest encloser\"\n"...)
	if err := os.WriteFile(src, body, 0o644); err != nil {
		t.Fatal(err)
	}
	s := dnssecServers{zone: signZone(t, src, "cluster.local"), up: startADUpstream(t, testenv.LoopbackUpstream(t))}

	start := func(raceguard string) (udp, tcp string) {
		i, udp, tcp, err := testenv.CoreDNSServerAndPorts(`.:0 {
    ` + raceguard + `
    ` + cache + `
    file ` + s.zone.File + ` cluster.local
    forward . ` + s.up.Addr + `
}`)
		if err != nil {
			t.Fatalf("Could not start CoreDNS: %v", err)
		}
		t.Cleanup(func() { testenv.Stop(i) })
		return udp, tcp
	}
	s.stock, _ = start("")
	s.rg, s.rgTCP = start("raceguard {\n        search " + dnssecSearch + "\n    }\n    collapse")
	return s
}

// delv runs the delv at bin against the server at addr, validating with zone's key as the only
// trust anchor, and returns its output.
func delv(t *testing.T, bin, addr string, zone *signedZone, name string, qtype uint16) string {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-a", zone.Anchors, "+root="+zone.Origin, "@"+host, "-p", port,
		name, dns.TypeToString[qtype])
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("delv %s %s: %v: %s", name, dns.TypeToString[qtype], err, out)
	}
	return string(out)
}

// delvTTL is the TTL of a record delv prints; TTLs age in a cache and differ between servers.
var delvTTL = regexp.MustCompile(`(?m)^(;? ?\S+\s+)\d+(\s+IN\s)`)

// verdict is delv's output with its TTLs blanked.
func verdict(out string) string { return delvTTL.ReplaceAllString(out, "${1}TTL${2}") }

// TestDNSSECValidatingClient proves with delv, a validating client, that raceguard changes nothing a
// validator gets from a zone signed by the sign plugin: for the first tries raceguard completes
// for a plain client (checked first: each is answered with a CNAME), and for the rest of each
// walk, delv's output from raceguard is the one from stock CoreDNS, and stock's is a validated
// NXDOMAIN for every first try, never bogus. The plain client's walks are sent first from the same
// address, so the decisions and NXDOMAINs raceguard keeps for that client are in place when the
// validator asks the same names.
func TestDNSSECValidatingClient(t *testing.T) {
	bin := testenv.Tool(t, "delv", "bind9-dnsutils")
	s := dnssecSetup(t, "cache 30")
	stock, rg, zone := s.stock, s.rg, s.zone

	// The first tries, and where a plain client's own walk (or raceguard's completion) ends.
	completed := []struct {
		first, target string
		qtype         uint16
	}{
		{"api.shop.default.svc.cluster.local.", "api.shop.svc.cluster.local.", dns.TypeA},
		{"api.shop.default.svc.cluster.local.", "api.shop.svc.cluster.local.", dns.TypeAAAA},
		{"cart.shop.default.svc.cluster.local.", "cart.shop.svc.cluster.local.", dns.TypeA},
		{"db.shop.default.svc.cluster.local.", "db.shop.svc.cluster.local.", dns.TypeA},
		{"prometheus.monitoring.default.svc.cluster.local.", "prometheus.monitoring.svc.cluster.local.", dns.TypeA},
		{"example.org.default.svc.cluster.local.", "example.org.", dns.TypeA},
		{"example.org.default.svc.cluster.local.", "example.org.", dns.TypeAAAA},
		{"registry.lab.internal.default.svc.cluster.local.", "registry.lab.internal.", dns.TypeA},
	}
	for _, c := range completed {
		r := exchange(t, "udp", rg, c.first, c.qtype, 1232, false)
		if len(r.Answer) < 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || r.Answer[0].(*dns.CNAME).Target != c.target {
			t.Fatalf("%s %s: Expected a plain client's first try completed with a CNAME to %s, got %v", c.first, dns.TypeToString[c.qtype], c.target, r)
		}
	}
	// A walk where every name is NXDOMAIN: the plain client walks it all, from memory after the first.
	walk := []string{"nosuch.example.org.default.svc.cluster.local.", "nosuch.example.org.svc.cluster.local.",
		"nosuch.example.org.cluster.local.", "nosuch.example.org.lab.internal.", "nosuch.example.org."}
	for _, name := range walk {
		if r := exchange(t, "udp", rg, name, dns.TypeA, 1232, false); r.Rcode != dns.RcodeNameError {
			t.Fatalf("%s: Expected NXDOMAIN for a plain client, got %v", name, r)
		}
	}

	type question struct {
		name  string
		qtype uint16
	}
	var asked []question
	for _, c := range completed {
		asked = append(asked, question{c.first, c.qtype})
	}
	for _, name := range walk[:3] {
		asked = append(asked, question{name, dns.TypeA})
	}
	asked = append(asked,
		question{"example.org.svc.cluster.local.", dns.TypeA},
		question{"example.org.cluster.local.", dns.TypeA},
		question{"api.shop.svc.cluster.local.", dns.TypeA},
		question{"api.shop.svc.cluster.local.", dns.TypeAAAA},
		question{"legacy.default.svc.cluster.local.", dns.TypeAAAA}, // NODATA
	)
	for _, q := range asked {
		want := delv(t, bin, stock, zone, q.name, q.qtype)
		got := delv(t, bin, rg, zone, q.name, q.qtype)
		t.Logf("delv %s %s\nstock:\n%sraceguard:\n%s", q.name, dns.TypeToString[q.qtype], want, got)
		for _, bad := range []string{"insecurity proof failed", "bogus", "broken trust chain", "no valid RRSIG", "resolution failed: failure"} {
			if strings.Contains(want, bad) {
				t.Errorf("%s %s: Expected stock CoreDNS to serve the signed zone right, delv says %q:\n%s", q.name, dns.TypeToString[q.qtype], bad, want)
			}
			if strings.Contains(got, bad) {
				t.Errorf("%s %s: raceguard: delv says %q:\n%s", q.name, dns.TypeToString[q.qtype], bad, got)
			}
		}
		if verdict(got) != verdict(want) {
			t.Errorf("%s %s: Expected delv's output from raceguard to be stock's, got\n%s\nwant\n%s", q.name, dns.TypeToString[q.qtype], got, want)
		}
		if strings.HasSuffix(q.name, ".default.svc.cluster.local.") && !strings.HasPrefix(q.name, "legacy.") &&
			!(strings.Contains(want, "resolution failed: ncache nxdomain") && strings.Contains(want, "; negative response, fully validated")) {
			t.Errorf("%s %s: Expected a validated NXDOMAIN for a first try, got\n%s", q.name, dns.TypeToString[q.qtype], want)
		}
	}
}

// TestDNSSECCompletionNeverAD: the upstream sets AD on every answer, and without a cache in the
// chain stock hands a plain client (DO=0) its AD=1 reply for example.org; raceguard completes that client's first try
// example.org.default.svc.cluster.local to it, and the completed reply, whose CNAME has no
// signature, never has AD (RFC 4035 §3.2.3), with or without EDNS, over UDP and TCP.
func TestDNSSECCompletionNeverAD(t *testing.T) {
	// No cache: CoreDNS's cache clears AD for a client without DO or AD (RFC 6840 §5.7), so with
	// it no reply to a plain client has AD, and nothing would show a completion keeping it.
	s := dnssecSetup(t, "")

	if r := exchange(t, "udp", s.stock, "example.org.", dns.TypeA, 1232, false); !r.AuthenticatedData || len(r.Answer) != 1 {
		t.Fatalf("Expected stock's reply for example.org. to carry the upstream's AD, got %v", r)
	}
	if r := exchange(t, "udp", s.rg, "example.org.", dns.TypeA, 1232, false); !r.AuthenticatedData {
		t.Errorf("Expected raceguard's reply for example.org. asked as is to carry the upstream's AD, as stock's, got %v", r)
	}
	before := s.up.ad.Load()
	for _, tc := range []struct {
		network, name string
		qtype         uint16
		edns          uint16
	}{
		{"udp", "ExAmPlE.oRg.default.svc.cluster.local.", dns.TypeA, 0},
		{"udp", "example.ORG.default.svc.cluster.local.", dns.TypeAAAA, 1232},
		{"tcp", "www.example.org.default.svc.cluster.local.", dns.TypeA, 1232},
		{"udp", "hop1.example.net.default.svc.cluster.local.", dns.TypeA, 1232},
	} {
		addr := map[string]string{"udp": s.rg, "tcp": s.rgTCP}[tc.network]
		r := exchange(t, tc.network, addr, tc.name, tc.qtype, tc.edns, false)
		if len(r.Answer) < 2 || r.Answer[0].Header().Rrtype != dns.TypeCNAME || !strings.HasPrefix(strings.ToLower(r.Answer[0].(*dns.CNAME).Target), strings.ToLower(strings.TrimSuffix(tc.name, "default.svc.cluster.local."))) {
			t.Errorf("%s %s %s: Expected a completion (CNAME to the name itself, then its records), got %v", tc.network, tc.name, dns.TypeToString[tc.qtype], r)
			continue
		}
		if r.AuthenticatedData {
			t.Errorf("%s %s %s: Expected AD=0 on a completed reply, got %v", tc.network, tc.name, dns.TypeToString[tc.qtype], r)
		}
	}
	if s.up.ad.Load() == before {
		t.Errorf("Expected the completions' answers to come from the upstream with AD set")
	}
}
