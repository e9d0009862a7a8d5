package labtest

import (
	"testing"
	"time"

	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestLabLookup checks the lab itself: real glibc and musl lookups through the DNAT'ed ClusterIP
// resolve cluster, cross-namespace and external names, and the emulated pair drop makes each
// client wait exactly its resolver's timeout.
func TestLabLookup(t *testing.T) {
	l := testenv.NewLab(t)
	testenv.StartDNS(t, l, lab.StockCorefile)
	rc := lab.DefaultResolvConf()

	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		for _, tc := range []struct{ name, want string }{
			{"kubernetes.default", "10.96.0.1"},
			{"web", testenv.Joined("10.96.12.34", "fd00:96::12:34")},
			{"api.shop", testenv.Joined("10.96.40.2", "fd00:96::40:2")},
			{"example.org", testenv.Joined("192.0.2.10", "2001:db8::10")},
			{"nosuch.example.org", "EAI_NONAME"},
		} {
			r := testenv.LookupOne(t, l, libc, lab.Unspec, rc, tc.name)
			if r.String() != tc.want {
				t.Errorf("%s %s: Expected %s, got %s", libc, tc.name, tc.want, r)
			}
			if r.Elapsed > 500*time.Millisecond {
				t.Errorf("%s %s: Expected a fast lookup without a fault, took %s", libc, tc.name, r.Elapsed)
			}
		}
	}

	// Drop the second packet of every flow: the AAAA of the parallel pair. glibc waits its 5 s
	// timeout and retries; musl retries after timeout/attempts = 2.5 s.
	if err := l.SetFault(lab.FaultSecond, 100); err != nil {
		t.Fatal(err)
	}
	before, _ := l.Counters()
	for _, tc := range []struct {
		libc     lab.Libc
		min, max time.Duration
	}{
		{lab.Glibc, 4900 * time.Millisecond, 6 * time.Second},
		{lab.Musl, 2400 * time.Millisecond, 3500 * time.Millisecond},
	} {
		r := testenv.LookupOne(t, l, tc.libc, lab.Unspec, rc, "web")
		if r.String() != testenv.Joined("10.96.12.34", "fd00:96::12:34") {
			t.Errorf("%s web with the fault on: Expected both addresses after the retry, got %s", tc.libc, r)
		}
		if r.Elapsed < tc.min || r.Elapsed > tc.max {
			t.Errorf("%s web with the fault on: Expected a stall of %s to %s, took %s", tc.libc, tc.min, tc.max, r.Elapsed)
		}
	}
	after, _ := l.Counters()
	if d := after.Sub(before); d.FaultDrops != 2 {
		t.Errorf("Expected the fault rule to drop 2 packets (one per lookup), dropped %d", d.FaultDrops)
	}

	if err := l.SetFault(lab.FaultOff, 0); err != nil {
		t.Fatal(err)
	}
	if r := testenv.LookupOne(t, l, lab.Glibc, lab.Unspec, rc, "web"); r.Elapsed > 500*time.Millisecond {
		t.Errorf("Expected no stall with the fault off, took %s", r.Elapsed)
	}
}
