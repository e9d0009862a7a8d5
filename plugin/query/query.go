// Package query reads the few facts about a client's query that raceguard's mechanisms key
// their state on: who sent it, which DNSSEC bits it carries, and which of the A/AAAA pair it is.
// They live here once so that the search walk, the coalescer, the sibling prefetcher and the
// fingerprint tracker agree on them: a walk remembered for one client under one (DO, CD) pair
// must be found again by the same client's sibling query under the same pair.
package query

import (
	"net"
	"net/netip"

	"github.com/miekg/dns"
)

// ClientAddrPort returns the client's address and port, read from the writer's net.UDPAddr or
// net.TCPAddr without formatting and parsing them. An IPv4-mapped IPv6 address is left as it is;
// callers that key on the address alone use ClientAddr. A writer without a remote address gives
// the zero AddrPort.
func ClientAddrPort(w dns.ResponseWriter) netip.AddrPort {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort()
	case *net.TCPAddr:
		return a.AddrPort()
	case nil:
		return netip.AddrPort{}
	default:
		ap, _ := netip.ParseAddrPort(a.String())
		return ap
	}
}

// ClientAddr returns the client's address, IPv4-mapped IPv6 addresses unmapped so that one client
// reaching a dual-stack socket is one key.
func ClientAddr(w dns.ResponseWriter) netip.Addr {
	return ClientAddrPort(w).Addr().Unmap()
}

// DNSSECBits returns the query's DO bit (from its OPT record, false without one) and CD bit. Two
// queries that differ in either must not share an answer: the answer's RRSIGs and AD bit depend
// on them.
func DNSSECBits(r *dns.Msg) (do, cd bool) {
	if o := r.IsEdns0(); o != nil {
		do = o.Do()
	}
	return do, r.CheckingDisabled
}

// PairIndex maps AAAA to 1 and every other type, A included, to 0: the slot of a type in the
// per-name A/AAAA pairs the mechanisms keep.
func PairIndex(qtype uint16) int {
	if qtype == dns.TypeAAAA {
		return 1
	}
	return 0
}
