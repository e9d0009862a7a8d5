package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/testenv"
)

// labdelay is a test-only plugin for upstream CoreDNS servers: it counts every query by name and
// type, then waits its delay before passing the query on.
//
//	labdelay NAME DURATION
type labdelay struct {
	Next  plugin.Handler
	delay time.Duration
	c     *queryCounter
}

type queryCounter struct {
	mu sync.Mutex
	n  map[string]int // protected by mu
}

func (c *queryCounter) count(name string, qtype uint16) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[strings.ToLower(name)+"/"+dns.TypeToString[qtype]]
}

var (
	countersMu sync.Mutex
	counters   = map[string]*queryCounter{}
)

// upstreamCounter returns the counter a labdelay plugin named name writes to.
func upstreamCounter(name string) *queryCounter {
	countersMu.Lock()
	defer countersMu.Unlock()
	if counters[name] == nil {
		counters[name] = &queryCounter{n: map[string]int{}}
	}
	return counters[name]
}

func (l labdelay) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if len(r.Question) == 1 {
		l.c.mu.Lock()
		l.c.n[strings.ToLower(r.Question[0].Name)+"/"+dns.TypeToString[r.Question[0].Qtype]]++
		l.c.mu.Unlock()
	}
	select {
	case <-time.After(l.delay):
	case <-ctx.Done():
		return dns.RcodeServerFailure, ctx.Err()
	}
	return plugin.NextOrFailure("labdelay", l.Next, ctx, w, r)
}

func (labdelay) Name() string { return "labdelay" }

func init() {
	plugin.Register("labdelay", func(c *caddy.Controller) error {
		c.Next()
		var name, d string
		if !c.Args(&name, &d) {
			return plugin.Error("labdelay", c.ArgErr())
		}
		delay, err := time.ParseDuration(d)
		if err != nil {
			return plugin.Error("labdelay", err)
		}
		l := labdelay{delay: delay, c: upstreamCounter(name)}
		dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler { l.Next = next; return l })
		return nil
	})
	for i, d := range dnsserver.Directives {
		if d == "file" {
			dnsserver.Directives = append(dnsserver.Directives[:i], append([]string{"labdelay"}, dnsserver.Directives[i:]...)...)
			break
		}
	}
}

// upstreamCoreDNS starts an in-process CoreDNS serving the lab's external zone with the file
// plugin, counting and delaying every query, and returns its address and counter.
func upstreamCoreDNS(t *testing.T, delay time.Duration) (string, *queryCounter) {
	t.Helper()
	body := testenv.ReadRepoFile(t, "test/lab/external.db")
	zone := filepath.Join(t.TempDir(), "external.db")
	if err := os.WriteFile(zone, body, 0o644); err != nil {
		t.Fatal(err)
	}
	name := t.Name()
	i, udp, _, err := testenv.CoreDNSServerAndPorts(`.:0 {
    labdelay ` + strings.ReplaceAll(name, "/", "_") + ` ` + delay.String() + `
    file ` + zone + ` .
}`)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { testenv.Stop(i) })
	return udp, upstreamCounter(strings.ReplaceAll(name, "/", "_"))
}
