package nodelocal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
)

// The self-check: does a DNS query the node sends to each listen address reach this very
// server? A socket-level service load balancer (Cilium's kube-proxy replacement, other eBPF
// ones) rewrites a connect or sendmsg to a ClusterIP into one to a kube-dns pod inside the
// socket call, before any netfilter rule sees a packet: there transparent mode captures nothing,
// and nothing else would say so. The check asks each address for a name only this process
// answers (a fresh random label), and the answer must carry a token only this process knows.

// selfCheckTimeout bounds the wait for each address's answer.
const selfCheckTimeout = time.Second

// selfCheck is a check in flight: the name, and the token its answer carries.
type selfCheck struct {
	name  string
	token string
}

// checking is the check in flight, if any; every server instance's nodelocal answers it, since
// a reload's new instance may be the one that listens.
var checking atomic.Pointer[selfCheck]

// matches reports whether r is the check's query.
func (c *selfCheck) matches(r *dns.Msg) bool {
	return len(r.Question) == 1 && strings.EqualFold(r.Question[0].Name, c.name)
}

// answer writes the check's answer.
func (c *selfCheck) answer(w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m := new(dns.Msg).SetReply(r)
	m.Authoritative = true
	m.Answer = []dns.RR{&dns.TXT{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET}, Txt: []string{c.token}}}
	if err := w.WriteMsg(m); err != nil {
		return dns.RcodeServerFailure, err
	}
	return dns.RcodeSuccess, nil
}

func random() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// runSelfCheck asks each address at port, from the node, for a fresh name under zone (the
// server block's, so that the query reaches the block with nodelocal), and returns, for each,
// nil when this server answered, or what happened instead.
func runSelfCheck(ctx context.Context, addrs []netip.Addr, port uint16, zone string) map[netip.Addr]error {
	c := &selfCheck{name: dns.Fqdn(random() + ".raceguard-self-check." + strings.TrimSuffix(zone, ".")), token: random()}
	if zone == "." {
		c.name = random() + ".raceguard-self-check."
	}
	checking.Store(c)
	defer checking.CompareAndSwap(c, nil)
	out := map[netip.Addr]error{}
	for _, a := range addrs {
		m := new(dns.Msg).SetQuestion(c.name, dns.TypeTXT)
		cl := &dns.Client{Net: "udp", Timeout: selfCheckTimeout}
		r, _, err := cl.ExchangeContext(ctx, m, netip.AddrPortFrom(a, port).String())
		switch {
		case err != nil:
			out[a] = fmt.Errorf("no answer (%v)", err)
		case len(r.Answer) != 1 || !isToken(r.Answer[0], c.token):
			out[a] = fmt.Errorf("answered by another server (%s, %d answers)", dns.RcodeToString[r.Rcode], len(r.Answer))
		default:
			out[a] = nil
		}
	}
	return out
}

func isToken(rr dns.RR, token string) bool {
	t, ok := rr.(*dns.TXT)
	return ok && len(t.Txt) == 1 && t.Txt[0] == token
}
