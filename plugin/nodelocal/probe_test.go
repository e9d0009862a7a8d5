package nodelocal

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/forward"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/pkg/proxy"
	"github.com/coredns/coredns/plugin/pkg/transport"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// TestGate: rise answered probes in a row capture, fall unanswered ones in a row hold; a result
// that agrees with the state starts the count again.
func TestGate(t *testing.T) {
	g := gate{rise: 2, fall: 3}
	for i, step := range []struct {
		answered, changed, capturing bool
	}{
		{false, false, false}, {true, false, false}, {false, false, false}, // one answer is not enough
		{true, false, false}, {true, true, true}, // two in a row capture
		{false, false, true}, {false, false, true}, {true, false, true}, // two failures, then an answer: the count starts again
		{false, false, true}, {false, false, true}, {false, true, false}, // three in a row hold
		{true, false, false}, {true, true, true},
	} {
		if changed := g.observe(step.answered); changed != step.changed || g.capturing != step.capturing {
			t.Fatalf("Step %d (answered %v): Expected changed %v capturing %v, got %v %v", i, step.answered, step.changed, step.capturing, changed, g.capturing)
		}
	}
}

// named is a handler with a name, to stand in a handler list.
type named string

func (n named) ServeDNS(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) { return 0, nil }
func (n named) Name() string                                                        { return string(n) }

// TestProbeEntry: the probe starts below nodelocal, the plugins that only watch queries, and the
// cache and collapse.
func TestProbeEntry(t *testing.T) {
	nl := &NodeLocal{}
	for _, tc := range []struct {
		hs   []plugin.Handler
		want string
	}{
		{[]plugin.Handler{named("metadata"), nl, named("prometheus"), named("errors"), named("log"), named("raceguard"), named("acl"), named("cache"), named("collapse"), named("forward")}, "forward"},
		{[]plugin.Handler{nl, named("errors"), named("raceguard"), named("cache"), named("template"), named("forward")}, "template"},
		{[]plugin.Handler{nl, named("prometheus"), named("log"), named("rewrite"), named("forward")}, "rewrite"},
		{[]plugin.Handler{named("cache"), nl, named("forward")}, "forward"},
		{[]plugin.Handler{nl, named("errors")}, ""},
		{[]plugin.Handler{nl, named("prometheus"), named("cache")}, ""},
	} {
		got := ""
		if e := probeEntry(tc.hs, nl); e != nil {
			got = e.Name()
		}
		if got != tc.want {
			t.Errorf("%v: Expected the probe to enter at %q, got %q", tc.hs, tc.want, got)
		}
	}
}

// forwardTo returns CoreDNS's forward plugin to addr, started; it stops when t ends.
func forwardTo(t *testing.T, addr string) *forward.Forward {
	t.Helper()
	f := forward.New()
	f.SetProxy(proxy.NewProxy("probe-test", addr, transport.DNS))
	if err := f.OnStartup(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.OnShutdown() })
	return f
}

// TestUpstreamProbe runs the probe down real chains: forward to an upstream that answers (an
// address or NXDOMAIN), to one that does not, and handlers that fail in their ways.
func TestUpstreamProbe(t *testing.T) {
	up := dnstest.NewServer(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg).SetReply(r)
		if r.Question[0].Name == "kubernetes.default.svc.cluster.local." {
			m.Answer = []dns.RR{test.A("kubernetes.default.svc.cluster.local. 5 IN A 10.96.0.1")}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})
	defer up.Close()
	// A UDP port nothing listens on: the socket is closed at once.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := pc.LocalAddr().String()
	pc.Close()

	addr := &net.UDPAddr{IP: net.IPv4(169, 254, 20, 10), Port: 53}
	for _, tc := range []struct {
		name  string
		entry plugin.Handler
		probe string
		err   string // "" when the probe must be answered
	}{
		{"an upstream that answers", forwardTo(t, up.Addr), DefaultProbe, ""},
		{"an upstream that says NXDOMAIN", forwardTo(t, up.Addr), "nothing.default.svc.cluster.local.", ""},
		{"an upstream that is not there", forwardTo(t, dead), DefaultProbe, "connection refused"},
		{"a plugin that writes SERVFAIL", test.HandlerFunc(func(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
			m := new(dns.Msg).SetRcode(r, dns.RcodeServerFailure)
			w.WriteMsg(m)
			return dns.RcodeServerFailure, nil
		}), DefaultProbe, "SERVFAIL"},
		{"a plugin that refuses without writing", test.NextHandler(dns.RcodeRefused, nil), DefaultProbe, "no reply"},
		{"a plugin that panics", test.HandlerFunc(func(context.Context, dns.ResponseWriter, *dns.Msg) (int, error) {
			panic("boom")
		}), DefaultProbe, "panic in probe: boom"},
	} {
		p := &upstreamProbe{entry: tc.entry, name: tc.probe, addr: addr}
		err := p.probe(context.Background())
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: Expected error %q, got %v", tc.name, tc.err, err)
		}
	}
}

// TestSelfCheck: a query for the check's name is answered by nodelocal itself, with its token;
// another server's answer, or none, fails the check; any other query passes on.
func TestSelfCheck(t *testing.T) {
	nl := &NodeLocal{Next: test.NextHandler(dns.RcodeNameError, nil)}
	ours := serveUDP(t, func(w dns.ResponseWriter, r *dns.Msg) {
		if rcode, _ := nl.ServeDNS(context.Background(), w, r); !plugin.ClientWrite(rcode) {
			w.WriteMsg(new(dns.Msg).SetRcode(r, rcode))
		}
	})
	other := serveUDP(t, func(w dns.ResponseWriter, r *dns.Msg) {
		w.WriteMsg(new(dns.Msg).SetRcode(r, dns.RcodeNameError))
	})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	silent := pc.LocalAddr().String()
	defer pc.Close() // bound, never read: no answer

	check := func(addr string) error {
		t.Helper()
		ap := netip.MustParseAddrPort(addr)
		res := runSelfCheck(context.Background(), []netip.Addr{ap.Addr()}, ap.Port(), "cluster.local.")
		return res[ap.Addr()]
	}
	if err := check(ours); err != nil {
		t.Errorf("Expected the check to reach nodelocal, got %v", err)
	}
	if err := check(other); err == nil || !strings.Contains(err.Error(), "answered by another server (NXDOMAIN") {
		t.Errorf("Expected another server's answer to fail the check, got %v", err)
	}
	if err := check(silent); err == nil || !strings.Contains(err.Error(), "no answer") {
		t.Errorf("Expected no answer to fail the check, got %v", err)
	}
	if checking.Load() != nil {
		t.Error("Expected no check in flight after it ended")
	}
	// Outside a check, the same kind of name passes on.
	m := new(dns.Msg).SetQuestion("0123456789abcdef.raceguard-self-check.cluster.local.", dns.TypeTXT)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	if rcode, _ := nl.ServeDNS(context.Background(), rec, m); rcode != dns.RcodeNameError {
		t.Errorf("Expected a query outside a check passed on, got rcode %d", rcode)
	}
}

// serveUDP serves h on a UDP port of 127.0.0.1 until t ends, and returns the address. (dnstest's
// servers share one handler.)
func serveUDP(t *testing.T, h dns.HandlerFunc) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	s := &dns.Server{PacketConn: pc, Handler: h, NotifyStartedFunc: func() { close(started) }}
	go s.ActivateAndServe()
	<-started
	t.Cleanup(func() { s.Shutdown() })
	return pc.LocalAddr().String()
}
