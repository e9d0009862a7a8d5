package collapse

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/coredns/coredns/plugin/metrics/vars"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestPanicBelow: a plugin below collapse that panics on a cache miss (as kubernetes or forward
// have) fails the flight's queries with SERVFAIL, the leader's and every waiter's, where without
// collapse dnsserver would have recovered it for the one query; the process lives on, the panic is
// counted, and the waiters do not try again (a panic is no upstream failure a retry could mend).
func TestPanicBelow(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	c := New()
	c.Zones = []string{"."}
	c.Next = test.HandlerFunc(func(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
		if calls.Add(1) == 1 {
			close(entered)
		}
		<-release
		panic("boom on " + r.Question[0].Name)
	})
	c.Start()
	t.Cleanup(c.Stop)

	panicsBefore := testutil.ToFloat64(vars.Panic)
	const n = 5
	recs := make([]*dnstest.Recorder, n)
	rcodes := make([]int, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		recs[i] = dnstest.NewRecorder(udpClient(i))
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := new(dns.Msg).SetQuestion("boom.example.org.", dns.TypeA)
			rcodes[i], errs[i] = c.ServeDNS(context.Background(), recs[i], r)
		}()
		if i == 0 {
			<-entered
		}
	}
	waitFlightWaiters(t, c, n-1)
	close(release)
	wg.Wait()

	for i := range n {
		if rcodes[i] != dns.RcodeServerFailure || errs[i] == nil || recs[i].Msg != nil {
			t.Errorf("Query %d: Expected SERVFAIL left to the server to write, with an error, got rcode %d, error %v, written %v", i, rcodes[i], errs[i], recs[i].Msg)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("Expected one resolution (no retry after a panic), got %d", got)
	}
	if got := testutil.ToFloat64(vars.Panic) - panicsBefore; got != 1 {
		t.Errorf("Expected coredns_panics_total up by 1, got %v", got)
	}
	if n := c.group.flights.Len(); n != 0 {
		t.Errorf("Expected the panicked flight gone from the table, got %d flights", n)
	}
}
