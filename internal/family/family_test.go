package family

import (
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
)

func TestTracker(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tr := New(100, func() int64 { return now.UnixNano() })
	defer tr.Close()
	v4, dual, fresh := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")

	tr.Observe(v4, dns.TypeA)
	tr.Observe(dual, dns.TypeA)
	tr.Observe(dual, dns.TypeAAAA)
	if !tr.Asked(dual, dns.TypeAAAA) || !tr.Asked(dual, dns.TypeA) || !tr.Asked(v4, dns.TypeA) ||
		tr.Asked(v4, dns.TypeAAAA) || tr.Asked(fresh, dns.TypeA) || tr.Asked(fresh, dns.TypeAAAA) {
		t.Error("Expected Asked to say which types each client asked")
	}

	// One AAAA is remembered for a Window, however many A come after it.
	now = now.Add(Window / 2)
	tr.Observe(dual, dns.TypeA)
	if !tr.Asked(dual, dns.TypeAAAA) {
		t.Errorf("Expected the AAAA remembered for %v", Window)
	}
	now = now.Add(Window/2 + 2*time.Second)
	tr.Observe(dual, dns.TypeA)
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
	c := netip.MustParseAddr("10.0.0.1")
	tr.Observe(c, dns.TypeA)
	if n := testing.AllocsPerRun(1000, func() { tr.Observe(c, dns.TypeA) }); n != 0 {
		t.Errorf("Expected no allocation, got %v", n)
	}
}
