package differential

import (
	"fmt"
	"net"

	"github.com/miekg/dns"
)

// query is one query of the corpus: everything that goes into its wire message.
type query struct {
	name   string // as sent, 0x20 case included
	qtype  uint16
	edns   uint16 // advertised UDP size; 0: no OPT record
	do, cd bool
	rd     bool
	net    string // "udp" or "tcp"
	id     uint16

	option  uint16 // with EDNS, an option sent: client subnet, a cookie or an unknown code
	version uint8  // with EDNS, its version (1: BADVERS from both)

	// A query of a lookup (group > 0) is one try of a client walking its search list: step is
	// the index of its name in the walk, tailOf the first try's name for the later ones.
	group, step int
	tailOf      string
}

// ednsOptions are the EDNS options some queries carry.
var ednsOptions = []dns.EDNS0{
	&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()},
	&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"},
	&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("raceguard")},
}

func (q query) String() string {
	edns := "no EDNS"
	if q.edns > 0 {
		edns = fmt.Sprintf("EDNS %d DO=%v", q.edns, q.do)
		if q.option != 0 {
			edns += fmt.Sprintf(" option %d", q.option)
		}
		if q.version != 0 {
			edns += fmt.Sprintf(" version %d", q.version)
		}
	}
	s := fmt.Sprintf("%s %s (%s, %s, CD=%v, RD=%v, ID %d)", q.name, dns.TypeToString[q.qtype], q.net, edns, q.cd, q.rd, q.id)
	if q.tailOf != "" {
		s += fmt.Sprintf(", try %d of the walk of %s", q.step+1, q.tailOf)
	}
	return s
}

func (q query) msg() *dns.Msg {
	m := new(dns.Msg)
	m.Id = q.id
	m.RecursionDesired = q.rd
	m.CheckingDisabled = q.cd
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: dns.ClassINET}}
	if q.edns > 0 {
		m.SetEdns0(q.edns, q.do)
		o := m.IsEdns0()
		o.SetVersion(q.version)
		for _, e := range ednsOptions {
			if e.Option() == q.option {
				o.Option = append(o.Option, e)
			}
		}
	}
	return m
}

// limit is the largest UDP reply the query's client accepts.
func (q query) limit() int {
	if q.edns == 0 {
		return dns.MinMsgSize
	}
	return max(dns.MinMsgSize, int(q.edns))
}
