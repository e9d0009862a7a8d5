package labtest

import (
	"testing"
	"time"

	"github.com/raceguard/raceguard/internal/family"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestSingleFamilyClientAsksBothLab: a pod that has asked A alone for longer than family.Settle is
// walked for A alone, as its own resolver walks. When a process in it asks both types after all
// (kubectl exec curl in a Go or Java pod), its first such lookup ends with the addresses it ends
// with against stock CoreDNS: glibc in parallel and with single-request, and musl, for a name with
// both types, and one with AAAA alone. (Once it asked AAAA the pod is walked for both again, for
// family.Window: each case needs a server of its own.)
func TestSingleFamilyClientAsksBothLab(t *testing.T) {
	l := testenv.NewLab(t)
	cases := []struct {
		libc lab.Libc
		rc   lab.ResolvConf
		name string
	}{
		{lab.Glibc, lab.DefaultResolvConf(), "www.example.org"},
		{lab.Glibc, lab.DefaultResolvConf().WithOptions("single-request"), "v6only.example.net"},
		{lab.Musl, lab.DefaultResolvConf(), "hop2.example.net"},
	}
	testenv.StartDNS(t, l, lab.StockCorefile)
	want := make([]string, len(cases))
	for i, c := range cases {
		want[i] = testenv.LookupOne(t, l, c.libc, lab.Unspec, c.rc, c.name).String()
	}
	for i, c := range cases {
		p := startNodeDNS(t, l, "conntrack off")
		// The client's list, learned from a lookup that walks to its end, and A alone for long
		// enough to be known for it: other names, so that nothing below is cached or decided.
		for deadline := time.Now().Add(family.Settle + 2*time.Second); time.Now().Before(deadline); {
			if _, err := l.Lookup(lab.Glibc, lab.Inet, lab.DefaultResolvConf(), 1, "learn.nosuch.example", "kubernetes.default"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(500 * time.Millisecond)
		}
		l.Up.Reset()
		got := testenv.LookupOne(t, l, c.libc, lab.Unspec, c.rc, c.name).String()
		if got != want[i] {
			t.Errorf("%s %s %v: Expected %q as against stock, got %q", c.libc, c.name, c.rc.Options, want[i], got)
		}
		// Walked for A alone: no AAAA of the node domain's name went upstream, from the walk or
		// (stopped by the completion) from the client.
		if n := l.Up.Queries(c.name+"."+lab.NodeDomain, 0x1c); n != 0 {
			t.Errorf("%s %s: Expected no AAAA of %s.%s upstream (a walk for A alone), got %d", c.libc, c.name, c.name, lab.NodeDomain, n)
		}
		p.Stop()
	}
}
