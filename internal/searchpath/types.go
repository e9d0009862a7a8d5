package searchpath

import "github.com/miekg/dns"

// types are the address types a walk resolves: both, or the one its client asks alone so far.
type types uint8

const (
	typeA     types = 1 << iota // A
	typeAAAA                    // AAAA
	bothTypes = typeA | typeAAAA
)

// typesFor returns the types of the walk of a query of qtype from a client that asked the other
// address type recently, or not.
func typesFor(qtype uint16, askedOther bool) types {
	switch {
	case askedOther:
		return bothTypes
	case qtype == dns.TypeAAAA:
		return typeAAAA
	}
	return typeA
}

// has reports whether ts includes qtype.
func (ts types) has(qtype uint16) bool {
	if qtype == dns.TypeAAAA {
		return ts&typeAAAA != 0
	}
	return ts&typeA != 0
}

// classes returns the classes of a name's A and AAAA answers for the stopping rule. A type the
// walk does not resolve counts as what the other one is: a client that asks one type alone stops
// where that type does.
func (ts types) classes(p [2]answer) (class, class) {
	switch ts {
	case typeA:
		return p[0].class(), p[0].class()
	case typeAAAA:
		return p[1].class(), p[1].class()
	}
	return p[0].class(), p[1].class()
}
