package localaddr

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"
)

func TestSet(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	addrs := []net.Addr{
		&net.IPNet{IP: net.ParseIP("127.0.0.1"), Mask: net.CIDRMask(8, 32)},
		&net.IPNet{IP: net.ParseIP("10.32.0.1"), Mask: net.CIDRMask(24, 32)},
		&net.IPNet{IP: net.ParseIP("169.254.20.10"), Mask: net.CIDRMask(32, 32)},
		&net.IPNet{IP: net.ParseIP("fd00::1"), Mask: net.CIDRMask(64, 128)},
	}
	var fail error
	reads := 0
	s := &Set{now: func() time.Time { return now }, list: func() ([]net.Addr, error) { reads++; return addrs, fail }}
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"10.32.0.1", true}, {"169.254.20.10", true}, {"fd00::1", true}, {"::ffff:10.32.0.1", true},
		{"10.32.0.2", false}, {"127.0.0.1", false}, {"::1", false},
	} {
		if got := s.Has(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Has(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if reads != 1 {
		t.Errorf("Expected one read of the addresses, got %d", reads)
	}
	// A new address is seen once the set is older than Refresh; a failed read keeps the last.
	addrs = append(addrs, &net.IPNet{IP: net.ParseIP("10.96.0.10"), Mask: net.CIDRMask(32, 32)})
	if s.Has(netip.MustParseAddr("10.96.0.10")) {
		t.Error("Expected the set read again only after Refresh")
	}
	now = now.Add(Refresh + time.Second)
	if !s.Has(netip.MustParseAddr("10.96.0.10")) {
		t.Error("Expected the new address after Refresh")
	}
	fail = errors.New("no netlink")
	now = now.Add(Refresh + time.Second)
	if !s.Has(netip.MustParseAddr("10.32.0.1")) {
		t.Error("Expected the last set kept when a read fails")
	}
}
