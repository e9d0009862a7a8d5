package query

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/miekg/dns"
)

// addrWriter is a ResponseWriter whose remote address the test sets.
type addrWriter struct {
	test.ResponseWriter
	remote net.Addr
}

func (w *addrWriter) RemoteAddr() net.Addr { return w.remote }

type otherAddr struct{ s string }

func (a otherAddr) Network() string { return "other" }
func (a otherAddr) String() string  { return a.s }

func TestClientAddrPort(t *testing.T) {
	mapped := netip.MustParseAddr("::ffff:10.0.0.7")
	tests := []struct {
		name   string
		remote net.Addr
		want   netip.AddrPort
		addr   netip.Addr
	}{
		{"udp4", &net.UDPAddr{IP: net.IPv4(10, 0, 0, 7), Port: 5353},
			netip.MustParseAddrPort("[::ffff:10.0.0.7]:5353"), netip.MustParseAddr("10.0.0.7")},
		{"udp mapped", net.UDPAddrFromAddrPort(netip.AddrPortFrom(mapped, 53)),
			netip.AddrPortFrom(mapped, 53), netip.MustParseAddr("10.0.0.7")},
		{"tcp6", &net.TCPAddr{IP: net.ParseIP("2001:db8::1"), Port: 40000},
			netip.MustParseAddrPort("[2001:db8::1]:40000"), netip.MustParseAddr("2001:db8::1")},
		{"other", otherAddr{"192.0.2.1:99"},
			netip.MustParseAddrPort("192.0.2.1:99"), netip.MustParseAddr("192.0.2.1")},
		{"unparsable", otherAddr{"@abstract"}, netip.AddrPort{}, netip.Addr{}},
		{"nil", nil, netip.AddrPort{}, netip.Addr{}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := &addrWriter{remote: tc.remote}
			if got := ClientAddrPort(w); got != tc.want {
				t.Errorf("ClientAddrPort = %v, want %v", got, tc.want)
			}
			if got := ClientAddr(w); got != tc.addr {
				t.Errorf("ClientAddr = %v, want %v", got, tc.addr)
			}
		})
	}
}

func TestDNSSECBits(t *testing.T) {
	for _, tc := range []struct {
		edns, do, cd bool
	}{
		{false, false, false}, {false, false, true}, {true, false, false}, {true, true, false}, {true, true, true},
	} {
		r := new(dns.Msg)
		r.SetQuestion("example.org.", dns.TypeA)
		r.CheckingDisabled = tc.cd
		if tc.edns {
			r.SetEdns0(1232, tc.do)
		}
		if do, cd := DNSSECBits(r); do != tc.do || cd != tc.cd {
			t.Errorf("edns=%v: DNSSECBits = (%v, %v), want (%v, %v)", tc.edns, do, cd, tc.do, tc.cd)
		}
	}
}

func TestPairIndex(t *testing.T) {
	for qtype, want := range map[uint16]int{dns.TypeA: 0, dns.TypeAAAA: 1, dns.TypeMX: 0} {
		if got := PairIndex(qtype); got != want {
			t.Errorf("PairIndex(%s) = %d, want %d", dns.TypeToString[qtype], got, want)
		}
	}
}

func TestInZones(t *testing.T) {
	for _, tc := range []struct {
		name  string
		zones []string
		want  bool
	}{
		{"example.org.", []string{"."}, true},
		{"a.example.org.", []string{"example.org."}, true},
		{"example.org.", []string{"example.org."}, true},
		{"xexample.org.", []string{"example.org."}, false},
		{"example.net.", []string{"example.org.", "cluster.local."}, false},
		{"a.cluster.local.", []string{"example.org.", "cluster.local."}, true},
	} {
		if got := InZones(tc.name, tc.zones); got != tc.want {
			t.Errorf("InZones(%q, %v): Expected %v, got %v", tc.name, tc.zones, tc.want, got)
		}
	}
}

func TestOwn(t *testing.T) {
	ctx := context.Background()
	if Own(ctx) {
		t.Error("Expected a plain context not to be marked")
	}
	if !Own(MarkOwn(ctx)) {
		t.Error("Expected MarkOwn's context to be marked")
	}
	if !Own(context.WithValue(MarkOwn(ctx), struct{}{}, 1)) {
		t.Error("Expected the mark to survive a derived context")
	}
}

func TestLower(t *testing.T) {
	for _, s := range []string{"", ".", "example.org.", "ExAmPlE.oRg.", "web.default.svc.cluster.local.", "WEB.DEFAULT.SVC.CLUSTER.LOCAL.",
		"a@[`z{Z.", "\\065\\090.example.", "caf\xc3\xa9.example.", "\xc1\xda\xff.", "abcdefgH", "abcdefghijklmnoP", "@[@[@[@[`{`{`{`{"} {
		b := []byte(s)
		for i, c := range b {
			if 'A' <= c && c <= 'Z' {
				b[i] = c + 'a' - 'A'
			}
		}
		if want, got := string(b), Lower(s); got != want {
			t.Errorf("Lower(%q): Expected %q, got %q", s, want, got)
		}
	}
	// One upper-case letter at every position of names of every length around the eight-byte
	// steps: each one lowered, and nothing else changed.
	for n := 1; n <= 25; n++ {
		for pos := 0; pos < n; pos++ {
			b := []byte(strings.Repeat("a.z", n)[:n])
			b[pos] = 'Q'
			want := strings.Repeat("a.z", n)[:pos] + "q" + strings.Repeat("a.z", n)[pos+1:n]
			if got := Lower(string(b)); got != want {
				t.Errorf("Lower(%q): Expected %q, got %q", b, want, got)
			}
		}
	}
	for c := 0; c < 256; c++ {
		for pos := 0; pos < 8; pos++ {
			b := []byte("abcdefgh")
			b[pos] = byte(c)
			want := 'A' <= c && c <= 'Z'
			x := uint64(0)
			for k := 7; k >= 0; k-- {
				x = x<<8 | uint64(b[k])
			}
			if got := hasUpper8(x); got != want {
				t.Fatalf("hasUpper8 with byte %#x at %d: Expected %v, got %v", c, pos, want, got)
			}
		}
	}
	if n := testing.AllocsPerRun(100, func() { Lower("web.default.svc.cluster.local.") }); n != 0 {
		t.Errorf("Expected no allocation for a lower-case name, got %v", n)
	}
}
