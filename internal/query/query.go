package query

import (
	"context"
	"net"
	"net/netip"
	"strings"

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

// InZones reports whether name (lower-cased, fully qualified) is one of zones or below one. It
// runs for every query, so it compares suffixes instead of splitting labels.
func InZones(name string, zones []string) bool {
	for _, z := range zones {
		if z == "." || name == z || strings.HasSuffix(name, z) && name[len(name)-len(z)-1] == '.' {
			return true
		}
	}
	return false
}

type ownKey struct{}

// MarkOwn returns ctx marked as carrying a query raceguard makes on its own behalf: a search
// walk's try or a sibling prefetch. Such a query triggers no sibling prefetch (a walk resolves
// both types itself, and a prefetch must not set off another).
func MarkOwn(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownKey{}, true)
}

// Own reports whether ctx was marked by MarkOwn.
func Own(ctx context.Context) bool {
	v, _ := ctx.Value(ownKey{}).(bool)
	return v
}
