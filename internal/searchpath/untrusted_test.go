package searchpath

import (
	"context"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/testkit"
)

func TestWalkPassesOnceTrustedNamesAreNX(t *testing.T) {
	// The inferred list is trusted in the namespace's own hierarchy only, which this server
	// answers at once; the node domain and the name itself go to an upstream that has not
	// answered yet (held). Once the trusted names are NXDOMAIN, the client walks on itself
	// whatever the rest answers: it must get its first try's own NXDOMAIN then, not when the
	// upstream answers or the deadline passes, or, with its later tries sent to another replica,
	// its lookup takes longer than without raceguard. The names the walk started still answer
	// its later tries.
	z := newZone("example.org. 300 IN A 192.0.2.10", "example.org. 300 IN AAAA 2001:db8::10")
	wk := newWalker(t, z) // on a fake clock: the deadline never passes here
	upstream := []string{"example.org.lab.internal.", "example.org."}
	z.hold(upstream...)

	const q = "example.org.default.svc.cluster.local."
	r := new(dns.Msg).SetQuestion(q, dns.TypeA)
	r.SetEdns0(1232, false)
	rec := dnstest.NewRecorder(&test.ResponseWriter{})
	walk, _ := Expand(q, podList)
	walk.Trusted, walk.Verify = walk.Local, false // as Infer plans it, without the namespace check
	got := make(chan struct{})
	go func() {
		completeWalk(context.Background(), wk, rec, r, walk)
		close(got)
	}()
	select {
	case <-got:
	case <-time.After(testkit.WaitTimeout):
		t.Fatal("Expected the first try's own answer while the upstream names are still out")
	}
	if rec.Msg == nil || rec.Msg.Rcode != dns.RcodeNameError {
		t.Fatalf("Expected the first try's own NXDOMAIN, got %v", rec.Msg)
	}

	// The client walks on: the node domain's NXDOMAIN comes from what the walk started, without a
	// trip of its own. (The name's answer comes from the cache the walk's query went through,
	// which this chain has not.)
	z.waitEntered(t, "example.org.lab.internal./A")
	z.release(upstream...)
	if m, _, _ := ask(t, wk, "example.org.lab.internal.", dns.TypeA, 2); m == nil || m.Rcode != dns.RcodeNameError {
		t.Errorf("Expected NXDOMAIN for the client's try of the node domain, got %v", m)
	}
	if n := z.count("example.org.lab.internal.", dns.TypeA); n != 1 {
		t.Errorf("Expected example.org.lab.internal. A asked once, by the walk, got %d", n)
	}
}
