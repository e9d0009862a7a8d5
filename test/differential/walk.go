package differential

import (
	"fmt"
	"strings"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// searchWalk is the search walk README.md's "Search completion" documents for a first try
// <base>.<ns>.svc.cluster.local. (search infer, node_search lab.internal): names[0] is the first
// try, then <base>.svc.cluster.local., <base>.cluster.local., <base>.lab.internal., <base>.
type searchWalk struct {
	names     []string
	namespace string // <ns>.svc.cluster.local., which must not be NXDOMAIN
}

// walkOf returns the walk of name (lower-cased) if raceguard may complete it: a base of at least
// two labels below <ns>.svc.cluster.local., in namespace ns when ns is not empty.
func walkOf(name, namespace string) (searchWalk, bool) {
	rest, ok := strings.CutSuffix(name, ".svc.cluster.local.")
	if !ok {
		return searchWalk{}, false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return searchWalk{}, false
	}
	base, ns := rest[:dot], rest[dot+1:]
	if !strings.Contains(base, ".") || namespace != "" && ns != namespace {
		return searchWalk{}, false
	}
	w := searchWalk{namespace: ns + ".svc.cluster.local."}
	for _, d := range []string{ns + ".svc.cluster.local.", "svc.cluster.local.", "cluster.local.", lab.NodeDomain + ".", ""} {
		w.names = append(w.names, dns.Fqdn(base+"."+strings.TrimSuffix(d, ".")))
	}
	w.names[len(w.names)-1] = base + "."
	return w, true
}

// walkPlan is what README.md's "Search completion" makes of a first try, judged from stock's
// answers for the names of its walk: the walk stops at the first name after the first try where
// stock's A and AAAA are not both NXDOMAIN, and completes if both are clean NOERROR there.
type walkPlan struct {
	complete bool
	why      string   // why the walk is not completed, when it is not
	name     string   // where the walk stops, when it completes
	want     *dns.Msg // stock's reply for name with the query's type and flags
}

// plan returns the plan of q's walk: what README.md's "Search completion" says raceguard makes of
// the first try q, judged from stock's answers for the names of its walk. A validating client (DO)
// is never completed; a walk may stop only at the names the raceguard Corefile trusts
// (d.trusted: the cluster domains for search infer, all of a fixed list); and a completion is sent
// only if both its replies, A and AAAA, fit the client's size.
func (d *harness) plan(q query, walk searchWalk) (walkPlan, error) {
	if q.do {
		return walkPlan{why: "the client validates (DO): a first try is never completed"}, nil
	}
	pair := func(name string) (a, aaaa *dns.Msg, err error) {
		if a, err = d.candidate(q, name, dns.TypeA); err != nil {
			return nil, nil, err
		}
		aaaa, err = d.candidate(q, name, dns.TypeAAAA)
		return a, aaaa, err
	}
	nx := func(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError }
	a, aaaa, err := pair(walk.names[0])
	if err != nil {
		return walkPlan{}, err
	}
	if !nx(a) || !nx(aaaa) {
		return walkPlan{why: fmt.Sprintf("the first try %s is not NXDOMAIN for both A and AAAA at stock (%s, %s): it is answered as asked",
			walk.names[0], dns.RcodeToString[a.Rcode], dns.RcodeToString[aaaa.Rcode])}, nil
	}
	ns, err := d.candidate(q, walk.namespace, dns.TypeA)
	if err != nil {
		return walkPlan{}, err
	}
	if ns.Rcode != dns.RcodeSuccess {
		return walkPlan{why: fmt.Sprintf("the inferred namespace %s is %s at stock: the walk is never completed", walk.namespace, dns.RcodeToString[ns.Rcode])}, nil
	}
	for i := 1; i < len(walk.names); i++ {
		if a, aaaa, err = pair(walk.names[i]); err != nil {
			return walkPlan{}, err
		}
		if nx(a) && nx(aaaa) {
			continue
		}
		clean := func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && !m.Truncated }
		if !clean(a) || !clean(aaaa) {
			return walkPlan{why: fmt.Sprintf("the walk stops at %s, where stock answers A %q and AAAA %q: a mixed or failed answer passes through",
				walk.names[i], flags(a), flags(aaaa))}, nil
		}
		if i >= d.trusted {
			return walkPlan{why: fmt.Sprintf("the walk would stop at %s, beyond the names the raceguard Corefile trusts (%d): it passes through",
				walk.names[i], d.trusted)}, nil
		}
		for _, m := range []*dns.Msg{a, aaaa} {
			if n := completedLen(q, walk.names[i], m); q.net == "udp" && n > q.limit() {
				return walkPlan{why: fmt.Sprintf("the completion to %s (%d bytes) would not fit the client's %d: it passes through",
					walk.names[i], n, q.limit())}, nil
			}
		}
		want := a
		if q.qtype == dns.TypeAAAA {
			want = aaaa
		}
		return walkPlan{complete: true, name: walk.names[i], want: want}, nil
	}
	return walkPlan{why: fmt.Sprintf("every name of the walk %v is NXDOMAIN at stock: the first try's NXDOMAIN is due", walk.names)}, nil
}

// completedLen is the size, compressed, of the completion of q by stock's reply m for name: q's
// question, a CNAME to name, then m's records; with the client's own OPT record.
func completedLen(q query, name string, m *dns.Msg) int {
	c := m.Copy()
	c.Question = []dns.Question{{Name: q.name, Qtype: m.Question[0].Qtype, Qclass: dns.ClassINET}}
	if len(c.Answer) > 0 {
		c.Answer = append([]dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: q.name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET}, Target: name}}, c.Answer...)
	}
	c.Extra = nil
	for _, rr := range m.Extra {
		if rr.Header().Rrtype != dns.TypeOPT {
			c.Extra = append(c.Extra, rr)
		}
	}
	if q.edns > 0 {
		c.SetEdns0(q.edns, q.do)
	}
	c.Compress = true
	return c.Len()
}

// candKey identifies a reply of stock for one name of a search walk.
type candKey struct {
	name         string // lower-cased
	qtype        uint16
	edns, do, cd bool
	rd           bool
}

// candidate returns stock's reply for name and qtype with q's flags, over TCP so that nothing is
// truncated (a walk's own queries advertise at least 1232 bytes).
func (d *harness) candidate(q query, name string, qtype uint16) (*dns.Msg, error) {
	k := candKey{name: name, qtype: qtype, edns: q.edns > 0, do: q.do, cd: q.cd, rd: q.rd}
	d.mu.Lock()
	m, ok := d.cand[k]
	d.mu.Unlock()
	if ok {
		return m, nil
	}
	cq := q
	cq.name, cq.qtype, cq.net, cq.id, cq.option, cq.version = name, qtype, "tcp", dns.Id(), 0, 0
	cq.group, cq.step, cq.tailOf = 0, 0, ""
	if cq.edns > 0 {
		cq.edns = 4096
	}
	wire, err := cq.msg().Pack()
	if err != nil {
		return nil, err
	}
	r, err := exchange("tcp", d.stock.addr, wire)
	if err != nil {
		return nil, fmt.Errorf("stock %v: %w", cq, err)
	}
	d.mu.Lock()
	d.cand[k] = r.msg
	d.candQueries++
	d.mu.Unlock()
	return r.msg, nil
}

// verifyCompletion checks that r, raceguard's reply to q, is the search completion of plan (s is
// stock's reply to q itself): a CNAME from the exact asked name to the name the walk stops at
// followed by stock's answer for it, or stock's NODATA for it. records reports which.
func (d *harness) verifyCompletion(q query, plan walkPlan, s *dns.Msg, r *reply) (records bool, p []string) {
	if !plan.complete {
		return false, []string{plan.why}
	}
	want, target := plan.want, plan.name
	m := r.msg
	if m.Rcode != dns.RcodeSuccess {
		p = append(p, fmt.Sprintf("rcode %s, want NOERROR", dns.RcodeToString[m.Rcode]))
	}
	if m.AuthenticatedData || m.RecursionAvailable != want.RecursionAvailable || m.Authoritative != want.Authoritative {
		p = append(p, fmt.Sprintf("flags %q, want AA and RA as stock's reply for %s (%q), and never AD", flags(m), target, flags(want)))
	}
	p = append(p, optDiff(s, m)...) // the client's own OPT, as stock gives it for this query
	truncated := m.Truncated
	if len(want.Answer) == 0 {
		if len(m.Answer) != 0 {
			p = append(p, fmt.Sprintf("answer %v, want stock's NODATA for %s", m.Answer, target))
		}
	} else {
		records = true
		var c dns.RR
		if len(m.Answer) > 0 {
			c = m.Answer[0]
		}
		cname, ok := c.(*dns.CNAME)
		switch {
		case !ok:
			p = append(p, fmt.Sprintf("first answer %v, want a CNAME %s -> %s", c, q.name, target))
		case cname.Hdr.Name != q.name || cname.Hdr.Class != dns.ClassINET:
			p = append(p, fmt.Sprintf("CNAME owner %q, want the exact asked name %q", cname.Hdr.Name, q.name))
		case !strings.EqualFold(cname.Target, target):
			p = append(p, fmt.Sprintf("CNAME target %s, want %s: the first name after the first try that is not NXDOMAIN for both A and AAAA at stock", cname.Target, target))
		}
		if ok {
			if e := setDiff("answer after the CNAME", want.Answer, m.Answer[1:], truncated); e != "" {
				p = append(p, e+" (stock's answer for "+target+")")
			}
		}
		if truncated {
			// A completion that does not fit passes through instead: a truncated completion holds
			// fewer records than the name's own reply would.
			p = append(p, "TC set on a completion: one that does not fit the client must pass through")
		}
	}
	if !truncated {
		if e := setDiff("authority", want.Ns, m.Ns, false); e != "" {
			p = append(p, e+" (stock's for "+target+")")
		}
		if e := setDiff("additional", want.Extra, m.Extra, false); e != "" {
			p = append(p, e+" (stock's for "+target+")")
		}
	}
	return records, p
}
