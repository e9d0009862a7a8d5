package labtest

import (
	"fmt"
	"strings"
	"testing"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// nodeCorefile is raceguard on a node-local server, in the node's own namespace, as the
// hostNetwork DaemonSet of deploy/ runs it, with the pod watch that gives it the lab client's
// list. CONNTRACK is replaced by extra raceguard options.
const nodeCorefile = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    raceguard {
        node_search ` + lab.NodeDomain + `
        ` + lab.PodWatchOptions + `
        CONNTRACK
    }
    cache 30
    collapse
    file {{.ClusterZone}} cluster.local
    forward . {{.Upstream}}
}
`

// startNodeDNS starts raceguard in the lab's node namespace with the given extra options, the lab
// client a ClusterFirst pod of its pod watch, and waits for the watch.
func startNodeDNS(t *testing.T, l *lab.Lab, options string, wrap ...string) *lab.Process {
	t.Helper()
	if err := l.SetClientPod(lab.DefaultResolvConf()); err != nil {
		t.Fatal(err)
	}
	p, err := l.StartNodeDNS(strings.Replace(nodeCorefile, "CONNTRACK", options, 1), wrap...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	if err := l.WaitPodWatch(); err != nil {
		t.Fatal(err)
	}
	return p
}

func scrapeNode(t *testing.T, l *lab.Lab) lab.Metrics {
	t.Helper()
	m, err := l.ScrapeNode()
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// bucketDelta is how many observations of a histogram fell in (lo, hi] between two scrapes.
func bucketDelta(before, after lab.Metrics, name string, lo, hi string) float64 {
	count := func(m lab.Metrics, le string) float64 { return m.Sum(name+"_bucket", map[string]string{"le": le}) }
	return (count(after, hi) - count(after, lo)) - (count(before, hi) - count(before, lo))
}

// TestLateSiblingsLab: with the emulated pair drop, every dropped AAAA comes back as a late sibling,
// a resolver timeout later: in the 5 s bucket for glibc, the 2.5 s bucket for musl. Without the
// drop there are none.
func TestLateSiblingsLab(t *testing.T) {
	l := testenv.NewLab(t)
	startNodeDNS(t, l, "")
	rc := lab.DefaultResolvConf()
	const late = "coredns_raceguard_late_siblings_total"
	const gap = "coredns_raceguard_sibling_gap_seconds"

	names := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s%d.wild.example.com", prefix, i)
		}
		return out
	}
	// Without the fault: lookups, and no late sibling.
	before := scrapeNode(t, l)
	if _, err := l.Lookup(lab.Glibc, lab.Unspec, rc, 4, names("ok", 8)...); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Lookup(lab.Musl, lab.Unspec, rc, 4, names("okm", 8)...); err != nil {
		t.Fatal(err)
	}
	if got := scrapeNode(t, l).Sum(late, nil) - before.Sum(late, nil); got != 0 {
		t.Errorf("Expected no late sibling without the fault, got %v", got)
	}

	if err := l.SetFault(lab.FaultSecond, 100); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		libc   lab.Libc
		lo, hi string // the bucket its retry interval falls in
	}{{lab.Glibc, "4.5", "5.5"}, {lab.Musl, "2.4", "2.7"}} {
		t.Run(string(tc.libc), func(t *testing.T) {
			c0, err := l.Counters()
			if err != nil {
				t.Fatal(err)
			}
			before := scrapeNode(t, l)
			rs, err := l.Lookup(tc.libc, lab.Unspec, rc, 6, names("drop-"+string(tc.libc), 6)...)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				if r.String() != "203.0.113.77" {
					t.Errorf("%s: Expected the address after the retry, got %s", r.Name, r)
				}
			}
			c1, err := l.Counters()
			if err != nil {
				t.Fatal(err)
			}
			after := scrapeNode(t, l)
			drops := float64(c1.Sub(c0).FaultDrops)
			got := after.Sum(late, nil) - before.Sum(late, nil)
			if drops == 0 || got != drops {
				t.Errorf("Expected one late sibling per dropped packet: %v drops, %v late siblings", drops, got)
			}
			if in := bucketDelta(before, after, gap, tc.lo, tc.hi); in != drops {
				t.Errorf("Expected the %v gaps in the (%s s, %s s] bucket, got %v there", drops, tc.lo, tc.hi, in)
			}
			// Emulated drops happen in nft, not in conntrack: nothing coincides with a conntrack drop.
			if c := after.Sum("coredns_raceguard_late_siblings_with_conntrack_drops_total", nil); c != 0 {
				t.Errorf("Expected no late sibling coinciding with conntrack drops, got %v", c)
			}
		})
	}
}

// TestConntrackWithoutCapabilityLab: without CAP_NET_ADMIN raceguard keeps serving DNS, reads the
// counters from procfs instead of netlink, and says so once; with no conntrack statistics at all
// it still serves DNS and exports up 0.
func TestConntrackWithoutCapabilityLab(t *testing.T) {
	l := testenv.NewLab(t)
	p := startNodeDNS(t, l, "", "setpriv", "--inh-caps=-net_admin", "--bounding-set=-net_admin")
	rc := lab.DefaultResolvConf()
	if r := testenv.LookupOne(t, l, lab.Glibc, lab.Unspec, rc, "example.org"); r.String() != testenv.Joined("192.0.2.10", "2001:db8::10") {
		t.Errorf("Expected DNS served without CAP_NET_ADMIN, got %s", r)
	}
	m := scrapeNode(t, l)
	if up := m.Sum("coredns_raceguard_conntrack_up", map[string]string{"source": "procfs"}); up != 1 {
		t.Errorf("Expected conntrack_up{source=procfs} 1, got %v\n%v", up, m)
	}
	if !m.Has("coredns_raceguard_conntrack_drop_total") {
		t.Error("Expected the conntrack counters exported from procfs")
	}
	scrapeNode(t, l) // a second scrape must not log again
	if n := strings.Count(p.Log(), "netlink"); n != 1 {
		t.Errorf("Expected the fallback said once in the log, got %d times:\n%s", n, p.Log())
	}
	p.Stop()

	startNodeDNS(t, l, "conntrack procfs /nonexistent/nf_conntrack")
	if r := testenv.LookupOne(t, l, lab.Musl, lab.Unspec, rc, "web"); r.String() != testenv.Joined("10.96.12.34", "fd00:96::12:34") {
		t.Errorf("Expected DNS served without conntrack statistics, got %s", r)
	}
	if up := scrapeNode(t, l).Sum("coredns_raceguard_conntrack_up", map[string]string{"source": "procfs"}); up != 0 {
		t.Errorf("Expected conntrack_up 0 without statistics, got %v", up)
	}
}
