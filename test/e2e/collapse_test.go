package e2e

import (
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/testenv"
)

// burst sends n identical queries at once, each from its own socket with its own ID and 0x20
// case, and checks every reply echoes its query and carries the answer.
func burst(t *testing.T, addr, name string, qtype uint16, n int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := []byte(name)
			for j := range b {
				if b[j] >= 'a' && b[j] <= 'z' && rand.IntN(2) == 1 {
					b[j] -= 'a' - 'A'
				}
			}
			m := new(dns.Msg).SetQuestion(string(b), qtype)
			r, err := exchangeRetrying(m, addr)
			switch {
			case err != nil:
				errs <- fmt.Errorf("query %d: %v", i, err)
			case r.Id != m.Id || r.Question[0] != m.Question[0]:
				errs <- fmt.Errorf("query %d: Expected ID %d and question %v echoed, got %d and %v", i, m.Id, m.Question[0], r.Id, r.Question[0])
			case r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0:
				errs <- fmt.Errorf("query %d: Expected an answer, got %v", i, r)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// exchangeRetrying sends m over UDP and, like a stub resolver, resends it on the same socket with
// the same ID every second until a reply comes, five times at most: a burst of 500 datagrams
// overflows a socket buffer on loopback.
func exchangeRetrying(m *dns.Msg, addr string) (*dns.Msg, error) {
	co, err := dns.Dial("udp", addr)
	if err != nil {
		return nil, err
	}
	defer co.Close()
	var last error
	for range 5 {
		co.SetWriteDeadline(time.Now().Add(time.Second))
		if err := co.WriteMsg(m); err != nil {
			return nil, err
		}
		co.SetReadDeadline(time.Now().Add(time.Second))
		r, err := co.ReadMsg()
		if err == nil {
			return r, nil
		}
		last = err
	}
	return nil, last
}

// TestCollapseBurst: 500 concurrent identical misses reach a real upstream CoreDNS once with
// collapse, and many times without it.
func TestCollapseBurst(t *testing.T) {
	const n = 500
	for _, tc := range []struct {
		name     string
		collapse string
	}{{"stock", ""}, {"collapse", "collapse"}} {
		t.Run(tc.name, func(t *testing.T) {
			up, counter := upstreamCoreDNS(t, 200*time.Millisecond)
			i, udp, _, err := testenv.CoreDNSServerAndPorts(`.:0 {
    cache 30
    ` + tc.collapse + `
    forward . ` + up + ` {
        max_concurrent 10000
    }
}`)
			if err != nil {
				t.Fatal(err)
			}
			defer testenv.Stop(i)
			burst(t, udp, "many.example.com.", dns.TypeA, n)
			got := counter.count("many.example.com.", dns.TypeA)
			t.Logf("%s: %d concurrent identical misses, %d upstream queries", tc.name, n, got)
			if tc.collapse != "" && got != 1 {
				t.Errorf("Expected one upstream query with collapse, got %d", got)
			}
			if tc.collapse == "" && got < 10 {
				t.Errorf("Expected stock CoreDNS to send many upstream queries (nothing collapsed), got %d", got)
			}
		})
	}
}

// TestSiblingPrefetch: an A that misses has its AAAA resolved at the same time, for a client that
// asks AAAA too, so its AAAA afterwards comes from the cache. A client that asks A alone gets no
// prefetch: it would never ask the AAAA.
func TestSiblingPrefetch(t *testing.T) {
	up, counter := upstreamCoreDNS(t, 100*time.Millisecond)
	i, udp, _, err := testenv.CoreDNSServerAndPorts(`.:0 {
    prometheus localhost:0
    raceguard {
        search off
    }
    cache 30
    collapse
    forward . ` + up + `
}`)
	if err != nil {
		t.Fatal(err)
	}
	defer testenv.Stop(i)

	hits := metric(t, "coredns_raceguard_sibling_prefetch_hits_total", map[string]string{"type": "AAAA"})
	// This client (127.0.0.1) has asked only A so far.
	exchange(t, "udp", udp, "www.example.org.", dns.TypeA, 0, false)
	time.Sleep(200 * time.Millisecond) // a prefetch would have reached the upstream by now
	if got := counter.count("www.example.org.", dns.TypeAAAA); got != 0 {
		t.Fatalf("Expected no AAAA prefetched for a client that never asked AAAA, upstream saw %d", got)
	}
	// It asks an AAAA: from now on its misses have their sibling prefetched.
	exchange(t, "udp", udp, "www.example.org.", dns.TypeAAAA, 0, false)
	exchange(t, "udp", udp, "example.org.", dns.TypeA, 0, false)
	if got := counter.count("example.org.", dns.TypeAAAA); got != 1 {
		t.Fatalf("Expected the AAAA prefetched with the A, upstream saw %d AAAA queries", got)
	}
	start := time.Now()
	r := exchange(t, "udp", udp, "example.org.", dns.TypeAAAA, 0, false)
	if took := time.Since(start); len(r.Answer) != 1 || took > 50*time.Millisecond {
		t.Errorf("Expected the AAAA from the cache at once, got %v after %s", r.Answer, took)
	}
	if got := counter.count("example.org.", dns.TypeAAAA); got != 1 {
		t.Errorf("Expected no second upstream AAAA query, got %d", got)
	}
	if got := metric(t, "coredns_raceguard_sibling_prefetch_hits_total", map[string]string{"type": "AAAA"}) - hits; got != 1 {
		t.Errorf("Expected one prefetch hit, got %v", got)
	}
	// A prefetch never triggers another: one A upstream, not two.
	if got := counter.count("example.org.", dns.TypeA); got != 1 {
		t.Errorf("Expected one upstream A query, got %d", got)
	}
}
