package collapse

import (
	"net"
	"strings"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/plugin/option"
)

// key is everything that can change a query's answer or whether a client may accept it; see the
// package comment for why each is here.
type key struct {
	name          string // lower-cased
	qtype, qclass uint16
	do, cd, rd    bool
	tcp           bool
	size          uint8 // UDP buffer size class; 0 over TCP
}

// Buffer size classes: no EDNS (512 bytes), EDNS below the 1232 bytes of DNS Flag Day 2020,
// 1232 up to 4095, and 4096 or more.
func sizeClass(size uint16) uint8 {
	switch {
	case size < 1232:
		return 1
	case size < 4096:
		return 2
	}
	return 3
}

// keyFor returns r's key, or false for a query that is never joined: not a plain QUERY with one
// question, outside zones, or with an EDNS client subnet.
func keyFor(w dns.ResponseWriter, r *dns.Msg, zones []string) (key, bool) {
	if r.Opcode != dns.OpcodeQuery || len(r.Question) != 1 {
		return key{}, false
	}
	q := r.Question[0]
	k := key{name: strings.ToLower(q.Name), qtype: q.Qtype, qclass: q.Qclass, cd: r.CheckingDisabled, rd: r.RecursionDesired}
	if !option.InZones(k.name, zones) {
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
