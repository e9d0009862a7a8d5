package e2e

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// faultyUpstream is an upstream whose behaviour the test switches: "ok" answers A 192.0.2.10 and
// AAAA 2001:db8::10 for any name (and NXDOMAIN under .invalid. and lab.internal.); "dead" never
// answers; "slow" answers after 300 ms; "malformed" sends bytes that are no DNS message;
// "truncated" answers UDP with an empty TC reply, TCP in full. "slow" answers after 150 ms,
// within the forwarder's 300 ms read timeout.
type faultyUpstream struct {
	Addr  string
	mode  atomic.Value
	mu    sync.Mutex
	count map[string]int // "name/TYPE/proto" -> queries; protected by mu
	srvs  []*dns.Server
}

func newFaultyUpstream(t *testing.T) *faultyUpstream {
	t.Helper()
	u := &faultyUpstream{count: map[string]int{}}
	u.mode.Store("ok")
	pc, ln, err := lab.ListenBoth("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(u.serve)
	u.srvs = []*dns.Server{{PacketConn: pc, Handler: h}, {Listener: ln, Handler: h}}
	for _, s := range u.srvs {
		go s.ActivateAndServe()
	}
	t.Cleanup(func() {
		for _, s := range u.srvs {
			s.Shutdown()
		}
	})
	return u
}

func (u *faultyUpstream) set(mode string) { u.mode.Store(mode) }

func (u *faultyUpstream) queries(name string, qtype uint16, proto string) int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.count[strings.ToLower(name)+"/"+dns.TypeToString[qtype]+"/"+proto]
}

func (u *faultyUpstream) serve(w dns.ResponseWriter, r *dns.Msg) {
	q := r.Question[0]
	proto := "udp"
	if _, ok := w.RemoteAddr().(*net.TCPAddr); ok {
		proto = "tcp"
	}
	u.mu.Lock()
	u.count[strings.ToLower(q.Name)+"/"+dns.TypeToString[q.Qtype]+"/"+proto]++
	u.mu.Unlock()
	m := new(dns.Msg)
	m.SetReply(r)
	switch u.mode.Load().(string) {
	case "dead":
		return
	case "slow":
		time.Sleep(150 * time.Millisecond)
	case "malformed":
		w.Write([]byte{byte(r.Id >> 8), byte(r.Id), 0x81, 0x80, 0, 1, 0, 5, 0xff, 0xff})
		return
	case "truncated":
		if proto == "udp" {
			m.Truncated = true
			w.WriteMsg(m)
			return
		}
	}
	name := strings.ToLower(q.Name)
	switch {
	case strings.HasSuffix(name, ".invalid.") || strings.HasSuffix(name, ".lab.internal."):
		m.Rcode = dns.RcodeNameError
	case q.Qtype == dns.TypeA:
		m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 60}, A: net.ParseIP("192.0.2.10")}}
	case q.Qtype == dns.TypeAAAA:
		m.Answer = []dns.RR{&dns.AAAA{Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: 60}, AAAA: net.ParseIP("2001:db8::10")}}
	}
	w.WriteMsg(m)
}

// concurrently sends n identical queries at once and returns the replies (nil for a client
// timeout) and how long the slowest took.
func concurrently(addr, network, name string, qtype uint16, n int, edns uint16) ([]*dns.Msg, time.Duration) {
	out := make([]*dns.Msg, n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			m := new(dns.Msg).SetQuestion(name, qtype)
			if edns > 0 {
				m.SetEdns0(edns, false)
			}
			r, _, err := (&dns.Client{Net: network, Timeout: 8 * time.Second}).Exchange(m, addr)
			if err == nil {
				out[i] = r
			}
		}()
	}
	wg.Wait()
	return out, time.Since(start)
}

// TestUpstreamFaults: a dead, slow, malformed or truncating upstream; each with a burst of
// identical queries (collapse joins them) and a search walk crossing it. The assertions are on
// what the clients got.
func TestUpstreamFaults(t *testing.T) {
	u := newFaultyUpstream(t)
	zone := testenv.ClusterZone(t)
	// A fixed list is trusted whole: the walks cross the faulty upstream to the name itself.
	i, udp, tcp, err := testenv.CoreDNSServerAndPorts(`.:0 {
    raceguard {
        search default.svc.cluster.local svc.cluster.local cluster.local lab.internal
        conntrack off
    }
    cache 30
    collapse
    file ` + zone + ` cluster.local
    forward . ` + u.Addr + ` {
        read_timeout 300ms
        max_connect_attempts 2
    }
}`)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(i)

	t.Run("dead", func(t *testing.T) {
		u.set("dead")
		rs, took := concurrently(udp, "udp", "dead.example.org.", dns.TypeA, 20, 0)
		for j, r := range rs {
			if r == nil || r.Rcode != dns.RcodeServerFailure {
				t.Errorf("Query %d: Expected SERVFAIL from a dead upstream, got %v", j, r)
			}
		}
		if took > 3*time.Second {
			t.Errorf("Expected the failure fast, took %s", took)
		}
		// One resolution (2 tries upstream), then one retry of the waiters together (2 more):
		// not 2 per client.
		if n := u.queries("dead.example.org.", dns.TypeA, "udp"); n > 4 {
			t.Errorf("Expected the 20 collapsed, at most 4 tries upstream, got %d", n)
		}
		// A walk that crosses the dead upstream: the client gets its first try's NXDOMAIN at once
		// and walks on itself, as without raceguard.
		start := time.Now()
		r := exchange(t, "udp", udp, "gone.example.org.default.svc.cluster.local.", dns.TypeA, 0, false)
		if r.Rcode != dns.RcodeNameError || time.Since(start) > 3*time.Second {
			t.Errorf("Expected the first try's NXDOMAIN within the forwarder's timeout, got %v after %s", dns.RcodeToString[r.Rcode], time.Since(start))
		}
	})

	t.Run("slow", func(t *testing.T) {
		u.set("slow")
		rs, took := concurrently(udp, "udp", "slow.example.org.", dns.TypeA, 20, 0)
		for j, r := range rs {
			if r == nil || len(r.Answer) != 1 {
				t.Errorf("Query %d: Expected the answer from a slow upstream, got %v", j, r)
			}
		}
		if n := u.queries("slow.example.org.", dns.TypeA, "udp"); n != 1 || took < 150*time.Millisecond {
			t.Errorf("Expected one upstream query, answered after its delay; got %d queries in %s", n, took)
		}
		r := exchange(t, "udp", udp, "slow2.example.org.default.svc.cluster.local.", dns.TypeAAAA, 0, false)
		if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "slow2.example.org." {
			t.Errorf("Expected the walk completed through the slow upstream, got %v", r)
		}
	})

	t.Run("malformed", func(t *testing.T) {
		u.set("malformed")
		rs, _ := concurrently(udp, "udp", "garbage.example.org.", dns.TypeA, 5, 0)
		for j, r := range rs {
			if r == nil || r.Rcode != dns.RcodeServerFailure {
				t.Errorf("Query %d: Expected SERVFAIL for an upstream sending garbage, got %v", j, r)
			}
		}
		u.set("ok")
		if r := exchange(t, "udp", udp, "after.example.org.", dns.TypeA, 0, false); len(r.Answer) != 1 {
			t.Errorf("Expected the server unharmed afterwards, got %v", r)
		}
	})

	t.Run("truncated", func(t *testing.T) {
		u.set("truncated")
		rs, _ := concurrently(udp, "udp", "tc.example.org.", dns.TypeA, 5, 1232)
		for j, r := range rs {
			if r == nil || !r.Truncated || len(r.Answer) != 0 {
				t.Errorf("Query %d: Expected the upstream's TC passed on to a UDP client, got %v", j, r)
			}
		}
		// Over TCP the client gets the whole answer: a truncated reply is never shared as final,
		// nor handed to a TCP client.
		r := exchange(t, "tcp", tcp, "tc.example.org.", dns.TypeA, 1232, false)
		if r.Truncated || len(r.Answer) != 1 {
			t.Errorf("Expected the full answer over TCP, got %v", r)
		}
		if n := u.queries("tc.example.org.", dns.TypeA, "tcp"); n != 1 {
			t.Errorf("Expected the TCP client resolved over TCP upstream, got %d TCP queries", n)
		}
	})
}

// TestReloadUnderLoad: the reload plugin reloads the Corefile (twice, by the file changing and
// by SIGUSR1) while clients query without pause; no query goes unanswered, no metric is
// registered twice, and no goroutine is left behind.
func TestReloadUnderLoad(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	zone := testenv.ClusterZone(t)
	dir := t.TempDir()
	port, metricsAddr := freePort(t), testenv.FreePort(t)
	addr := "127.0.0.1:" + port
	corefile := func(cache string) string {
		return `.:` + port + ` {
    bind 127.0.0.1
    reload 2s 1s
    prometheus ` + metricsAddr + `
    raceguard {
        node_search lab.internal
        conntrack procfs
    }
    cache ` + cache + `
    collapse
    file ` + zone + ` cluster.local
    forward . ` + up.Addr + `
}
`
	}
	p, err := lab.StartProcess("", bin, dir, "reload", corefile("30"), addr)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	scrape := func() lab.Metrics {
		text, err := lab.ScrapeURL("", "http://"+metricsAddr+"/metrics")
		if err != nil {
			t.Fatal(err)
		}
		return lab.ParseMetrics(text)
	}
	time.Sleep(500 * time.Millisecond)
	before := scrape()

	var sent, failed atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("r%dq%d.wild.example.com.", c, j%50)
				if j%3 == 0 {
					name = fmt.Sprintf("r%dq%d.example.org.default.svc.cluster.local.", c, j%50)
				}
				m := new(dns.Msg).SetQuestion(name, dns.TypeA)
				sent.Add(1)
				// Like a stub resolver: retry once after a second before giving up.
				if _, err := exchangeRetrying(m, addr); err != nil {
					failed.Add(1)
				}
				time.Sleep(2 * time.Millisecond)
			}
		}()
	}
	reloads := func() int { return strings.Count(p.Log(), "Reloading complete") }
	waitReloads := func(n int) {
		for deadline := time.Now().Add(15 * time.Second); reloads() < n; time.Sleep(100 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("No reload %d within 15 s:\n%s", n, p.Log())
			}
		}
	}
	time.Sleep(time.Second)
	if err := os.WriteFile(filepath.Join(dir, "reload.Corefile"), []byte(corefile("20")), 0o644); err != nil {
		t.Fatal(err)
	}
	waitReloads(1)
	time.Sleep(time.Second)
	if err := syscall.Kill(p.Pid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	waitReloads(2)
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	time.Sleep(time.Second) // let the old instances' goroutines end
	after := scrape()
	// The stack-start holders come and go with the load (internal/stackstart): they are counted
	// apart.
	goroutines := func(m lab.Metrics) float64 {
		return m.Sum("go_goroutines", nil) - m.Sum("coredns_raceguard_stack_start_holders", nil)
	}
	t.Logf("%d queries during 2 reloads, %d unanswered; goroutines besides the stack-start holders %v -> %v", sent.Load(), failed.Load(),
		goroutines(before), goroutines(after))
	if failed.Load() != 0 {
		t.Errorf("Expected every query answered across reloads, %d of %d were not", failed.Load(), sent.Load())
	}
	if g0, g1 := goroutines(before), goroutines(after); g1 > g0+20 {
		t.Errorf("Expected no goroutines left behind by reloads, %v before, %v after", g0, g1)
	}
	if target := after.Sum("coredns_raceguard_stack_start_target_bytes", nil); target != 8192 {
		t.Errorf("Expected the stack-start mechanism kept across reloads (target 8192), got target %v", target)
	}
	for _, table := range []string{"search_pairs", "fingerprints", "collapse_flights"} {
		if c0, c1 := before.Sum("coredns_raceguard_table_capacity", map[string]string{"table": table}),
			after.Sum("coredns_raceguard_table_capacity", map[string]string{"table": table}); c0 == 0 || c1 != c0 {
			t.Errorf("Expected table %s exported once after reloads (capacity %v), got %v", table, c0, c1)
		}
	}
	if up := after.Sum("coredns_raceguard_conntrack_up", nil); up != 1 {
		t.Errorf("Expected the conntrack collector alive after reloads, up %v", up)
	}
	for _, bad := range []string{"duplicate metrics collector registration", "panic", "already registered"} {
		if strings.Contains(p.Log(), bad) {
			t.Errorf("Expected no %q in the log:\n%s", bad, p.Log())
		}
	}
}

// TestResolvConfChanges: the node's resolv.conf (node_search) changes and then vanishes while the
// server runs; the walks follow it within its 2 s re-read (they try the node's domains, so that a
// client that walks on finds their answers ready), and the server keeps serving.
func TestResolvConfChanges(t *testing.T) {
	up := testenv.LoopbackUpstream(t)
	zone := testenv.ClusterZone(t)
	resolv := filepath.Join(t.TempDir(), "resolv.conf")
	write := func(body string) {
		tmp := resolv + ".new"
		if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, resolv); err != nil {
			t.Fatal(err)
		}
	}
	write("nameserver 10.0.0.1\nsearch lab.internal\n")
	i, udp, _, err := testenv.CoreDNSServerAndPorts(`.:0 {
    raceguard {
        node_search ` + resolv + `
        walk_budget 0
        conntrack off
    }
    file ` + zone + ` cluster.local
    forward . ` + up.Addr + `
}`)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(i)

	// Each lookup of a new name nowhere to be found makes a walk; it tries the node's domain.
	n := 0
	expect := func(domain string) {
		t.Helper()
		for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
			n++
			base := fmt.Sprintf("q%d.corp.", n)
			r := exchange(t, "udp", udp, base+"default.svc.cluster.local.", dns.TypeA, 0, false)
			if r.Rcode != dns.RcodeNameError {
				t.Fatalf("Expected the first try's own NXDOMAIN, got %v", r)
			}
			// The walk's last names go upstream at the same time; give them a moment.
			time.Sleep(50 * time.Millisecond)
			if domain == "" && up.Queries(base+"lab.internal.", dns.TypeA)+up.Queries(base+"other.internal.", dns.TypeA) == 0 && up.Queries(base, dns.TypeA) == 1 {
				return
			}
			if domain != "" && up.Queries(base+domain, dns.TypeA) == 1 {
				return
			}
		}
		t.Errorf("Expected the walks to try the node domain %q", domain)
	}
	expect("lab.internal.")
	write("nameserver 10.0.0.1\nsearch other.internal\n")
	expect("other.internal.")
	if err := os.Remove(resolv); err != nil {
		t.Fatal(err)
	}
	// No node domains: the walk goes from the cluster domains to the name itself.
	expect("")
	if r := exchange(t, "udp", udp, "web.default.svc.cluster.local.", dns.TypeA, 0, false); len(r.Answer) != 1 {
		t.Errorf("Expected service as usual without a resolv.conf, got %v", r)
	}
}

// TestKubernetesAPIGone: with search @kubernetes, the Kubernetes API going away leaves the
// kubernetes plugin's informers with what they had: completion keeps working from them, and
// nothing hangs.
func TestKubernetesAPIGone(t *testing.T) {
	if !testenv.Isolated(t) {
		return
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	udp, api := kubernetesServerWith(t, ln, "raceguard {\n        search @kubernetes\n        conntrack off\n    }")
	check := func(when string) {
		t.Helper()
		start := time.Now()
		r := exchangeFrom(t, "127.0.0.1", udp, "api.shop.default.svc.cluster.local.", dns.TypeA)
		if len(r.Answer) != 2 || r.Answer[0].(*dns.CNAME).Target != "api.shop.svc.cluster.local." || time.Since(start) > time.Second {
			t.Errorf("%s: Expected api.shop completed at once, got %v after %s", when, r, time.Since(start))
		}
	}
	check("API up")
	api.Close()
	time.Sleep(2 * time.Second) // the informers notice and retry in the background
	check("API gone")
	if r := exchangeFrom(t, "127.0.0.1", udp, "web.default.svc.cluster.local.", dns.TypeA); len(r.Answer) != 1 {
		t.Errorf("API gone: Expected services still served, got %v", r)
	}
}
