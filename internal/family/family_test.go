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
	if tr.AsksOnly(v4) != 0 {
		t.Error("Expected a client seen once not to be known well enough")
	}
	if !tr.Asked(dual, dns.TypeAAAA) || tr.Asked(v4, dns.TypeAAAA) || tr.Asked(fresh, dns.TypeA) {
		t.Error("Expected Asked to say which types each client asked")
	}

	now = now.Add(Settle)
	tr.Observe(v4, dns.TypeA)
	if got := tr.AsksOnly(v4); got != dns.TypeA {
		t.Errorf("Expected a client asking A alone for %v to ask only A, got %d", Settle, got)
	}
	if got := tr.AsksOnly(dual); got != 0 {
		t.Errorf("Expected a dual client to ask both, got %d", got)
	}
	if got := tr.AsksOnly(fresh); got != 0 {
		t.Errorf("Expected an unknown client to count as asking both, got %d", got)
	}

	// One AAAA makes it dual for a Window.
	tr.Observe(v4, dns.TypeAAAA)
	if got := tr.AsksOnly(v4); got != 0 {
		t.Errorf("Expected a client that asked AAAA to ask both, got %d", got)
	}
	now = now.Add(Window / 2)
	tr.Observe(v4, dns.TypeA)
	if got := tr.AsksOnly(v4); got != 0 {
		t.Errorf("Expected the AAAA remembered for %v, got %d", Window, got)
	}
	now = now.Add(Window/2 + 2*time.Second)
	tr.Observe(v4, dns.TypeA)
	if got := tr.AsksOnly(v4); got != dns.TypeA {
		t.Errorf("Expected the client back to A alone once its AAAA is %v old, got %d", Window, got)
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
