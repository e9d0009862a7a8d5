package searchpath

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// slowBeyond is a chain whose own zone (names under local) answers at once and whose upstream
// (every other name) answers after delay: a cluster Deployment's CoreDNS with a slow upstream.
type slowBeyond struct {
	next  plugin.Handler
	local string
	delay time.Duration
}

func (s slowBeyond) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	if !strings.HasSuffix(strings.ToLower(r.Question[0].Name), s.local) {
		time.Sleep(s.delay)
	}
	return s.next.ServeDNS(ctx, w, r)
}

func (s slowBeyond) Name() string { return "slowbeyond" }

func TestWalkPassesOnceTrustedNamesAreNX(t *testing.T) {
	// The inferred list is trusted in the namespace's own hierarchy only, which this server
	// answers at once; the node domain and the name itself go to a slow upstream. Once the
	// trusted names are NXDOMAIN, the client walks on itself whatever the rest answers: it must
	// get its first try's own NXDOMAIN then, not when the upstream answers or the deadline
	// passes, or, with its later tries sent to another replica, its lookup takes longer than
	// without raceguard. The names the walk started still answer its later tries.
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	const delay = 400 * time.Millisecond
	wk := New(Fixed(podList), slowBeyond{next: z, local: "cluster.local.", delay: delay}, DefaultMaxWalks, 1000, 1000)
	t.Cleanup(wk.Close)
	if wk.Deadline >= delay {
		t.Fatalf("Expected the default deadline (%s) below the upstream's delay (%s)", wk.Deadline, delay)
	}

	const q = "example.org.default.svc.cluster.local."
	r := new(dns.Msg).SetQuestion(q, dns.TypeA)
	r.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	walk, _ := Expand(q, podList)
	walk.Trusted, walk.Verify = walk.Local, false // as Infer plans it, without the namespace check
	start := time.Now()
	completeWalk(context.Background(), wk, rec, r, walk)
	if d := time.Since(start); rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError || d > wk.Deadline/2 {
		t.Fatalf("Expected the first try's own NXDOMAIN as soon as the trusted names are NXDOMAIN (well within %s), got %v after %s", wk.Deadline/2, rec.Msg, d)
	}

	// The client walks on: the node domain's NXDOMAIN comes from what the walk started, one
	// upstream round trip after the first try, without a trip of its own. (The name's answer
	// comes from the cache the walk's query went through, which this chain has not.)
	if m, _, _ := ask(t, wk, "example.org.lab.internal.", dns.TypeA, 2); m == nil || m.Rcode != dns.RcodeNameError {
		t.Errorf("Expected NXDOMAIN for the client's try of the node domain, got %v", m)
	}
	if d := time.Since(start); d > delay+delay/2 {
		t.Errorf("Expected the node domain's answer one upstream round trip (%s) after the first try, took %s", delay, d)
	}
	if n := z.count("example.org.lab.internal.", dns.TypeA); n != 1 {
		t.Errorf("Expected example.org.lab.internal. A asked once, by the walk, got %d", n)
	}
}
