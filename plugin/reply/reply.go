// Package reply turns a response that was resolved once into the reply one particular client
// gets. raceguard answers clients with messages it did not resolve for them: a search walk's
// answer, a candidate's remembered NXDOMAIN, a coalesced leader's response. Each such reply must
// look exactly as if it had been resolved for that client:
//
//   - a deep copy, never the shared message (miekg/dns#459: concurrent writers of one *dns.Msg);
//   - the client's message ID (miekg/dns#1145 gave waiters the leader's);
//   - the client's question, byte for byte, 0x20 case included;
//   - the client's RD and CD bits, and AD only if the client set DO or AD (RFC 6840 §5.7-5.8);
//   - the client's own EDNS: an OPT record only if the client sent one, with the client's UDP
//     size and DO bit, keeping the response's options except those that belong to one client or
//     one connection (COOKIE, client subnet, padding, TCP keepalive).
//
// Truncation to the client's size is left to the server's ScrubWriter, which every reply passes.
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
