package labtest

import (
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestSingleFamilyClientAsksBothLab: a pod that has asked A alone is walked for A alone, as its own
// resolver walks. When a process in it asks both types after all (kubectl exec curl in a Go or
// Java pod), its first such lookup ends with the addresses it ends with against stock CoreDNS:
// glibc in parallel and with single-request, and musl, for a name with both types, and one with
// AAAA alone. (Once it asked AAAA the pod is walked for both, for family.Window: each case needs a
// server of its own.)
func TestSingleFamilyClientAsksBothLab(t *testing.T) {
	l := testenv.NewLab(t)
	cases := []struct {
		libc       lab.Libc
		rc         lab.ResolvConf
		name       string
		sequential bool
	}{
		{lab.Glibc, lab.DefaultResolvConf(), "www.example.org", false},
		{lab.Glibc, lab.DefaultResolvConf().WithOptions("single-request"), "v6only.example.net", true},
		{lab.Glibc, lab.DefaultResolvConf().WithOptions("single-request"), "www.example.org", true},
		{lab.Musl, lab.DefaultResolvConf(), "hop2.example.net", false},
	}
	testenv.StartDNS(t, l, lab.StockCorefile)
	want := make([]string, len(cases))
	for i, c := range cases {
		want[i] = testenv.LookupOne(t, l, c.libc, lab.Unspec, c.rc, c.name).String()
	}
	for i, c := range cases {
		p := startNodeDNS(t, l, "conntrack off")
		l.Up.Reset()
		got := testenv.LookupOne(t, l, c.libc, lab.Unspec, c.rc, c.name).String()
		if got != want[i] {
			t.Errorf("%s %s %v: Expected %q as against stock, got %q", c.libc, c.name, c.rc.Options, want[i], got)
		}
		// With single-request the AAAA comes after the A's answer: the walk was for A alone, so
		// no AAAA of the node domain's name went upstream, from the walk or (stopped by the
		// completion) from the client. (A pair sent at once may be walked for both: the AAAA can
		// reach the server before the A's walk begins.)
		if c.sequential {
			if n := l.Up.Queries(c.name+"."+lab.NodeDomain, 0x1c); n != 0 {
				t.Errorf("%s %s: Expected no AAAA of %s.%s upstream (a walk for A alone), got %d", c.libc, c.name, c.name, lab.NodeDomain, n)
			}
		}
		p.Stop()
	}
}
