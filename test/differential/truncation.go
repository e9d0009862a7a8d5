package differential

import (
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/miekg/dns"
)

// truncation asks the big answer over 512-byte UDP explicitly: asked as is, stock and raceguard
// must both set TC within 512 bytes; its first try must not be completed (the completion would not
// fit: the client gets its first try's own NXDOMAIN and walks to the name, as without raceguard);
// and the completed reply must be whole over TCP.
func (d *harness) truncation() {
	rng := rand.New(rand.NewPCG(512, 512))
	for _, name := range []string{"big.example.com.", "big.example.com.default.svc.cluster.local."} {
		for _, edns := range []uint16{0, 512} {
			for _, do := range []bool{false, true} {
				if edns == 0 && do {
					continue
				}
				q := query{name: mixCase(rng, name), qtype: dns.TypeA, edns: edns, do: do, rd: true, net: "udp", id: uint16(rng.Uint32())}
				qwire, s, r, err := d.exchange(q)
				d.truncChecks++
				if err != nil {
					d.compared++
					d.fail(q, s, r, []string{err.Error()})
					continue
				}
				completed := d.judge(q, qwire, s, r)
				var p []string
				if name == "big.example.com." {
					if !r.msg.Truncated || len(r.raw) > 512 {
						p = append(p, fmt.Sprintf("raceguard: want TC within 512 bytes, got TC=%v in %d bytes", r.msg.Truncated, len(r.raw)))
					}
					if !s.msg.Truncated || len(s.raw) > 512 {
						p = append(p, fmt.Sprintf("stock: want TC within 512 bytes, got TC=%v in %d bytes", s.msg.Truncated, len(s.raw)))
					}
				} else if completed || r.msg.Truncated || r.msg.Rcode != dns.RcodeNameError {
					p = append(p, fmt.Sprintf("raceguard: want the first try's own NXDOMAIN, got %s TC=%v", dns.RcodeToString[r.msg.Rcode], r.msg.Truncated))
				}
				if len(p) > 0 {
					d.t.Errorf("truncation of %v:\n  - %s\nstock %s\nraceguard %s", q, strings.Join(p, "\n  - "), s, r)
				}
			}
		}
	}
	// The client retries over TCP and must get the whole answer.
	q := query{name: "bIg.ExAmple.com.DeFault.svc.cluster.LOCAL.", qtype: dns.TypeA, rd: true, net: "tcp", id: 512}
	qwire, s, r, err := d.exchange(q)
	d.truncChecks++
	if err != nil {
		d.compared++
		d.fail(q, s, r, []string{err.Error()})
		return
	}
	completed := d.judge(q, qwire, s, r)
	if d.trusted == 5 && (!completed || r.msg.Truncated || len(r.msg.Answer) != 41) {
		d.t.Errorf("Expected the whole completed answer (CNAME and 40 A) over TCP, got TC=%v and %d records", r.msg.Truncated, len(r.msg.Answer))
	}
}
