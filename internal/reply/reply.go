package reply

import "github.com/miekg/dns"

// For returns the reply to req built from shared, which is left untouched.
func For(shared, req *dns.Msg) *dns.Msg {
	m := shared.Copy()
	m.Id = req.Id
	m.Response = true
	m.Opcode = req.Opcode
	m.Question = append(make([]dns.Question, 0, len(req.Question)), req.Question...)
	m.RecursionDesired = req.RecursionDesired
	m.CheckingDisabled = req.CheckingDisabled

	ro := req.IsEdns0()
	m.AuthenticatedData = shared.AuthenticatedData && (req.AuthenticatedData || (ro != nil && ro.Do()))

	var opt *dns.OPT
	extra := m.Extra[:0]
	for _, rr := range m.Extra {
		if o, ok := rr.(*dns.OPT); ok {
			opt = o
			continue
		}
		extra = append(extra, rr)
	}
	m.Extra = extra
	if ro == nil {
		return m
	}
	out := &dns.OPT{Hdr: dns.RR_Header{Name: ".", Rrtype: dns.TypeOPT}}
	out.SetUDPSize(ro.UDPSize())
	if ro.Do() {
		out.SetDo()
	}
	if opt != nil { // rcodes above 15 need no copying: Pack moves them into the OPT record
		for _, o := range opt.Option {
			switch o.Option() {
			case dns.EDNS0COOKIE, dns.EDNS0SUBNET, dns.EDNS0PADDING, dns.EDNS0TCPKEEPALIVE:
			default:
				out.Option = append(out.Option, o)
			}
		}
	}
	m.Extra = append(m.Extra, out)
	return m
}
