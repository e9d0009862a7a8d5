package lab

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// Relay is a slow link in front of DNS servers: it takes queries on an address inside a namespace
// and, after a configurable delay, passes each to a target over the transport it came on, and the
// reply back. In front of the lab's DNS servers it is the path from a node-local server to
// kube-dns when that path (or kube-dns) is slow: Upstream.SetDelay slows only the names that go
// to the internet, this slows every name the node-local server cannot answer itself.
type Relay struct {
	Addr string // host:port inside the namespace

	delay   atomic.Int64 // time.Duration before each query is passed on
	servers []*dns.Server
}

// StartRelay relays queries on addr (port 0 picks one) in namespace ns to target, from sockets in
// ns. A query the target does not answer within 2 s gets no reply, as over a lossy link.
func StartRelay(ns, addr, target string) (*Relay, error) {
	pc, ln, err := ListenBoth(ns, addr)
	if err != nil {
		return nil, fmt.Errorf("relay listen: %w", err)
	}
	r := &Relay{Addr: pc.LocalAddr().String()}
	handler := func(network string) dns.HandlerFunc {
		return func(w dns.ResponseWriter, q *dns.Msg) {
			if d := time.Duration(r.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			m, err := Exchange(ns, network, target, q, 2*time.Second)
			if err != nil {
				return
			}
			w.WriteMsg(m)
		}
	}
	if r.servers, err = Serve(pc, ln, handler("udp"), handler("tcp")); err != nil {
		return nil, fmt.Errorf("relay serve: %w", err)
	}
	return r, nil
}

// SetDelay makes the relay wait d before passing each query on.
func (r *Relay) SetDelay(d time.Duration) { r.delay.Store(int64(d)) }

// Close stops the relay.
func (r *Relay) Close() {
	for _, s := range r.servers {
		s.Shutdown()
	}
}
