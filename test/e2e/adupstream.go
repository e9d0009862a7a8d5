package e2e

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// adUpstream is a validating resolver's answers as the forwarder sees them: it relays each query,
// over the transport it came on, to the lab's upstream (test/lab/external.db) and sets AD on every
// NOERROR and NXDOMAIN reply, as a resolver that validated them does. (RFC 6840 §5.7 has it set AD
// only for a query with DO or AD; some set it for every query, which is the case to prove against.)
type adUpstream struct {
	Addr string
	ad   atomic.Int64 // replies sent with AD set
}

// startADUpstream starts an adUpstream on loopback in front of up, stopped when the test ends.
func startADUpstream(t *testing.T, up *lab.Upstream) *adUpstream {
	t.Helper()
	pc, ln, err := lab.ListenBoth("", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := &adUpstream{Addr: pc.LocalAddr().String()}
	relay := func(network string) dns.HandlerFunc {
		c := &dns.Client{Net: network, Timeout: 2 * time.Second}
		return func(w dns.ResponseWriter, r *dns.Msg) {
			m, _, err := c.Exchange(r, up.Addr)
			if err != nil {
				return // as a resolver that lost its upstream: the forwarder times out
			}
			if m.Rcode == dns.RcodeSuccess || m.Rcode == dns.RcodeNameError {
				m.AuthenticatedData = true
				u.ad.Add(1)
			}
			w.WriteMsg(m)
		}
	}
	srvs, err := lab.Serve(pc, ln, relay("udp"), relay("tcp"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, s := range srvs {
			s.Shutdown()
		}
	})
	return u
}
