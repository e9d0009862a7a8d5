package family

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/slots"
)

func TestTracker(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tr := New(100, func() int64 { return now.UnixNano() })
	defer tr.Close()
	v4, dual, fresh := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")
	observe := func(client netip.Addr, qtype uint16) { tr.Observe(slots.ClientOf(client), qtype) }

	observe(v4, dns.TypeA)
	observe(dual, dns.TypeA)
	observe(dual, dns.TypeAAAA)
	if !tr.Asked(dual, dns.TypeAAAA) || !tr.Asked(dual, dns.TypeA) || !tr.Asked(v4, dns.TypeA) ||
		tr.Asked(v4, dns.TypeAAAA) || tr.Asked(fresh, dns.TypeA) || tr.Asked(fresh, dns.TypeAAAA) {
		t.Error("Expected Asked to say which types each client asked")
	}

	// One AAAA is remembered for a Window, however many A come after it.
	now = now.Add(Window / 2)
	observe(dual, dns.TypeA)
	if !tr.Asked(dual, dns.TypeAAAA) {
		t.Errorf("Expected the AAAA remembered for %v", Window)
	}
	now = now.Add(Window/2 + 2*time.Second)
	observe(dual, dns.TypeA)
	if tr.Asked(dual, dns.TypeAAAA) || !tr.Asked(dual, dns.TypeA) {
		t.Errorf("Expected the client back to A alone once its AAAA is %v old", Window)
	}
	// A record expires with its last type.
	now = now.Add(Window + time.Second)
	if tr.Asked(v4, dns.TypeA) || tr.Asked(dual, dns.TypeA) {
		t.Error("Expected nothing asked a Window ago to count")
	}
}

func TestObserveAllocatesNothingForAKnownClient(t *testing.T) {
	tr := New(100, func() int64 { return time.Now().UnixNano() })
	defer tr.Close()
	c := slots.ClientOf(netip.MustParseAddr("10.0.0.1"))
	tr.Observe(c, dns.TypeA)
	if n := testing.AllocsPerRun(1000, func() { tr.Observe(c, dns.TypeA) }); n != 0 {
		t.Errorf("Expected no allocation, got %v", n)
	}
}

// TestOneClientOneKey: a client reaching a dual-stack socket shows an IPv4-mapped address, and is
// the same client as its IPv4 address; IPv6 clients are told apart by every bit of their address.
func TestOneClientOneKey(t *testing.T) {
	tr := New(100, func() int64 { return time.Now().UnixNano() })
	defer tr.Close()
	tr.Observe(slots.ClientOf(netip.MustParseAddr("::ffff:10.0.0.9")), dns.TypeAAAA)
	if !tr.Asked(netip.MustParseAddr("10.0.0.9"), dns.TypeAAAA) {
		t.Error("Expected the IPv4-mapped client and its IPv4 address one client")
	}
	tr.Observe(slots.ClientOf(netip.MustParseAddr("fd00::1")), dns.TypeAAAA)
	for _, other := range []string{"fd00::2", "fd01::1", "10.0.0.1", "::1"} {
		if tr.Asked(netip.MustParseAddr(other), dns.TypeAAAA) {
			t.Errorf("Expected %s a client of its own", other)
		}
	}
	if !tr.Asked(netip.MustParseAddr("fd00::1"), dns.TypeAAAA) {
		t.Error("Expected fd00::1 to have asked AAAA")
	}
}
