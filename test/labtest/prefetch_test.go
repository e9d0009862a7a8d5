package labtest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestSiblingPrefetchLab: a glibc client in single-request-reopen mode asks A, waits for it, then
// asks AAAA from a new socket. Against a 50 ms upstream that costs two round trips with stock
// CoreDNS, and about one with raceguard, which resolves the AAAA while the A is out, when the
// AAAA reaches the server that prefetched it: always for a node-local server, which is what this
// test sets up. (Behind a random DNAT to N replicas, the new socket is a new flow that reaches
// another replica (N-1)/N of the time; the README says so.)
func TestSiblingPrefetchLab(t *testing.T) {
	l := testenv.NewLab(t)
	if err := l.SetBackends(1); err != nil {
		t.Fatal(err)
	}
	const delay = 50 * time.Millisecond
	rc := lab.DefaultResolvConf().WithOptions("single-request-reopen")

	median := func(corefile string, round int) time.Duration {
		t.Helper()
		testenv.StartDNS(t, l, corefile)
		l.Up.SetDelay(delay)
		defer l.Up.SetDelay(0)
		// Absolute names, never asked before: no search walk and no cache hit.
		names := make([]string, 15)
		for i := range names {
			names[i] = fmt.Sprintf("sr%dn%d.wild.example.com.", round, i)
		}
		rs, err := l.Lookup(lab.Glibc, lab.Unspec, rc, 3, names...)
		if err != nil {
			t.Fatal(err)
		}
		var times []time.Duration
		for _, r := range rs {
			if r.String() != "203.0.113.77" {
				t.Errorf("%s: Expected 203.0.113.77, got %s", r.Name, r)
			}
			times = append(times, r.Elapsed)
		}
		slices.Sort(times)
		return times[len(times)/2]
	}
	stock := median(lab.StockCorefile, 1)
	rg := median(lab.RaceguardCorefile, 2)
	t.Logf("single-request-reopen lookup, %s upstream: median %s stock, %s raceguard", delay, stock, rg)
	if stock < 2*delay {
		t.Errorf("Expected stock CoreDNS to take two upstream round trips (>= %s), took %s", 2*delay, stock)
	}
	if rg >= delay+delay/2 {
		t.Errorf("Expected raceguard to take about one upstream round trip (< %s), took %s", delay+delay/2, rg)
	}
}
