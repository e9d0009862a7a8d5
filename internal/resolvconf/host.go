package resolvconf

import (
	"strings"

	"github.com/miekg/dns"
)

// Host checks a domain name raceguard takes from its operators (the zones, search and cluster
// domains of a Corefile, the search domains of a resolv.conf): it reports whether s is the root or a host-style domain name (letters, digits, '-' and '_'
// in labels of 1 to 63 bytes, at most 254 bytes in all), and returns it fully qualified and
// lower-cased. miekg/dns accepts almost any bytes in a name; a search domain with a '!' or a
// space in it is a typo, not a domain.
func Host(s string) (string, bool) {
	fq := strings.ToLower(dns.Fqdn(s))
	if fq == "." {
		return fq, true
	}
	if _, ok := dns.IsDomainName(fq); !ok || len(fq) > 254 {
		return "", false
	}
	for _, label := range strings.Split(fq[:len(fq)-1], ".") {
		if len(label) == 0 || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			return "", false
		}
	}
	return fq, true
}
