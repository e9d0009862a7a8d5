package raceguard

import (
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
)

// started returns the raceguard of corefile's raceguard block (zones ".") in front of next,
// started as setup wires and starts it, with a server block that has no other plugin; it is shut
// down when the test ends.
func started(tb testing.TB, corefile string, next plugin.Handler) *RaceGuard {
	tb.Helper()
	c := caddy.NewTestController("dns", corefile)
	c.ServerBlockKeys = []string{".:53"}
	rg, err := parse(c)
	if err != nil {
		tb.Fatal(err)
	}
	rg.Next = next
	if err := rg.OnStartup(partners{}); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { rg.OnShutdown() })
	return rg
}
