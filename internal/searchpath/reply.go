package searchpath

import (
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/reply"
)

// clientCase returns names with their base written as the client wrote it in qname (0x20 case,
// RFC 4343), so that each try, and the CNAME a completion makes, carries the client's own bytes.
func clientCase(names []string, qname string, baseLen int) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = qname[:baseLen] + n[baseLen:]
	}
	return out
}

// target returns the name a completion of r points its CNAME at: name, a name of walk, with its
// base as the client wrote it.
func target(r *dns.Msg, walk Walk, name string) string {
	return r.Question[0].Name[:len(walk.Base)] + name[len(walk.Base):]
}

// completed returns the completion of the query r by the answer a of the name target: a CNAME
// from r's exact name to target, then a's records; or, when a has none, a's plain NODATA. AD is
// never set: the CNAME has no signature (RFC 4035 §3.2.3), and a NODATA for r's name is not the
// one a's zone signed.
func completed(a, r *dns.Msg, target string) *dns.Msg {
	m := reply.For(a, r)
	m.AuthenticatedData = false
	if len(m.Answer) > 0 {
		ttl := m.Answer[0].Header().Ttl
		for _, rr := range m.Answer {
			ttl = min(ttl, rr.Header().Ttl)
		}
		cname := &dns.CNAME{
			Hdr:    dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl},
			Target: target,
		}
		m.Answer = append([]dns.RR{cname}, m.Answer...)
	}
	return m
}

// fits reports whether both completed replies of res fit the size of q's client, as the server
// would cut them (compressed). A completion that does not fit would be truncated where the
// client's own walk would reach the name with one question less and no CNAME: musl before 1.2.4
// keeps what fits and does not retry over TCP.
func fits(res *result, q *query.Query, walk Walk) bool {
	size := int(q.Flags().Size)
	for t, qtype := range []uint16{dns.TypeA, dns.TypeAAAA} {
		a := res.answer[t]
		if a.msg == nil || !res.types.has(qtype) {
			continue
		}
		r := q.R.Copy()
		r.Question[0].Qtype = qtype
		m := completed(a.msg, r, target(r, walk, res.names[res.k]))
		m.Compress = true
		if m.Len() > size {
			return false
		}
	}
	return true
}

// ageTTLs lowers every TTL of m by age, as a cache does, never below zero.
func ageTTLs(m *dns.Msg, age time.Duration) {
	d := uint32(age / time.Second)
	for _, s := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for _, rr := range s {
			if h := rr.Header(); h.Rrtype != dns.TypeOPT {
				h.Ttl -= min(h.Ttl, d)
			}
		}
	}
}

// negativeTTL is how long an NXDOMAIN may be answered from memory: its SOA's TTL and minimum
// (RFC 2308), between minRememberTTL and maxRememberTTL.
func negativeTTL(m *dns.Msg) time.Duration {
	ttl := defaultRememberTTL
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			break
		}
	}
	return max(minRememberTTL, min(ttl, maxRememberTTL))
}
