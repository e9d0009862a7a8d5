package query

import (
	"context"
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"unsafe"

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

// Lower returns name with ASCII upper case lowered, and name itself, without a copy, when it has
// none: the common case, which it tells eight bytes at a time, the last eight overlapping the
// ones before. (DNS names compare ASCII case-insensitively, RFC 4343; other bytes are left as
// they are.)
func Lower(name string) string {
	n := len(name)
	if n < 8 {
		for i := 0; i < n; i++ {
			if c := name[i]; 'A' <= c && c <= 'Z' {
				return lowerFrom(name, i)
			}
		}
		return name
	}
	b := unsafe.Slice(unsafe.StringData(name), n) // read only: the string's own bytes
	for i := 0; i < n-8; i += 8 {
		if hasUpper8(binary.LittleEndian.Uint64(b[i:])) {
			return lowerFrom(name, i)
		}
	}
	if hasUpper8(binary.LittleEndian.Uint64(b[n-8:])) {
		return lowerFrom(name, n-8)
	}
	return name
}

// hasUpper8 reports whether any of the eight bytes of x is an ASCII upper-case letter ('A' 0x41
// to 'Z' 0x5a), without a branch per byte: a byte b is one iff b+(0x80-0x41) sets its top bit and
// b+(0x80-0x5b) does not, for b below 0x80.
func hasUpper8(x uint64) bool {
	const ones, high = 0x0101010101010101, 0x8080808080808080
	low := x &^ high // bytes at 0x80 and above are no letter: look at their low bits only, masked below
	ge := low + ones*(0x80-'A')
	gt := low + ones*(0x80-'Z'-1)
	return (ge&^gt)&^x&high != 0
}

// lowerFrom lowers name from byte i on, where the first upper-case letter is.
func lowerFrom(name string, i int) string {
	b := []byte(name)
	for ; i < len(b); i++ {
		if c := b[i]; 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// Sibling returns the other address type of an A or AAAA query: AAAA for A, A for AAAA, and 0
// for any other type.
func Sibling(qtype uint16) uint16 {
	switch qtype {
	case dns.TypeA:
		return dns.TypeAAAA
	case dns.TypeAAAA:
		return dns.TypeA
	}
	return 0
}
