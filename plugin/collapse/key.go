package collapse

import (
	"net"
	"strings"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

// key is everything that can change a query's answer or whether a client may accept it; see the
// package comment for why each is here.
type key struct {
	name          string // lower-cased
	qtype, qclass uint16
	do, cd, rd    bool
	tcp           bool
	size          uint8 // UDP buffer size class (sizeClass); 0 without EDNS, and always 0 over TCP
}

// sizeClass is the class of an EDNS UDP buffer size: 1 below the 1232 bytes of DNS Flag Day 2020,
// 2 from 1232 up to 4095, 3 for 4096 or more. A query without EDNS (512 bytes) is class 0.
func sizeClass(size uint16) uint8 {
	switch {
	case size < 1232:
		return 1
	case size < 4096:
		return 2
	}
	return 3
}

// keyFor returns r's key, or false for a query that is never collapsed: not a plain QUERY with one
// question, outside zones, or with an EDNS client subnet.
func keyFor(w dns.ResponseWriter, r *dns.Msg, zones []string) (key, bool) {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return key{}, false
	}
	q := r.Question[0]
	k := key{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: r.CheckingDisabled, rd: r.RecursionDesired}
	if !query.InZones(k.name, zones) {
		return key{}, false
	}
	_, k.tcp = w.RemoteAddr().(*net.TCPAddr)
	if o := r.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if opt.Option() == dns.EDNS0SUBNET {
				return key{}, false
			}
		}
		k.do = o.Do()
		if !k.tcp {
			k.size = sizeClass(o.UDPSize())
		}
	}
	return k, true
}
