package query

import (
	"net/netip"

	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

// Query is a client's A or AAAA query and the facts raceguard works out of it once, for every
// mechanism that looks at it: the handler makes it on its stack, and hands it down by pointer
// (or by value to a goroutine that outlives the query).
type Query struct {
	W dns.ResponseWriter
	R *dns.Msg

	Name   string         // the question's name, lower-cased (Lower)
	Type   uint16         // dns.TypeA or dns.TypeAAAA
	From   netip.AddrPort // the client's address and port, as the writer reports them
	Client netip.Addr     // the client's address, an IPv4-mapped one unmapped (ClientAddr)

	flags    Flags // set by Flags on first use
	hasFlags bool
}

// Flags are the parts of a query, beyond its name and type, that can change its answer or whether
// a reply fits it: its DNSSEC bits, its transport and the size its reply may have.
type Flags struct {
	DO, CD bool
	TCP    bool
	Size   uint16 // the client's reply size: its EDNS size over UDP (at least 512), 65535 over TCP
}

// New returns the facts of the A or AAAA query r from w, r's name lower-cased as name. It
// allocates nothing.
func New(w dns.ResponseWriter, r *dns.Msg, name string) Query {
	from := ClientAddrPort(w)
	return Query{W: w, R: r, Name: name, Type: r.Question[0].Qtype, From: from, Client: from.Addr().Unmap()}
}

// Flags returns q's Flags, working them out on first use.
func (q *Query) Flags() Flags {
	if !q.hasFlags {
		q.flags, q.hasFlags = FlagsOf(q.W, q.R), true
	}
	return q.flags
}

// FlagsOf returns the Flags of r from w, the transport and size as CoreDNS reads them
// (request.Request's Proto and Size).
func FlagsOf(w dns.ResponseWriter, r *dns.Msg) Flags {
	state := request.Request{W: w, Req: r}
	do, cd := DNSSECBits(r)
	return Flags{DO: do, CD: cd, TCP: state.Proto() == "tcp", Size: uint16(state.Size())}
}
