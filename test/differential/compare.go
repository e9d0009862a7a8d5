package differential

import (
	"fmt"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// recordSet is a section as a sorted multiset of canonical records, OPT left out.
func recordSet(rrs []dns.RR) []string {
	var s []string
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			s = append(s, canon(rr))
		}
	}
	slices.Sort(s)
	return s
}

// setDiff describes how section got differs from want, or "" when they are equal. With
// subset, got may lack records of want (a truncated reply) but hold none it lacks.
func setDiff(what string, want, got []dns.RR, subset bool) string {
	w, g := recordSet(want), recordSet(got)
	if slices.Equal(w, g) {
		return ""
	}
	count := map[string]int{}
	for _, s := range w {
		count[s]++
	}
	for _, s := range g {
		count[s]--
	}
	var missing, extra []string
	for s, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, s)
		}
		for ; n < 0; n++ {
			extra = append(extra, s)
		}
	}
	if subset && len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("%s differs: missing %q, extra %q", what, missing, extra)
}

// optDiff compares the OPT records of two replies.
func optDiff(want, got *dns.Msg) []string {
	wo, gotOpt := want.IsEdns0(), got.IsEdns0()
	switch {
	case wo == nil && gotOpt == nil:
		return nil
	case wo == nil || gotOpt == nil:
		return []string{fmt.Sprintf("OPT present %v, want %v", gotOpt != nil, wo != nil)}
	}
	var p []string
	if wo.UDPSize() != gotOpt.UDPSize() {
		p = append(p, fmt.Sprintf("OPT UDP size %d, want %d", gotOpt.UDPSize(), wo.UDPSize()))
	}
	if wo.Do() != gotOpt.Do() {
		p = append(p, fmt.Sprintf("OPT DO %v, want %v", gotOpt.Do(), wo.Do()))
	}
	if wo.Version() != gotOpt.Version() {
		p = append(p, fmt.Sprintf("OPT version %d, want %d", gotOpt.Version(), wo.Version()))
	}
	if wo.Hdr.Ttl&0xffff != gotOpt.Hdr.Ttl&0xffff {
		p = append(p, fmt.Sprintf("OPT flags %#04x, want %#04x", gotOpt.Hdr.Ttl&0xffff, wo.Hdr.Ttl&0xffff))
	}
	codes := func(o *dns.OPT) []uint16 {
		var c []uint16
		for _, e := range o.Option {
			c = append(c, e.Option())
		}
		slices.Sort(c)
		return c
	}
	if w, g := codes(wo), codes(gotOpt); !slices.Equal(w, g) {
		p = append(p, fmt.Sprintf("OPT option codes %v, want %v", g, w))
	}
	return p
}

// flags is a reply's rcode and header flags.
func flags(m *dns.Msg) string {
	f := fmt.Sprintf("%s opcode=%d", dns.RcodeToString[m.Rcode], m.Opcode)
	for _, b := range []struct {
		name string
		set  bool
	}{{"qr", m.Response}, {"aa", m.Authoritative}, {"tc", m.Truncated}, {"rd", m.RecursionDesired}, {"ra", m.RecursionAvailable}, {"z", m.Zero}, {"ad", m.AuthenticatedData}, {"cd", m.CheckingDisabled}} {
		if b.set {
			f += " " + b.name
		}
	}
	return f
}

// echo reports what in reply r does not echo query q: its ID, the question byte for byte, QR,
// RD and CD, and a UDP size within the client's.
func echo(q query, qwire []byte, r *reply) []string {
	var p []string
	if r.msg.Id != q.id {
		p = append(p, fmt.Sprintf("ID %d, want %d", r.msg.Id, q.id))
	}
	want, _ := questionBytes(qwire)
	got, err := questionBytes(r.raw)
	switch {
	case err != nil:
		p = append(p, "question: "+err.Error())
	case string(got) != string(want):
		p = append(p, fmt.Sprintf("question bytes %q, want the query's %q", got, want))
	}
	if !r.msg.Response || r.msg.RecursionDesired != q.rd || r.msg.CheckingDisabled != q.cd {
		p = append(p, fmt.Sprintf("flags %s do not echo the query's RD=%v CD=%v", flags(r.msg), q.rd, q.cd))
	}
	if q.net == "udp" && len(r.raw) > q.limit() {
		p = append(p, fmt.Sprintf("%d-byte UDP reply to a client that takes %d", len(r.raw), q.limit()))
	}
	if q.net == "tcp" && r.msg.Truncated {
		p = append(p, "TC set over TCP")
	}
	return p
}

// replyDiff lists how reply r differs from reply s to the same query.
func replyDiff(s, r *dns.Msg) []string {
	var p []string
	if fs, fr := flags(s), flags(r); fs != fr {
		p = append(p, fmt.Sprintf("rcode/flags %q, stock %q", fr, fs))
	}
	for i, sec := range [][2][]dns.RR{{s.Answer, r.Answer}, {s.Ns, r.Ns}, {s.Extra, r.Extra}} {
		if d := setDiff([]string{"answer", "authority", "additional"}[i], sec[0], sec[1], false); d != "" {
			p = append(p, d)
		}
	}
	return append(p, optDiff(s, r)...)
}

// judge compares the replies s (stock) and r (raceguard) to q, whose wire message is qwire.
func (d *harness) judge(q query, qwire []byte, s, r *reply) (completed bool) {
	d.mu.Lock()
	d.compared++
	d.mu.Unlock()
	var p []string
	for _, e := range echo(q, qwire, s) {
		p = append(p, "stock: "+e)
	}
	for _, e := range d.bounds.check(s.msg, false) {
		p = append(p, "stock: "+e)
	}
	for _, e := range echo(q, qwire, r) {
		p = append(p, "raceguard: "+e)
	}
	diff := replyDiff(s.msg, r.msg)
	walk, walkable := walkOf(strings.ToLower(q.name), d.namespace)
	walkable = walkable && (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA)
	if len(diff) == 0 {
		for _, e := range d.bounds.check(r.msg, false) {
			p = append(p, "raceguard: "+e)
		}
		if walkable && q.tailOf == "" && s.msg.Rcode == dns.RcodeNameError {
			// As stock: right unless README.md says this first try is completed.
			plan, err := d.plan(q, walk)
			switch {
			case err != nil:
				p = append(p, err.Error())
			case plan.complete:
				p = append(p, fmt.Sprintf("raceguard answered as stock, but README.md's search completion completes this first try to %s (stock answers it %q)",
					plan.name, flags(plan.want)))
			}
		}
		if len(p) > 0 {
			d.fail(q, s, r, p)
			return false
		}
		d.mu.Lock()
		d.identical++
		d.mu.Unlock()
		return false
	}
	if q.tailOf != "" {
		p = append(p, diff...)
		d.fail(q, s, r, append(p, fmt.Sprintf("raceguard completed a later try of the walk this client started with %s on this server, "+
			"after its replies to the earlier tries had no records, so the client walked on (as glibc and Go do after NXDOMAIN and NODATA). "+
			"Not documented: README.md says such a client keeps walking \"as it would have\", and that \"on the replica that saw the first "+
			"try the tail is remembered and never completed\". The client now stops with the records of another name than the one it looks up", q.tailOf)))
		return false
	}
	// The documented difference: search completion of an A or AAAA first try.
	if !walkable {
		d.fail(q, s, r, append(p, diff...))
		return false
	}
	plan, err := d.plan(q, walk)
	if err != nil {
		d.fail(q, s, r, append(append(p, diff...), err.Error()))
		return false
	}
	records, cp := d.verifyCompletion(q, plan, s.msg, r)
	if len(cp) > 0 {
		p = append(p, diff...)
		p = append(p, "and not the documented search completion either:")
		d.fail(q, s, r, append(p, cp...))
		return false
	}
	for _, e := range d.bounds.check(r.msg, records) {
		p = append(p, "raceguard: "+e)
	}
	if len(p) > 0 {
		d.fail(q, s, r, p)
		return false
	}
	d.mu.Lock()
	if records {
		d.completedRecords++
	} else {
		d.completedNoData++
	}
	d.mu.Unlock()
	return true
}
