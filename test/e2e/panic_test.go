package e2e

import (
	"context"
	"slices"
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

// panicky is a test directive, spliced in just after collapse: it panics on the name its
// Corefile line gives, after a moment in which identical queries join the collapse flight, as a
// kubernetes or forward bug on a cache miss would; other names go on down the chain.
type panicky struct {
	Next plugin.Handler
	name string
}

func (p panicky) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if strings.EqualFold(r.Question[0].Name, p.name) {
		time.Sleep(50 * time.Millisecond)
		panic("panicky: " + p.name)
	}
	return plugin.NextOrFailure(p.Name(), p.Next, ctx, w, r)
}

func (panicky) Name() string { return "panicky" }

func init() {
	plugin.Register("panicky", func(c *caddy.Controller) error {
		c.Next()
		var p panicky
		if !c.Args(&p.name) {
			return c.ArgErr()
		}
		p.name = dns.Fqdn(p.name)
		dnsserver.GetConfig(c).AddPlugin(func(next plugin.Handler) plugin.Handler { p.Next = next; return p })
		return nil
	})
}

// TestPanicBelowCollapse: a plugin below collapse panics on a cache miss. collapse resolves the
// miss in a goroutine of its own, where dnsserver's recover does not reach; the server must answer
// every query of the flight SERVFAIL, with its own ID and question, and go on serving, as stock
// CoreDNS does for the one query whose chain panicked. The A's sibling prefetch (the AAAA) panics
// too, in a goroutine of raceguard's.
func TestPanicBelowCollapse(t *testing.T) {
	// The test directive's slot, for this server only (no e2e test runs in parallel).
	directives := dnsserver.Directives
	dnsserver.Directives = slices.Insert(slices.Clone(directives), slices.Index(directives, "collapse")+1, "panicky")
	i, udp, _, err := testenv.CoreDNSServerAndPorts(`example.org:0 {
		raceguard {
			conntrack off
		}
		cache
		collapse
		panicky boom.example.org
		whoami
	}`)
	dnsserver.Directives = directives
	if err != nil {
		t.Fatalf("Could not start CoreDNS: %v", err)
	}
	defer testenv.Stop(i)

	const n = 8
	var wg sync.WaitGroup
	replies := make([]*dns.Msg, n)
	queries := make([]*dns.Msg, n)
	errs := make([]error, n)
	for k := range n {
		queries[k] = new(dns.Msg).SetQuestion("BooM.example.org.", dns.TypeA)
		wg.Add(1)
		go func() {
			defer wg.Done()
			replies[k], errs[k] = dns.Exchange(queries[k], udp)
		}()
	}
	wg.Wait()
	for k := range n {
		switch r := replies[k]; {
		case errs[k] != nil:
			t.Errorf("Query %d: Expected SERVFAIL, got %v", k, errs[k])
		case r.Rcode != dns.RcodeServerFailure || r.Id != queries[k].Id || r.Question[0] != queries[k].Question[0]:
			t.Errorf("Query %d: Expected SERVFAIL echoing ID %d and %v, got %v", k, queries[k].Id, queries[k].Question[0], r)
		}
	}
	// The server lives: another name is answered.
	r, err := dns.Exchange(new(dns.Msg).SetQuestion("fine.example.org.", dns.TypeA), udp)
	if err != nil || r.Rcode != dns.RcodeSuccess {
		t.Fatalf("Expected the server to go on answering, got %v, %v", r, err)
	}
}
