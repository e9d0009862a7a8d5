package collapse

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// upstream is a next plugin that holds every query until released and counts them.
type upstream struct {
	gate     chan struct{} // closed to release
	calls    atomic.Int32
	mu       sync.Mutex
	byKey    map[string]int
	answer   func(r *dns.Msg) *dns.Msg // nil: an A record for the name; returns nil to write nothing
	entered  chan struct{}             // receives once per call, when non-nil
	truncate bool
}

func newUpstream() *upstream {
	return &upstream{gate: make(chan struct{}), byKey: map[string]int{}}
}

func (u *upstream) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	u.calls.Add(1)
	u.mu.Lock()
	u.byKey[strings.ToLower(r.Question[0].Name)+"/"+dns.TypeToString[r.Question[0].Qtype]]++
	u.mu.Unlock()
	if u.entered != nil {
		u.entered <- struct{}{}
	}
	select {
	case <-u.gate:
	case <-ctx.Done():
		return dns.RcodeServerFailure, ctx.Err()
	}
	var m *dns.Msg
	if u.answer != nil {
		m = u.answer(r)
	} else {
		m = new(dns.Msg)
		m.SetReply(r)
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.IPv4(192, 0, 2, 1)}}
		m.Truncated = u.truncate
	}
	if m == nil {
		return dns.RcodeServerFailure, fmt.Errorf("upstream failed")
	}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (u *upstream) Name() string { return "upstream" }

// client is a ResponseWriter for a client at addr.
type client struct {
	test.ResponseWriter
	addr net.Addr
}

func (c *client) RemoteAddr() net.Addr { return c.addr }

func udpClient(i int) *client {
	return &client{addr: &net.UDPAddr{IP: net.IPv4(10, 0, byte(i>>8), byte(i)), Port: 40000 + i}}
}

func newCollapse(t *testing.T, u *upstream) *Collapse {
	c := New()
	c.Next = u
	c.Zones = []string{"."}
	c.Start()
	t.Cleanup(c.Stop)
	return c
}

// flipCase returns name with the case of its letters chosen by the bits of i, as 0x20 does.
func flipCase(name string, i int) string {
	b := []byte(name)
	for j := range b {
		if b[j] >= 'a' && b[j] <= 'z' && (i>>(j%16))&1 == 1 {
			b[j] -= 'a' - 'A'
		}
	}
	return string(b)
}

func TestDupSuppress(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 1)
	c := newCollapse(t, u)
	const n = 50

	var wg sync.WaitGroup
	recs := make([]*dnstest.Recorder, n)
	reqs := make([]*dns.Msg, n)
	for i := range n {
		reqs[i] = new(dns.Msg).SetQuestion(flipCase("www.example.org.", i), dns.TypeA)
		reqs[i].Id = uint16(1000 + i)
		recs[i] = dnstest.NewRecorder(udpClient(i))
	}
	// The leader first, held at the upstream; then everyone else is collapsed into it.
	wg.Add(1)
	go func() { defer wg.Done(); c.ServeDNS(context.Background(), recs[0], reqs[0]) }()
	<-u.entered
	before := testutil.ToFloat64(collapsed.WithLabelValues("", "A"))
	for i := 1; i < n; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); c.ServeDNS(context.Background(), recs[i], reqs[i]) }()
	}
	waitFlightWaiters(t, c, n-1)
	close(u.gate)
	wg.Wait()
	if got := testutil.ToFloat64(collapsed.WithLabelValues("", "A")) - before; got != n-1 {
		t.Errorf("Expected %d queries counted as collapsed, got %v", n-1, got)
	}

	if got := u.calls.Load(); got != 1 {
		t.Errorf("Expected exactly one upstream call, got %d", got)
	}
	for i, rec := range recs {
		m := rec.Msg
		if m == nil {
			t.Fatalf("Query %d: Expected a reply, got none", i)
		}
		if m.Id != reqs[i].Id || m.Question[0].Name != reqs[i].Question[0].Name {
			t.Errorf("Query %d: Expected ID %d and question %q, got %d and %q", i, reqs[i].Id, reqs[i].Question[0].Name, m.Id, m.Question[0].Name)
		}
		if len(m.Answer) != 1 {
			t.Errorf("Query %d: Expected the answer, got %v", i, m.Answer)
		}
	}
	// Every waiter got its own copy.
	recs[1].Msg.Answer[0].Header().Ttl = 1
	if recs[2].Msg.Answer[0].Header().Ttl != 60 {
		t.Error("Expected each waiter to get a deep copy")
	}
	if c.group.flights.Len() != 0 {
		t.Errorf("Expected nothing kept once the resolution ended, got %d flights", c.group.flights.Len())
	}
}

// keyVariant changes one element of the key.
type keyVariant struct {
	name string
	edit func(r *dns.Msg, w *client)
}

func TestKeyElements(t *testing.T) {
	for _, v := range []keyVariant{
		{"qtype", func(r *dns.Msg, _ *client) { r.Question[0].Qtype = dns.TypeAAAA }},
		{"qclass", func(r *dns.Msg, _ *client) { r.Question[0].Qclass = dns.ClassCHAOS }},
		{"name", func(r *dns.Msg, _ *client) { r.Question[0].Name = "other.example.org." }},
		{"DO", func(r *dns.Msg, _ *client) { r.SetEdns0(1232, true) }},
		{"CD", func(r *dns.Msg, _ *client) { r.CheckingDisabled = true }},
		{"RD", func(r *dns.Msg, _ *client) { r.RecursionDesired = false }},
		{"size class", func(r *dns.Msg, _ *client) { r.SetEdns0(4096, false) }},
		{"no EDNS", func(r *dns.Msg, _ *client) { r.Extra = nil }},
		{"transport", func(_ *dns.Msg, w *client) { w.addr = &net.TCPAddr{IP: net.IPv4(10, 9, 9, 9), Port: 5353} }},
	} {
		t.Run(v.name, func(t *testing.T) {
			u := newUpstream()
			u.entered = make(chan struct{}, 2)
			c := newCollapse(t, u)
			base := func() *dns.Msg {
				r := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
				r.SetEdns0(1232, false)
				return r
			}
			r1, r2 := base(), base()
			w1, w2 := udpClient(1), udpClient(2)
			v.edit(r2, w2)
			var wg sync.WaitGroup
			for _, q := range []struct {
				r *dns.Msg
				w *client
			}{{r1, w1}, {r2, w2}} {
				wg.Add(1)
				go func() { defer wg.Done(); c.ServeDNS(context.Background(), dnstest.NewRecorder(q.w), q.r) }()
			}
			entered := waitEntered(u, 2)
			close(u.gate)
			wg.Wait()
			if got := u.calls.Load(); !entered || got != 2 {
				t.Errorf("Expected queries differing in %s to be resolved apart, got %d upstream calls", v.name, got)
			}
		})
	}
	// And the same query in other case joins: one key.
	u := newUpstream()
	u.entered = make(chan struct{}, 2)
	c := newCollapse(t, u)
	var wg sync.WaitGroup
	for i, name := range []string{"www.example.org.", "WwW.ExAmPlE.OrG."} {
		r := new(dns.Msg).SetQuestion(name, dns.TypeA)
		wg.Add(1)
		go func() { defer wg.Done(); c.ServeDNS(context.Background(), dnstest.NewRecorder(udpClient(i)), r) }()
		if i == 0 {
			<-u.entered
		}
	}
	waitFlightWaiters(t, c, 1)
	close(u.gate)
	wg.Wait()
	if got := u.calls.Load(); got != 1 {
		t.Errorf("Expected names differing only in case to share a resolution, got %d calls", got)
	}
}

// waitEntered waits up to 2 s for n calls to reach the upstream.
func waitEntered(u *upstream, n int) bool {
	timeout := time.After(2 * time.Second)
	for range n {
		select {
		case <-u.entered:
		case <-timeout:
			return false
		}
	}
	return true
}

// waitFlightWaiters waits until some flight of c has n waiters.
func waitFlightWaiters(t *testing.T, c *Collapse, n int) {
	t.Helper()
	testkit.Eventually(t, fmt.Sprintf("a flight with %d waiters", n), func() bool {
		found := false
		c.group.flights.Range(func(_ key, f *flight) {
			if f.waiters >= n {
				found = true
			}
		})
		return found
	})
}

func TestNeverCollapsed(t *testing.T) {
	ecs := func() *dns.Msg {
		r := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
		r.SetEdns0(1232, false)
		o := r.IsEdns0()
		o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(198, 51, 100, 0).To4()})
		return r
	}
	notify := func() *dns.Msg {
		r := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeSOA)
		r.Opcode = dns.OpcodeNotify
		return r
	}
	for name, mk := range map[string]func() *dns.Msg{"ECS": ecs, "NOTIFY": notify} {
		t.Run(name, func(t *testing.T) {
			u := newUpstream()
			u.entered = make(chan struct{}, 2)
			c := newCollapse(t, u)
			var wg sync.WaitGroup
			for i := range 2 {
				wg.Add(1)
				go func() { defer wg.Done(); c.ServeDNS(context.Background(), dnstest.NewRecorder(udpClient(i)), mk()) }()
			}
			entered := waitEntered(u, 2)
			close(u.gate)
			wg.Wait()
			if got := u.calls.Load(); !entered || got != 2 {
				t.Errorf("Expected %s queries never collapsed, got %d upstream calls", name, got)
			}
		})
	}
}

func TestWaiterCancelled(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 1)
	c := newCollapse(t, u)
	r := func() *dns.Msg { return new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA) }

	var wg sync.WaitGroup
	leader := dnstest.NewRecorder(udpClient(0))
	wg.Add(1)
	go func() { defer wg.Done(); c.ServeDNS(context.Background(), leader, r()) }()
	<-u.entered

	// A waiter whose deadline passes gives up alone.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	before := testutil.ToFloat64(waiterTimeouts.WithLabelValues(""))
	if _, err := c.ServeDNS(ctx, dnstest.NewRecorder(udpClient(1)), r()); err == nil {
		t.Error("Expected the waiter to stop at its deadline")
	}
	if got := testutil.ToFloat64(waiterTimeouts.WithLabelValues("")) - before; got != 1 {
		t.Errorf("Expected one waiter timeout counted, got %v", got)
	}
	other := dnstest.NewRecorder(udpClient(2))
	wg.Add(1)
	go func() { defer wg.Done(); c.ServeDNS(context.Background(), other, r()) }()
	waitFlightWaiters(t, c, 2)
	close(u.gate)
	wg.Wait()
	if leader.Msg == nil || other.Msg == nil || len(other.Msg.Answer) != 1 {
		t.Errorf("Expected the leader and the other waiter answered, got %v and %v", leader.Msg, other.Msg)
	}
}

func TestLeaderCancelled(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 1)
	c := newCollapse(t, u)
	r := func() *dns.Msg { return new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA) }

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { _, err := c.ServeDNS(ctx, dnstest.NewRecorder(udpClient(0)), r()); done <- err }()
	<-u.entered
	waiter := dnstest.NewRecorder(udpClient(1))
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); c.ServeDNS(context.Background(), waiter, r()) }()
	waitFlightWaiters(t, c, 1)
	cancel()
	if err := <-done; err == nil {
		t.Error("Expected the leader to return at its own cancellation")
	}
	close(u.gate) // the resolution, detached from the leader, still completes for the waiter
	wg.Wait()
	if waiter.Msg == nil || len(waiter.Msg.Answer) != 1 {
		t.Errorf("Expected the waiter answered after the leader left, got %v", waiter.Msg)
	}
}

func TestLeaderFails(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 10)
	first := true
	var mu sync.Mutex
	u.answer = func(r *dns.Msg) *dns.Msg {
		mu.Lock()
		defer mu.Unlock()
		if first { // the leader's resolution writes nothing
			first = false
			return nil
		}
		m := new(dns.Msg)
		m.SetReply(r)
		return m
	}
	c := newCollapse(t, u)
	r := func() *dns.Msg { return new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA) }
	var wg sync.WaitGroup
	recs := []*dnstest.Recorder{dnstest.NewRecorder(udpClient(0)), dnstest.NewRecorder(udpClient(1)), dnstest.NewRecorder(udpClient(2))}
	rcodes := make([]int, 3)
	for i := range recs {
		wg.Add(1)
		go func() { defer wg.Done(); rcodes[i], _ = c.ServeDNS(context.Background(), recs[i], r()) }()
		if i == 0 {
			<-u.entered
		}
	}
	waitFlightWaiters(t, c, 2)
	close(u.gate)
	wg.Wait()
	if recs[0].Msg != nil || rcodes[0] != dns.RcodeServerFailure {
		t.Errorf("Expected the leader's failure returned unwritten, got %v, %d", recs[0].Msg, rcodes[0])
	}
	// The two waiters retried together, as one new flight, which succeeded: two calls, not three.
	if recs[1].Msg == nil || recs[2].Msg == nil || u.calls.Load() != 2 {
		t.Errorf("Expected the waiters to retry as one flight, got %v, %v after %d calls", recs[1].Msg, recs[2].Msg, u.calls.Load())
	}
}

func TestFailsTwice(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 100)
	u.answer = func(*dns.Msg) *dns.Msg { return nil } // every resolution fails without a reply
	c := newCollapse(t, u)
	r := func() *dns.Msg { return new(dns.Msg).SetQuestion("dead.example.org.", dns.TypeA) }
	var wg sync.WaitGroup
	const n = 10
	recs := make([]*dnstest.Recorder, n)
	rcodes := make([]int, n)
	for i := range n {
		recs[i] = dnstest.NewRecorder(udpClient(i))
		wg.Add(1)
		go func() { defer wg.Done(); rcodes[i], _ = c.ServeDNS(context.Background(), recs[i], r()) }()
		if i == 0 {
			<-u.entered
		}
	}
	waitFlightWaiters(t, c, n-1)
	close(u.gate)
	wg.Wait()
	for i := range n {
		if recs[i].Msg != nil || rcodes[i] != dns.RcodeServerFailure {
			t.Errorf("Query %d: Expected SERVFAIL left for the server to write, got %v, %d", i, recs[i].Msg, rcodes[i])
		}
	}
	if got := u.calls.Load(); got != 2 {
		t.Errorf("Expected two resolutions for %d failing queries (the flight and one retry), got %d", n, got)
	}
}

func TestTruncatedNotShared(t *testing.T) {
	u := newUpstream()
	u.truncate = true
	u.entered = make(chan struct{}, 10)
	c := newCollapse(t, u)
	r := func() *dns.Msg { return new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA) }
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() { defer wg.Done(); c.ServeDNS(context.Background(), dnstest.NewRecorder(udpClient(i)), r()) }()
		if i == 0 {
			<-u.entered
		}
	}
	waitFlightWaiters(t, c, 1)
	close(u.gate)
	wg.Wait()
	if got := u.calls.Load(); got != 2 {
		t.Errorf("Expected the waiter to resolve again rather than take a truncated reply, got %d calls", got)
	}
}

func TestRetransmitAndCaps(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 10)
	c := newCollapse(t, u)
	c.group.maxWaiters = 2
	r := new(dns.Msg).SetQuestion("www.example.org.", dns.TypeA)
	r.Id = 77

	var wg sync.WaitGroup
	serve := func(w *client, m *dns.Msg) {
		wg.Add(1)
		go func() { defer wg.Done(); c.ServeDNS(context.Background(), dnstest.NewRecorder(w), m.Copy()) }()
	}
	retrans := testutil.ToFloat64(collapsedRetransmits.WithLabelValues(""))
	over := testutil.ToFloat64(overflows.WithLabelValues(""))
	serve(udpClient(0), r)
	<-u.entered
	serve(udpClient(0), r) // the same client, port and ID: a retransmission
	waitFlightWaiters(t, c, 1)
	serve(udpClient(1), r)
	waitFlightWaiters(t, c, 2)
	serve(udpClient(2), r) // over max_waiters: resolved alone
	<-u.entered
	close(u.gate)
	wg.Wait()
	if got := testutil.ToFloat64(collapsedRetransmits.WithLabelValues("")) - retrans; got != 1 {
		t.Errorf("Expected one retransmission collapsed, got %v", got)
	}
	if got := testutil.ToFloat64(overflows.WithLabelValues("")) - over; got != 1 {
		t.Errorf("Expected one overflow, got %v", got)
	}
	if got := u.calls.Load(); got != 2 {
		t.Errorf("Expected 2 upstream calls (the flight and the overflow), got %d", got)
	}

	// The table of flights is capped too.
	u2 := newUpstream()
	u2.entered = make(chan struct{}, 200)
	c2 := newCollapse(t, u2)
	c2.Stop()
	c2.maxKeys = 64
	c2.Start()
	for i := range 100 {
		wg.Add(1)
		m := new(dns.Msg).SetQuestion(fmt.Sprintf("n%d.example.org.", i), dns.TypeA)
		go func() { defer wg.Done(); c2.ServeDNS(context.Background(), dnstest.NewRecorder(udpClient(i)), m) }()
	}
	for range 100 {
		<-u2.entered
	}
	if n := c2.group.flights.Len(); n > 64 {
		t.Errorf("Expected at most 64 flights, got %d", n)
	}
	close(u2.gate)
	wg.Wait()
}

// prefetcher is a SiblingPrefetcher that records the queries it is asked to prefetch for.
type prefetcher struct {
	mu    sync.Mutex
	names []string
}

func (p *prefetcher) PrefetchSibling(_ context.Context, _ dns.ResponseWriter, r *dns.Msg) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.names = append(p.names, r.Question[0].Name)
}

func TestSiblingPrefetcher(t *testing.T) {
	u := newUpstream()
	u.entered = make(chan struct{}, 4)
	c := newCollapse(t, u)
	p := &prefetcher{}
	c.prefetcher = p

	var wg sync.WaitGroup
	serve := func(ctx context.Context, i int, name string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.ServeDNS(ctx, dnstest.NewRecorder(udpClient(i)), new(dns.Msg).SetQuestion(name, dns.TypeA))
		}()
	}
	serve(context.Background(), 0, "a.example.org.")
	<-u.entered
	serve(context.Background(), 1, "a.example.org.") // collapsed into the first: no prefetch of its own
	waitFlightWaiters(t, c, 1)
	serve(query.MarkOwn(context.Background()), 2, "b.example.org.") // raceguard's own query: none
	<-u.entered
	close(u.gate)
	wg.Wait()

	p.mu.Lock()
	defer p.mu.Unlock()
	if want := []string{"a.example.org."}; !slices.Equal(p.names, want) {
		t.Errorf("Expected a prefetch for the leader of a client's miss only, %v; got %v", want, p.names)
	}
}
