package differential

import (
	"fmt"
	"os"
	"regexp"
	"strconv"
	"strings"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
)

// zoneBounds is the zone data both servers answer from: every record (canonical, TTL zeroed) with
// its TTL, and the cap both Corefiles' cache puts on TTLs.
type zoneBounds struct {
	ttl map[string]uint32
	cap uint32 // 0: none
}

// zoneFile is a zone file (relative to the repository) and its origin.
type zoneFile struct{ path, origin string }

// labZones are the zones of the lab: the sample cluster zone and the upstream's external.db.
var labZones = []zoneFile{{"zones/cluster.local.db", "cluster.local."}, {"test/lab/external.db", "."}}

// loadBounds reads the zone files, and the cache's TTL cap from the Corefiles ("cache 30":
// stock caps even the reply of a miss, so no TTL above it reaches a client of either).
func loadBounds(zones []zoneFile, corefiles ...string) (*zoneBounds, error) {
	b := &zoneBounds{ttl: map[string]uint32{}}
	for _, c := range corefiles {
		m := regexp.MustCompile(`(?m)^\s*cache\s+(\d+)\s*$`).FindStringSubmatch(c)
		if m == nil {
			b.cap = 0
			break
		}
		n, _ := strconv.ParseUint(m[1], 10, 32)
		if b.cap == 0 || uint32(n) < b.cap {
			b.cap = uint32(n)
		}
	}
	for _, f := range zones {
		p, err := lab.RepoPath(f.path)
		if err != nil {
			return nil, err
		}
		fh, err := os.Open(p)
		if err != nil {
			return nil, err
		}
		zp := dns.NewZoneParser(fh, f.origin, p)
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			b.ttl[canon(rr)] = rr.Header().Ttl
		}
		fh.Close()
		if err := zp.Err(); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// max returns the highest TTL rr may carry: the TTL of the zone record it is, directly or
// synthesized from a wildcard. ok is false when the zone data has no such record. (An SOA in a
// negative answer is bounded by the SOA's own TTL, not by min(TTL, MINIMUM) as RFC 2308 §3 has
// it: CoreDNS's file plugin, stock's too, serves the SOA record as it is, 30 s for cluster.local.)
func (b *zoneBounds) max(rr dns.RR) (uint32, bool) {
	if ttl, ok := b.ttl[canon(rr)]; ok {
		return ttl, true
	}
	c := dns.Copy(rr)
	labels := dns.SplitDomainName(rr.Header().Name)
	for i := 1; i < len(labels); i++ {
		c.Header().Name = "*." + dns.Fqdn(strings.Join(labels[i:], "."))
		if ttl, ok := b.ttl[canon(c)]; ok {
			return ttl, true
		}
	}
	return 0, false
}

// check reports the records of m that are not in the zone data or carry a TTL above it. With
// completion, m's first answer is search completion's synthesized CNAME, whose TTL must not
// outlive the records it leads to.
func (b *zoneBounds) check(m *dns.Msg, completion bool) []string {
	var p []string
	for s, rrs := range [][]dns.RR{m.Answer, m.Ns, m.Extra} {
		for i, rr := range rrs {
			if rr.Header().Rrtype == dns.TypeOPT {
				continue
			}
			if completion && s == 0 && i == 0 {
				for _, next := range m.Answer[1:] {
					if rr.Header().Ttl > next.Header().Ttl {
						p = append(p, fmt.Sprintf("completion CNAME TTL %d above the TTL %d of %v", rr.Header().Ttl, next.Header().Ttl, next))
						break
					}
				}
				continue
			}
			ttl, ok := b.max(rr)
			switch {
			case !ok:
				p = append(p, fmt.Sprintf("record not in the zone data: %v", rr))
			case rr.Header().Ttl > ttl:
				p = append(p, fmt.Sprintf("TTL %d above the zone's %d: %v", rr.Header().Ttl, ttl, rr))
			case b.cap > 0 && rr.Header().Ttl > b.cap:
				p = append(p, fmt.Sprintf("TTL %d above the cache's cap %d: %v", rr.Header().Ttl, b.cap, rr))
			}
		}
	}
	return p
}

// canon is rr's presentation with TTL 0 and its domain names lower-cased: names compare
// case-insensitively (RFC 4343), and which client's 0x20 case a cache kept is no difference.
func canon(rr dns.RR) string {
	rr = dns.Copy(rr)
	h := rr.Header()
	h.Ttl = 0
	h.Name = strings.ToLower(h.Name)
	switch v := rr.(type) {
	case *dns.CNAME:
		v.Target = strings.ToLower(v.Target)
	case *dns.NS:
		v.Ns = strings.ToLower(v.Ns)
	case *dns.SRV:
		v.Target = strings.ToLower(v.Target)
	case *dns.MX:
		v.Mx = strings.ToLower(v.Mx)
	case *dns.PTR:
		v.Ptr = strings.ToLower(v.Ptr)
	case *dns.SOA:
		v.Ns, v.Mbox = strings.ToLower(v.Ns), strings.ToLower(v.Mbox)
	}
	return rr.String()
}
