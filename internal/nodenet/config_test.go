package nodenet

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigCheck(t *testing.T) {
	ok := Config{Addrs: []netip.Addr{netip.MustParseAddr("169.254.20.10")}, Port: 53, Interface: DefaultInterface}
	if err := ok.Check(); err != nil {
		t.Errorf("Expected a valid config, got %v", err)
	}
	for _, tc := range []struct {
		mutate func(*Config)
		want   string
	}{
		{func(c *Config) { c.Addrs = nil }, "no listen address"},
		{func(c *Config) { c.Addrs = append(c.Addrs, netip.MustParseAddr("224.0.0.1")) }, "want a unicast"},
		{func(c *Config) { c.Addrs = append(c.Addrs, netip.MustParseAddr("::")) }, "want a unicast"},
		{func(c *Config) { c.Addrs = append(c.Addrs, netip.MustParseAddr("fe80::1%eth0")) }, "want a unicast"},
		{func(c *Config) { c.Addrs = append(c.Addrs, c.Addrs[0]) }, "given twice"},
		{func(c *Config) { c.Port = 0 }, "no DNS port"},
		{func(c *Config) { c.HealthPort = 53 }, "is the DNS port"},
		{func(c *Config) { c.Interface = "" }, "interface"},
	} {
		c := ok
		c.Addrs = append([]netip.Addr(nil), ok.Addrs...)
		tc.mutate(&c)
		if err := c.Check(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Expected an error with %q for %+v, got %v", tc.want, c, err)
		}
	}
}

func TestSplit(t *testing.T) {
	v4, v6 := split([]netip.Addr{netip.MustParseAddr("10.96.0.10"), netip.MustParseAddr("::ffff:169.254.20.10"), netip.MustParseAddr("fd00::a")})
	if len(v4) != 2 || !v4[1].Is4() || len(v6) != 1 {
		t.Errorf("Expected two IPv4 addresses (one unmapped) and one IPv6, got %v %v", v4, v6)
	}
}
