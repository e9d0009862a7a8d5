package test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/lab"
	"github.com/raceguard/raceguard/test/testenv"
)

// TestDifferential is a respdiff-style differential check: one deterministic corpus of queries
// (0x20 mixed case, with and without EDNS, buffer sizes 512/1232/4096, DO and CD on and off, a few
// EDNS options and a BADVERS, UDP and TCP, answers, CNAMEs, wildcards, NXDOMAIN, NODATA, SERVFAIL,
// truncation, and the search expansions a pod in namespace "default" sends, alone and as clients
// walking their search list) goes, as identical wire messages, to stock CoreDNS and to the
// raceguard build: the same binary on loopback, forwarding to one upstream, serving the sample
// cluster zone, with lab.StockCorefile and lab.RaceguardCorefile. Each query goes to stock first,
// then to raceguard. Every reply pair must agree on rcode, flags, question bytes, answer,
// authority and additional sections (as sets, names compared case-insensitively, TTLs zeroed) and
// OPT record; both replies must echo the query's ID and question bytes and fit the client's UDP
// size; every record of either must exist in the zone data with a TTL never above the zone's nor
// the cache's cap.
//
// The one difference README.md documents, search completion of an A or AAAA first try, is
// verified against stock's answers for the names of the walk instead of being skipped, and a
// first try that README.md says is completed must be. Bursts of identical queries check that
// collapse and the sibling prefetch change no answer. The WalkTail subtest checks the later tries
// of clients that walk on after a completion answered NODATA.
func TestDifferential(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	bounds, err := dxLoadBounds(dxLabZones, lab.StockCorefile, lab.RaceguardCorefile)
	if err != nil {
		t.Fatal(err)
	}
	up := testenv.LoopbackUpstream(t)
	dir := t.TempDir()
	stock := dxStart(t, bin, dir, "stock", lab.StockCorefile, up.Addr)
	rg := dxStart(t, bin, dir, "raceguard", lab.RaceguardCorefile, up.Addr)

	d := &dxRun{t: t, stock: stock, rg: rg, bounds: bounds, cand: map[dxCandKey]*dns.Msg{}}
	start := time.Now()
	d.bursts(up) // first, while big.example.com is new to both caches
	corpus := dxCorpus()
	d.run(corpus)
	d.truncation()
	d.summary(fmt.Sprintf("%d corpus, %d truncation checks, %d in bursts", len(corpus)-d.skipped, d.truncChecks, d.burstQueries), start)

	// The corpus must keep exercising what it is meant to compare.
	text, err := lab.ScrapeURL("", "http://"+rg.metrics+"/metrics")
	if err != nil {
		t.Fatal(err)
	}
	ms := lab.ParseMetrics(text)
	var walks []string
	for _, o := range []string{"answered", "as_asked", "passed_through", "exhausted"} {
		walks = append(walks, fmt.Sprintf("%s %v", o, ms.Sum("coredns_raceguard_search_walks_total", map[string]string{"outcome": o})))
	}
	coverage := map[string]float64{}
	for _, m := range []string{"search_remembered_total", "collapsed_total", "collapsed_retransmits_total", "sibling_prefetches_total", "sibling_prefetch_hits_total", "collapse_overflows_total"} {
		coverage[m] = ms.Sum("coredns_raceguard_"+m, nil)
	}
	t.Logf("raceguard: walks %s; remembered answers %v; collapsed %v; sibling prefetches %v (hits %v)",
		strings.Join(walks, ", "), coverage["search_remembered_total"], coverage["collapsed_total"],
		coverage["sibling_prefetches_total"], coverage["sibling_prefetch_hits_total"])
	if d.completedRecords == 0 || d.completedNoData == 0 {
		t.Errorf("Expected the corpus to exercise completions with records and NODATA, got %d and %d", d.completedRecords, d.completedNoData)
	}
	for _, m := range []string{"search_remembered_total", "collapsed_total", "sibling_prefetches_total"} {
		if coverage[m] == 0 {
			t.Errorf("Expected the corpus to exercise coredns_raceguard_%s, got 0", m)
		}
	}
	if t.Failed() {
		t.Logf("logs in %s (stock.log, raceguard.log)", dir)
	}

	t.Run("WalkTail", func(t *testing.T) { dxWalkTail(t, bin) })
}

// dxWalkTail is the differential of clients that walk on after a search completion answered their
// first try with NODATA, as README.md's "Search completion" says a single-family glibc lookup does
// ("keeps walking, as it would have"; so do glibc's A+AAAA pair when neither has records, and Go's
// resolver). It needs names the lab's upstream lacks, so it runs its own: the same binary serving
// testdata/differential/tail.db, where store.example.shop has only an A record and
// mail.example.shop no address at all, while store.example and mail.example have both. "shop" is
// a namespace of the sample cluster zone, so the client's second try,
// store.example.shop.svc.cluster.local, is byte for byte the first try of a pod in namespace
// "shop" looking up store.example. Every try after the first must be answered as stock answers it.
func dxWalkTail(t *testing.T, bin string) {
	zone, err := lab.RepoPath("test/testdata/differential/tail.db")
	if err != nil {
		t.Fatal(err)
	}
	zones := []dxZone{dxLabZones[0], {"test/testdata/differential/tail.db", "."}}
	bounds, err := dxLoadBounds(zones, lab.StockCorefile, lab.RaceguardCorefile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	port := testenv.FreeUDPTCPPort(t)
	up, err := lab.StartProcess("", bin, dir, "upstream", ".:"+port+" {\n    bind 127.0.0.1\n    file "+zone+" .\n}\n", "127.0.0.1:"+port)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(up.Stop)
	stock := dxStart(t, bin, dir, "stock", lab.StockCorefile, "127.0.0.1:"+port)
	rg := dxStart(t, bin, dir, "raceguard", lab.RaceguardCorefile, "127.0.0.1:"+port)
	d := &dxRun{t: t, stock: stock, rg: rg, bounds: bounds, cand: map[dxCandKey]*dns.Msg{}}

	rng := rand.New(rand.NewPCG(7, 7))
	var corpus []dxQuery
	group := 0
	for _, l := range []struct {
		base  string
		types []uint16
	}{
		{"store.example.shop", []uint16{dns.TypeAAAA}},            // AF_INET6 lookup of an IPv4-only name
		{"mail.example.shop", []uint16{dns.TypeA, dns.TypeAAAA}},  // AF_UNSPEC lookup of a name without addresses
		{"store.example.shop", []uint16{dns.TypeA, dns.TypeAAAA}}, // AF_UNSPEC: the A completes, the client stops
		{"store.example.shop", []uint16{dns.TypeA}},               // AF_INET: likewise
	} {
		for _, c := range []dxQuery{{rd: true, net: "udp"}, {edns: 1232, rd: true, net: "udp"}, {edns: 4096, do: true, cd: true, rd: true, net: "tcp"}} {
			group++
			corpus = append(corpus, dxLookup(rng, group, l.base, l.types, c)...)
		}
	}
	start := time.Now()
	d.run(corpus)
	d.summary(fmt.Sprintf("%d tries of %d lookups", len(corpus)-d.skipped, group), start)
	if t.Failed() {
		t.Logf("logs in %s (upstream.log, stock.log, raceguard.log)", dir)
	}
}

// summary logs the counts of d and checks each query was counted once.
func (d *dxRun) summary(parts string, start time.Time) {
	d.t.Logf("differential: %d queries compared (%s) in %v: %d identical, %d documented search completions verified against stock (%d CNAME+records, %d NODATA), %d differences; %d later tries not sent (their client had its answer); %d extra stock queries for the walks",
		d.compared, parts, time.Since(start).Round(time.Millisecond),
		d.identical, d.completedRecords+d.completedNoData, d.completedRecords, d.completedNoData, d.failures, d.skipped, d.candQueries)
	if d.compared != d.identical+d.completedRecords+d.completedNoData+d.failures {
		d.t.Errorf("Expected every query counted once, got %d compared, %d identical, %d completed, %d differences",
			d.compared, d.identical, d.completedRecords+d.completedNoData, d.failures)
	}
}

// dxServer is one CoreDNS process on loopback.
type dxServer struct {
	name    string
	addr    string
	metrics string // prometheus listen address
	p       *lab.Process
}

// dxStart runs the CoreDNS binary bin on corefile (a lab Corefile template) on a free loopback
// port, bound to 127.0.0.1 as bench's startLoopback does, forwarding to upstream.
func dxStart(t *testing.T, bin, dir, name, corefile, upstream string) *dxServer {
	t.Helper()
	port, metrics := testenv.FreeUDPTCPPort(t), testenv.FreeUDPTCPPort(t)
	text, err := lab.Render(corefile, lab.CorefileData{Port: port, Metrics: "127.0.0.1:" + metrics, Upstream: upstream}, dir)
	if err != nil {
		t.Fatal(err)
	}
	text = strings.Replace(text, "errors\n", "bind 127.0.0.1\n    errors\n", 1)
	addr := "127.0.0.1:" + port
	p, err := lab.StartProcess("", bin, dir, name, text, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	return &dxServer{name: name, addr: addr, metrics: "127.0.0.1:" + metrics, p: p}
}

// dxQuery is one query of the corpus: everything that goes into its wire message.
type dxQuery struct {
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

// dxOptions are the EDNS options some queries carry.
var dxOptions = []dns.EDNS0{
	&dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: net.IPv4(192, 0, 2, 0).To4()},
	&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0123456789abcdef"},
	&dns.EDNS0_LOCAL{Code: 65001, Data: []byte("raceguard")},
}

func (q dxQuery) String() string {
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

func (q dxQuery) msg() *dns.Msg {
	m := new(dns.Msg)
	m.Id = q.id
	m.RecursionDesired = q.rd
	m.CheckingDisabled = q.cd
	m.Question = []dns.Question{{Name: q.name, Qtype: q.qtype, Qclass: dns.ClassINET}}
	if q.edns > 0 {
		m.SetEdns0(q.edns, q.do)
		o := m.IsEdns0()
		o.SetVersion(q.version)
		for _, e := range dxOptions {
			if e.Option() == q.option {
				o.Option = append(o.Option, e)
			}
		}
	}
	return m
}

// limit is the largest UDP reply the query's client accepts.
func (q dxQuery) limit() int {
	if q.edns == 0 {
		return dns.MinMsgSize
	}
	return max(dns.MinMsgSize, int(q.edns))
}

// dxReply is a reply as received: its bytes and their parse.
type dxReply struct {
	raw []byte
	msg *dns.Msg
}

func (r *dxReply) String() string {
	if r == nil {
		return "<no reply>"
	}
	return fmt.Sprintf("(%d bytes)\n%v", len(r.raw), r.msg)
}

// dxExchange sends wire to addr over network and returns the reply, read into a 64 KiB buffer
// (for UDP) so that a reply larger than the client asked for is seen, not cut. A UDP query is
// resent from the same socket with the same bytes if no reply comes in 2 s, as a stub would.
func dxExchange(network, addr string, wire []byte) (*dxReply, error) {
	conn, err := net.DialTimeout(network, addr, 2*time.Second)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	var raw []byte
	if network == "tcp" {
		conn.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := conn.Write(append(binary.BigEndian.AppendUint16(nil, uint16(len(wire))), wire...)); err != nil {
			return nil, err
		}
		var l [2]byte
		if _, err := io.ReadFull(conn, l[:]); err != nil {
			return nil, err
		}
		raw = make([]byte, binary.BigEndian.Uint16(l[:]))
		if _, err := io.ReadFull(conn, raw); err != nil {
			return nil, err
		}
	} else {
		buf := make([]byte, 65535)
		id := binary.BigEndian.Uint16(wire)
		for try := 0; ; try++ {
			if _, err := conn.Write(wire); err != nil {
				return nil, err
			}
			conn.SetReadDeadline(time.Now().Add(2 * time.Second))
			n, err := conn.Read(buf)
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() && try < 3 {
				continue
			}
			if err != nil {
				return nil, err
			}
			if n >= 2 && binary.BigEndian.Uint16(buf) != id {
				return nil, fmt.Errorf("reply with ID %d to query ID %d", binary.BigEndian.Uint16(buf), id)
			}
			raw = slices.Clone(buf[:n])
			break
		}
	}
	m := new(dns.Msg)
	if err := m.Unpack(raw); err != nil {
		return &dxReply{raw: raw}, fmt.Errorf("unpack reply (%d bytes): %w", len(raw), err)
	}
	return &dxReply{raw: raw, msg: m}, nil
}

// dxQuestionBytes returns the question section of the wire message raw, which must hold one
// uncompressed question.
func dxQuestionBytes(raw []byte) ([]byte, error) {
	if len(raw) < 12 {
		return nil, errors.New("short message")
	}
	if n := binary.BigEndian.Uint16(raw[4:]); n != 1 {
		return nil, fmt.Errorf("QDCOUNT %d", n)
	}
	off := 12
	for {
		if off >= len(raw) {
			return nil, errors.New("question name runs past the message")
		}
		l := int(raw[off])
		if l == 0 {
			off++
			break
		}
		if l&0xC0 != 0 {
			return nil, errors.New("compressed question name")
		}
		off += 1 + l
	}
	if off+4 > len(raw) {
		return nil, errors.New("question runs past the message")
	}
	return raw[12 : off+4], nil
}

// dxBounds is the zone data both servers answer from: every record (canonical, TTL zeroed) with
// its TTL, and the cap both Corefiles' cache puts on TTLs.
type dxBounds struct {
	ttl map[string]uint32
	cap uint32 // 0: none
}

// dxZone is a zone file (relative to the repository) and its origin.
type dxZone struct{ path, origin string }

// dxLabZones are the zones of the lab: the sample cluster zone and the upstream's external.db.
var dxLabZones = []dxZone{{"zones/cluster.local.db", "cluster.local."}, {"test/lab/external.db", "."}}

// dxLoadBounds reads the zone files, and the cache's TTL cap from the Corefiles ("cache 30":
// stock caps even the reply of a miss, so no TTL above it reaches a client of either).
func dxLoadBounds(zones []dxZone, corefiles ...string) (*dxBounds, error) {
	b := &dxBounds{ttl: map[string]uint32{}}
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
			b.ttl[dxCanon(rr)] = rr.Header().Ttl
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
func (b *dxBounds) max(rr dns.RR) (uint32, bool) {
	if ttl, ok := b.ttl[dxCanon(rr)]; ok {
		return ttl, true
	}
	c := dns.Copy(rr)
	labels := dns.SplitDomainName(rr.Header().Name)
	for i := 1; i < len(labels); i++ {
		c.Header().Name = "*." + dns.Fqdn(strings.Join(labels[i:], "."))
		if ttl, ok := b.ttl[dxCanon(c)]; ok {
			return ttl, true
		}
	}
	return 0, false
}

// check reports the records of m that are not in the zone data or carry a TTL above it. With
// completion, m's first answer is search completion's synthesized CNAME, whose TTL must not
// outlive the records it leads to.
func (b *dxBounds) check(m *dns.Msg, completion bool) []string {
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

// dxCanon is rr's presentation with TTL 0 and its domain names lower-cased: names compare
// case-insensitively (RFC 4343), and which client's 0x20 case a cache kept is no difference.
func dxCanon(rr dns.RR) string {
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

// dxSet is a section as a sorted multiset of canonical records, OPT left out.
func dxSet(rrs []dns.RR) []string {
	var s []string
	for _, rr := range rrs {
		if rr.Header().Rrtype != dns.TypeOPT {
			s = append(s, dxCanon(rr))
		}
	}
	slices.Sort(s)
	return s
}

// dxSetDiff describes how section got differs from want, or "" when they are equal. With
// subset, got may lack records of want (a truncated reply) but hold none it lacks.
func dxSetDiff(what string, want, got []dns.RR, subset bool) string {
	w, g := dxSet(want), dxSet(got)
	if slices.Equal(w, g) {
		return ""
	}
	count := map[string]int{}
	for _, s := range w {
		count[s]++
	}
	for _, s := range g {
		count[s]--
	}
	var missing, extra []string
	for s, n := range count {
		for ; n > 0; n-- {
			missing = append(missing, s)
		}
		for ; n < 0; n++ {
			extra = append(extra, s)
		}
	}
	if subset && len(extra) == 0 {
		return ""
	}
	slices.Sort(missing)
	slices.Sort(extra)
	return fmt.Sprintf("%s differs: missing %q, extra %q", what, missing, extra)
}

// dxOptDiff compares the OPT records of two replies.
func dxOptDiff(want, got *dns.Msg) []string {
	wo, gotOpt := want.IsEdns0(), got.IsEdns0()
	switch {
	case wo == nil && gotOpt == nil:
		return nil
	case wo == nil || gotOpt == nil:
		return []string{fmt.Sprintf("OPT present %v, want %v", gotOpt != nil, wo != nil)}
	}
	var p []string
	if wo.UDPSize() != gotOpt.UDPSize() {
		p = append(p, fmt.Sprintf("OPT UDP size %d, want %d", gotOpt.UDPSize(), wo.UDPSize()))
	}
	if wo.Do() != gotOpt.Do() {
		p = append(p, fmt.Sprintf("OPT DO %v, want %v", gotOpt.Do(), wo.Do()))
	}
	if wo.Version() != gotOpt.Version() {
		p = append(p, fmt.Sprintf("OPT version %d, want %d", gotOpt.Version(), wo.Version()))
	}
	if wo.Hdr.Ttl&0xffff != gotOpt.Hdr.Ttl&0xffff {
		p = append(p, fmt.Sprintf("OPT flags %#04x, want %#04x", gotOpt.Hdr.Ttl&0xffff, wo.Hdr.Ttl&0xffff))
	}
	codes := func(o *dns.OPT) []uint16 {
		var c []uint16
		for _, e := range o.Option {
			c = append(c, e.Option())
		}
		slices.Sort(c)
		return c
	}
	if w, g := codes(wo), codes(gotOpt); !slices.Equal(w, g) {
		p = append(p, fmt.Sprintf("OPT option codes %v, want %v", g, w))
	}
	return p
}

// dxFlags is a reply's rcode and header flags.
func dxFlags(m *dns.Msg) string {
	f := fmt.Sprintf("%s opcode=%d", dns.RcodeToString[m.Rcode], m.Opcode)
	for _, b := range []struct {
		name string
		set  bool
	}{{"qr", m.Response}, {"aa", m.Authoritative}, {"tc", m.Truncated}, {"rd", m.RecursionDesired}, {"ra", m.RecursionAvailable}, {"z", m.Zero}, {"ad", m.AuthenticatedData}, {"cd", m.CheckingDisabled}} {
		if b.set {
			f += " " + b.name
		}
	}
	return f
}

// dxEcho reports what in reply r does not echo query q: its ID, the question byte for byte, QR,
// RD and CD, and a UDP size within the client's.
func dxEcho(q dxQuery, qwire []byte, r *dxReply) []string {
	var p []string
	if r.msg.Id != q.id {
		p = append(p, fmt.Sprintf("ID %d, want %d", r.msg.Id, q.id))
	}
	want, _ := dxQuestionBytes(qwire)
	got, err := dxQuestionBytes(r.raw)
	switch {
	case err != nil:
		p = append(p, "question: "+err.Error())
	case string(got) != string(want):
		p = append(p, fmt.Sprintf("question bytes %q, want the query's %q", got, want))
	}
	if !r.msg.Response || r.msg.RecursionDesired != q.rd || r.msg.CheckingDisabled != q.cd {
		p = append(p, fmt.Sprintf("flags %s do not echo the query's RD=%v CD=%v", dxFlags(r.msg), q.rd, q.cd))
	}
	if q.net == "udp" && len(r.raw) > q.limit() {
		p = append(p, fmt.Sprintf("%d-byte UDP reply to a client that takes %d", len(r.raw), q.limit()))
	}
	if q.net == "tcp" && r.msg.Truncated {
		p = append(p, "TC set over TCP")
	}
	return p
}

// dxDiff lists how reply r differs from reply s to the same query.
func dxDiff(s, r *dns.Msg) []string {
	var p []string
	if fs, fr := dxFlags(s), dxFlags(r); fs != fr {
		p = append(p, fmt.Sprintf("rcode/flags %q, stock %q", fr, fs))
	}
	for i, sec := range [][2][]dns.RR{{s.Answer, r.Answer}, {s.Ns, r.Ns}, {s.Extra, r.Extra}} {
		if d := dxSetDiff([]string{"answer", "authority", "additional"}[i], sec[0], sec[1], false); d != "" {
			p = append(p, d)
		}
	}
	return append(p, dxOptDiff(s, r)...)
}

// dxCandKey identifies a reply of stock for one name of a search walk.
type dxCandKey struct {
	name         string // lower-cased
	qtype        uint16
	edns, do, cd bool
	rd           bool
}

// dxRun is the state of one differential run.
type dxRun struct {
	t         *testing.T
	stock, rg *dxServer
	bounds    *dxBounds

	mu   sync.Mutex
	cand map[dxCandKey]*dns.Msg // stock's replies for the names of walks

	compared, identical, failures          int
	completedRecords, completedNoData      int
	truncChecks, burstQueries, candQueries int
	skipped                                int // tries of lookups whose client had stopped
}

// fail records a real difference, with the query and both replies.
func (d *dxRun) fail(q dxQuery, s, r *dxReply, problems []string) {
	d.mu.Lock()
	d.failures++
	n := d.failures
	d.mu.Unlock()
	if n > 25 {
		if n == 26 {
			d.t.Errorf("more differences follow; only the count is reported")
		}
		return
	}
	d.t.Errorf("difference for %v:\n  - %s\nstock %s\nraceguard %s", q, strings.Join(problems, "\n  - "), s, r)
}

// exchange sends q's wire message to both servers, stock first, and returns both replies.
func (d *dxRun) exchange(q dxQuery) (qwire []byte, s, r *dxReply, err error) {
	qwire, err = q.msg().Pack()
	if err != nil {
		return nil, nil, nil, err
	}
	if s, err = dxExchange(q.net, d.stock.addr, qwire); err != nil {
		return nil, nil, nil, fmt.Errorf("stock: %w", err)
	}
	if r, err = dxExchange(q.net, d.rg.addr, qwire); err != nil {
		return nil, nil, nil, fmt.Errorf("raceguard: %w", err)
	}
	return qwire, s, r, nil
}

// compare sends q to both servers and judges the replies.
func (d *dxRun) compare(q dxQuery) *dns.Msg {
	qwire, s, r, err := d.exchange(q)
	if err != nil {
		d.mu.Lock()
		d.compared++
		d.mu.Unlock()
		d.fail(q, s, r, []string{err.Error()})
		return nil
	}
	d.judge(q, qwire, s, r)
	return r.msg
}

// run sends the queries of corpus in order. The queries of a lookup are a client walking its
// search list: it goes on to its next name only while the replies it got (raceguard's: it is the
// client's server) have no records, as glibc does (for the A and AAAA pair: while neither has).
func (d *dxRun) run(corpus []dxQuery) {
	stopped := map[int]int{} // group -> the step at which its client got records
	for _, q := range corpus {
		if s, ok := stopped[q.group]; q.group > 0 && ok && q.step > s {
			d.skipped++
			continue
		}
		r := d.compare(q)
		if _, ok := stopped[q.group]; q.group > 0 && !ok && r != nil && r.Rcode == dns.RcodeSuccess && len(r.Answer) > 0 {
			stopped[q.group] = q.step
		}
	}
}

// judge compares the replies s (stock) and r (raceguard) to q, whose wire message is qwire.
func (d *dxRun) judge(q dxQuery, qwire []byte, s, r *dxReply) (completed bool) {
	d.mu.Lock()
	d.compared++
	d.mu.Unlock()
	var p []string
	for _, e := range dxEcho(q, qwire, s) {
		p = append(p, "stock: "+e)
	}
	for _, e := range d.bounds.check(s.msg, false) {
		p = append(p, "stock: "+e)
	}
	for _, e := range dxEcho(q, qwire, r) {
		p = append(p, "raceguard: "+e)
	}
	diff := dxDiff(s.msg, r.msg)
	walk, walkable := dxWalkOf(strings.ToLower(q.name))
	walkable = walkable && (q.qtype == dns.TypeA || q.qtype == dns.TypeAAAA)
	if len(diff) == 0 {
		for _, e := range d.bounds.check(r.msg, false) {
			p = append(p, "raceguard: "+e)
		}
		if walkable && q.tailOf == "" && s.msg.Rcode == dns.RcodeNameError {
			// As stock: right unless README.md says this first try is completed.
			plan, err := d.plan(q, walk)
			switch {
			case err != nil:
				p = append(p, err.Error())
			case plan.complete:
				p = append(p, fmt.Sprintf("raceguard answered as stock, but README.md's search completion completes this first try to %s (stock answers it %q)",
					plan.name, dxFlags(plan.want)))
			}
		}
		if len(p) > 0 {
			d.fail(q, s, r, p)
			return false
		}
		d.mu.Lock()
		d.identical++
		d.mu.Unlock()
		return false
	}
	if q.tailOf != "" {
		p = append(p, diff...)
		d.fail(q, s, r, append(p, fmt.Sprintf("raceguard completed a later try of the walk this client started with %s on this server, "+
			"after its replies to the earlier tries had no records, so the client walked on (as glibc and Go do after NXDOMAIN and NODATA). "+
			"Not documented: README.md says such a client keeps walking \"as it would have\", and that \"on the replica that saw the first "+
			"try the tail is remembered and never completed\". The client now stops with the records of another name than the one it looks up", q.tailOf)))
		return false
	}
	// The documented difference: search completion of an A or AAAA first try.
	if !walkable {
		d.fail(q, s, r, append(p, diff...))
		return false
	}
	plan, err := d.plan(q, walk)
	if err != nil {
		d.fail(q, s, r, append(append(p, diff...), err.Error()))
		return false
	}
	records, cp := d.verifyCompletion(q, plan, s.msg, r)
	if len(cp) > 0 {
		p = append(p, diff...)
		p = append(p, "and not the documented search completion either:")
		d.fail(q, s, r, append(p, cp...))
		return false
	}
	for _, e := range d.bounds.check(r.msg, records) {
		p = append(p, "raceguard: "+e)
	}
	if len(p) > 0 {
		d.fail(q, s, r, p)
		return false
	}
	d.mu.Lock()
	if records {
		d.completedRecords++
	} else {
		d.completedNoData++
	}
	d.mu.Unlock()
	return true
}

// dxWalk is the search walk README.md's "Search completion" documents for a first try
// <base>.<ns>.svc.cluster.local. (search infer, node_search lab.internal): names[0] is the first
// try, then <base>.svc.cluster.local., <base>.cluster.local., <base>.lab.internal., <base>.
type dxWalk struct {
	names     []string
	namespace string // <ns>.svc.cluster.local., which must not be NXDOMAIN
}

// dxWalkOf returns the walk of name (lower-cased) if raceguard may complete it: a base of at least
// two labels below <ns>.svc.cluster.local.
func dxWalkOf(name string) (dxWalk, bool) {
	rest, ok := strings.CutSuffix(name, ".svc.cluster.local.")
	if !ok {
		return dxWalk{}, false
	}
	dot := strings.LastIndexByte(rest, '.')
	if dot <= 0 {
		return dxWalk{}, false
	}
	base, ns := rest[:dot], rest[dot+1:]
	if !strings.Contains(base, ".") {
		return dxWalk{}, false
	}
	w := dxWalk{namespace: ns + ".svc.cluster.local."}
	for _, d := range []string{ns + ".svc.cluster.local.", "svc.cluster.local.", "cluster.local.", lab.NodeDomain + ".", ""} {
		w.names = append(w.names, dns.Fqdn(base+"."+strings.TrimSuffix(d, ".")))
	}
	w.names[len(w.names)-1] = base + "."
	return w, true
}

// candidate returns stock's reply for name and qtype with q's flags, over TCP so that nothing is
// truncated (a walk's own queries advertise at least 1232 bytes).
func (d *dxRun) candidate(q dxQuery, name string, qtype uint16) (*dns.Msg, error) {
	k := dxCandKey{name: name, qtype: qtype, edns: q.edns > 0, do: q.do, cd: q.cd, rd: q.rd}
	d.mu.Lock()
	m, ok := d.cand[k]
	d.mu.Unlock()
	if ok {
		return m, nil
	}
	cq := q
	cq.name, cq.qtype, cq.net, cq.id, cq.option, cq.version = name, qtype, "tcp", dns.Id(), 0, 0
	cq.group, cq.step, cq.tailOf = 0, 0, ""
	if cq.edns > 0 {
		cq.edns = 4096
	}
	wire, err := cq.msg().Pack()
	if err != nil {
		return nil, err
	}
	r, err := dxExchange("tcp", d.stock.addr, wire)
	if err != nil {
		return nil, fmt.Errorf("stock %v: %w", cq, err)
	}
	d.mu.Lock()
	d.cand[k] = r.msg
	d.candQueries++
	d.mu.Unlock()
	return r.msg, nil
}

// dxPlan is what README.md's "Search completion" makes of a first try, judged from stock's
// answers for the names of its walk: the walk stops at the first name after the first try where
// stock's A and AAAA are not both NXDOMAIN, and completes if both are clean NOERROR there.
type dxPlan struct {
	complete bool
	why      string   // why the walk is not completed, when it is not
	name     string   // where the walk stops, when it completes
	want     *dns.Msg // stock's reply for name with the query's type and flags
}

// plan returns the plan of q's walk.
func (d *dxRun) plan(q dxQuery, walk dxWalk) (dxPlan, error) {
	pair := func(name string) (a, aaaa *dns.Msg, err error) {
		if a, err = d.candidate(q, name, dns.TypeA); err != nil {
			return nil, nil, err
		}
		aaaa, err = d.candidate(q, name, dns.TypeAAAA)
		return a, aaaa, err
	}
	nx := func(m *dns.Msg) bool { return m.Rcode == dns.RcodeNameError }
	a, aaaa, err := pair(walk.names[0])
	if err != nil {
		return dxPlan{}, err
	}
	if !nx(a) || !nx(aaaa) {
		return dxPlan{why: fmt.Sprintf("the first try %s is not NXDOMAIN for both A and AAAA at stock (%s, %s): it is answered as asked",
			walk.names[0], dns.RcodeToString[a.Rcode], dns.RcodeToString[aaaa.Rcode])}, nil
	}
	ns, err := d.candidate(q, walk.namespace, dns.TypeA)
	if err != nil {
		return dxPlan{}, err
	}
	if ns.Rcode != dns.RcodeSuccess {
		return dxPlan{why: fmt.Sprintf("the inferred namespace %s is %s at stock: the walk is never completed", walk.namespace, dns.RcodeToString[ns.Rcode])}, nil
	}
	for i := 1; i < len(walk.names); i++ {
		if a, aaaa, err = pair(walk.names[i]); err != nil {
			return dxPlan{}, err
		}
		if nx(a) && nx(aaaa) {
			continue
		}
		clean := func(m *dns.Msg) bool { return m.Rcode == dns.RcodeSuccess && !m.Truncated }
		if !clean(a) || !clean(aaaa) {
			return dxPlan{why: fmt.Sprintf("the walk stops at %s, where stock answers A %q and AAAA %q: a mixed or failed answer passes through",
				walk.names[i], dxFlags(a), dxFlags(aaaa))}, nil
		}
		want := a
		if q.qtype == dns.TypeAAAA {
			want = aaaa
		}
		return dxPlan{complete: true, name: walk.names[i], want: want}, nil
	}
	return dxPlan{why: fmt.Sprintf("every name of the walk %v is NXDOMAIN at stock: the first try's NXDOMAIN is due", walk.names)}, nil
}

// verifyCompletion checks that r, raceguard's reply to q, is the search completion of plan (s is
// stock's reply to q itself): a CNAME from the exact asked name to the name the walk stops at
// followed by stock's answer for it, or stock's NODATA for it. records reports which.
func (d *dxRun) verifyCompletion(q dxQuery, plan dxPlan, s *dns.Msg, r *dxReply) (records bool, p []string) {
	if !plan.complete {
		return false, []string{plan.why}
	}
	want, target := plan.want, plan.name
	m := r.msg
	if m.Rcode != dns.RcodeSuccess {
		p = append(p, fmt.Sprintf("rcode %s, want NOERROR", dns.RcodeToString[m.Rcode]))
	}
	if m.AuthenticatedData != want.AuthenticatedData || m.RecursionAvailable != want.RecursionAvailable || m.Authoritative != want.Authoritative {
		p = append(p, fmt.Sprintf("flags %q, want AA, RA and AD as stock's reply for %s: %q", dxFlags(m), target, dxFlags(want)))
	}
	p = append(p, dxOptDiff(s, m)...) // the client's own OPT, as stock gives it for this query
	truncated := m.Truncated
	if len(want.Answer) == 0 {
		if len(m.Answer) != 0 {
			p = append(p, fmt.Sprintf("answer %v, want stock's NODATA for %s", m.Answer, target))
		}
	} else {
		records = true
		var c dns.RR
		if len(m.Answer) > 0 {
			c = m.Answer[0]
		}
		cname, ok := c.(*dns.CNAME)
		switch {
		case !ok:
			p = append(p, fmt.Sprintf("first answer %v, want a CNAME %s -> %s", c, q.name, target))
		case cname.Hdr.Name != q.name || cname.Hdr.Class != dns.ClassINET:
			p = append(p, fmt.Sprintf("CNAME owner %q, want the exact asked name %q", cname.Hdr.Name, q.name))
		case !strings.EqualFold(cname.Target, target):
			p = append(p, fmt.Sprintf("CNAME target %s, want %s: the first name after the first try that is not NXDOMAIN for both A and AAAA at stock", cname.Target, target))
		}
		if ok {
			if e := dxSetDiff("answer after the CNAME", want.Answer, m.Answer[1:], truncated); e != "" {
				p = append(p, e+" (stock's answer for "+target+")")
			}
		}
		if truncated {
			// The complete reply must really not fit: a truncated reply to a client that could
			// take the whole answer would be a lost answer.
			full := m.Copy()
			full.Truncated = false
			full.Answer = append([]dns.RR{c}, want.Answer...)
			full.Ns, full.Extra = want.Ns, nil
			for _, rr := range want.Extra {
				if rr.Header().Rrtype != dns.TypeOPT {
					full.Extra = append(full.Extra, rr)
				}
			}
			if o := m.IsEdns0(); o != nil {
				full.Extra = append(full.Extra, o)
			}
			full.Compress = true
			if n := full.Len(); n <= q.limit() {
				p = append(p, fmt.Sprintf("TC set, but the whole completed reply (%d bytes) fits the client's %d", n, q.limit()))
			}
		}
	}
	if !truncated {
		if e := dxSetDiff("authority", want.Ns, m.Ns, false); e != "" {
			p = append(p, e+" (stock's for "+target+")")
		}
		if e := dxSetDiff("additional", want.Extra, m.Extra, false); e != "" {
			p = append(p, e+" (stock's for "+target+")")
		}
	}
	return records, p
}

// Corpus.

// dxClusterNames are names of the sample cluster zone: services with both families, IPv4 only and
// IPv6 only, ExternalName and in-zone CNAMEs, headless, pods, namespaces (NODATA), the apex and
// names that do not exist.
var dxClusterNames = []string{
	"kubernetes.default.svc.cluster.local.",
	"web.default.svc.cluster.local.",
	"legacy.default.svc.cluster.local.",
	"v6only.default.svc.cluster.local.",
	"docs.default.svc.cluster.local.",
	"api.shop.svc.cluster.local.",
	"db.shop.svc.cluster.local.",
	"db-0.db.shop.svc.cluster.local.",
	"cart.shop.svc.cluster.local.",
	"kube-dns.kube-system.svc.cluster.local.",
	"grafana.monitoring.svc.cluster.local.",
	"10-244-1-10.shop.pod.cluster.local.",
	"shop.svc.cluster.local.",
	"default.svc.cluster.local.",
	"svc.cluster.local.",
	"cluster.local.",
	"ns.dns.cluster.local.",
	"nosuch.default.svc.cluster.local.",
	"db-9.db.shop.svc.cluster.local.",       // a pod that is gone: a first try of "db-9.db" in shop
	"nosuch.nonamespace.svc.cluster.local.", // in a namespace that does not exist
}

// dxExternalNames are names of the upstream's zone, and later tries of the walks of dxBases as a
// client walking on its own asks them.
var dxExternalNames = []string{
	"example.org.",
	"www.example.org.",
	"www.mixed.example.org.",
	"chain.example.net.",
	"hop2.example.net.",
	"v4only.example.net.",
	"v6only.example.net.",
	"many.example.com.",
	"big.example.com.",
	"foo.wild.example.com.",
	"deep.a.b.c.d.example.com.",
	"dangling.example.com.",
	"empty.example.com.",
	"nosuch.example.org.",
	"registry.lab.internal.",
	"shop.lab.internal.",
	"nothing.invalid.",
	"example.org.svc.cluster.local.",
	"example.org.cluster.local.",
	"example.org.lab.internal.",
	"nosuch.example.org.svc.cluster.local.",
	"nosuch.example.org.cluster.local.",
	"nosuch.example.org.lab.internal.",
	"empty.example.com.cluster.local.",
}

// dxBases are names a pod in namespace "default" looks up; its first try is
// <base>.default.svc.cluster.local.
var dxBases = []string{
	"example.org",
	"www.example.org",
	"www.mixed.example.org",
	"chain.example.net",
	"v4only.example.net",
	"v6only.example.net",
	"many.example.com",
	"big.example.com",
	"foo.wild.example.com",
	"deep.a.b.c.d.example.com",
	"dangling.example.com",
	"empty.example.com",
	"nosuch.example.org",
	"registry.lab.internal",
	"srv.corp", // under the node domain only, if the upstream has srv.corp.lab.internal
	"api.shop",
	"db.shop",
	"db-0.db.shop",
	"cart.shop",
	"kube-dns.kube-system",
	"web.default",
	"shop.svc",
	"nosuch.shop",
}

// dxOtherExpansions are first tries of pods in other namespaces, and one in a namespace that does
// not exist (never completed).
var dxOtherExpansions = []string{
	"example.org.shop.svc.cluster.local.",
	"v6only.example.net.kube-system.svc.cluster.local.",
	"example.org.nonamespace.svc.cluster.local.",
}

// dxOtherTypes are queries of types search completion never touches.
var dxOtherTypes = []struct {
	name  string
	qtype uint16
}{
	{"empty.example.com.", dns.TypeTXT},
	{"example.org.", dns.TypeTXT},
	{"example.org.", dns.TypeMX},
	{"nosuch.example.org.", dns.TypeMX},
	{"example.org.", dns.TypeANY},
	{"web.default.svc.cluster.local.", dns.TypeANY},
	{"www.example.org.", dns.TypeCNAME},
	{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV},
	{"_postgres._tcp.db.shop.svc.cluster.local.", dns.TypeSRV},
	{"_https._tcp.kubernetes.default.svc.cluster.local.", dns.TypeSRV},
	{"cluster.local.", dns.TypeSOA},
	{"cluster.local.", dns.TypeNS},
	{"big.example.com.", dns.TypeTXT},
	{"empty.example.com.default.svc.cluster.local.", dns.TypeTXT},
	{"example.org.default.svc.cluster.local.", dns.TypeMX},
	{"_http._tcp.web.default.svc.cluster.local.default.svc.cluster.local.", dns.TypeSRV},
	{"example.org.default.svc.cluster.local.", dns.TypeANY},
}

// dxCombos are every EDNS, CD and transport setting: no EDNS, or EDNS 512/1232/4096 with DO off
// and on; CD off and on; UDP and TCP.
func dxCombos() []dxQuery {
	var c []dxQuery
	for _, edns := range []uint16{0, 512, 1232, 4096} {
		for _, do := range []bool{false, true} {
			if edns == 0 && do {
				continue
			}
			for _, cd := range []bool{false, true} {
				for _, network := range []string{"udp", "tcp"} {
					c = append(c, dxQuery{edns: edns, do: do, cd: cd, rd: true, net: network})
				}
			}
		}
	}
	return c
}

// dxLookup returns the tries of a client in namespace "default" looking base up: for each name of
// its search walk in turn, one query of each of types with the flags of c.
func dxLookup(rng *rand.Rand, group int, base string, types []uint16, c dxQuery) []dxQuery {
	walk, _ := dxWalkOf(base + ".default.svc.cluster.local.")
	var g []dxQuery
	first := ""
	for step, name := range walk.names {
		q := c
		q.name, q.group, q.step = dxMixCase(rng, name), group, step
		if step == 0 {
			first = q.name
		} else {
			q.tailOf = first
		}
		for _, qtype := range types {
			q.qtype, q.id = qtype, uint16(rng.Uint32())
			g = append(g, q)
		}
	}
	return g
}

// dxMixCase gives name a random-looking 0x20 case from rng.
func dxMixCase(rng *rand.Rand, name string) string {
	b := []byte(name)
	for i, c := range b {
		if c >= 'a' && c <= 'z' && rng.IntN(2) == 1 {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// dxCorpus generates the corpus, deterministically: for every name, A and AAAA pairs (as
// getaddrinfo sends them) under several flag combinations, the other types under a few, big
// answers over small UDP buffers always, and lookups of the bases walking the search list; all in
// a shuffled order of groups.
func dxCorpus() []dxQuery {
	rng := rand.New(rand.NewPCG(20261121, 6))
	combos := dxCombos()
	var names []string
	names = append(names, dxClusterNames...)
	names = append(names, dxExternalNames...)
	for _, b := range dxBases {
		names = append(names, b+".default.svc.cluster.local.")
	}
	names = append(names, dxOtherExpansions...)

	id := func() uint16 { return uint16(rng.Uint32()) }
	var groups [][]dxQuery
	for _, name := range names {
		perm := rng.Perm(len(combos))[:6]
		var picks []dxQuery
		for _, i := range perm {
			picks = append(picks, combos[i])
		}
		if strings.HasPrefix(name, "big.example.com.") {
			// A 512-byte client must get TC, with and without EDNS, with and without completion.
			picks = append(picks, dxQuery{rd: true, net: "udp"}, dxQuery{edns: 512, rd: true, net: "udp"}, dxQuery{edns: 512, do: true, cd: true, rd: true, net: "udp"})
		}
		for _, c := range picks {
			if rng.IntN(16) == 0 {
				c.rd = false
			}
			if c.edns > 0 && rng.IntN(8) == 0 {
				c.option = dxOptions[rng.IntN(len(dxOptions))].Option()
			}
			if c.edns > 0 && rng.IntN(40) == 0 {
				c.version = 1
			}
			a, aaaa := c, c
			a.name, a.qtype, a.id = dxMixCase(rng, name), dns.TypeA, id()
			aaaa.name, aaaa.qtype, aaaa.id = a.name, dns.TypeAAAA, id()
			if rng.IntN(2) == 0 {
				aaaa.name = dxMixCase(rng, name)
			}
			if rng.IntN(4) == 0 {
				a, aaaa = aaaa, a // AAAA first
			}
			groups = append(groups, []dxQuery{a, aaaa})
		}
	}
	for _, o := range dxOtherTypes {
		for _, i := range rng.Perm(len(combos))[:3] {
			c := combos[i]
			c.name, c.qtype, c.id = dxMixCase(rng, o.name), o.qtype, id()
			groups = append(groups, []dxQuery{c})
		}
	}
	// Clients in namespace "default" looking the bases up: a getaddrinfo AF_UNSPEC (A and AAAA
	// together) twice, a single family once, each walking its search list as far as it goes.
	// After a walk that is exhausted, raceguard answers the later names from memory.
	group := 0
	for _, b := range dxBases {
		single := [][]uint16{{dns.TypeA}, {dns.TypeAAAA}}[rng.IntN(2)]
		for j, types := range [][]uint16{{dns.TypeA, dns.TypeAAAA}, {dns.TypeA, dns.TypeAAAA}, single} {
			group++
			c := combos[rng.IntN(len(combos))]
			if j == 1 && rng.IntN(3) == 0 {
				types = []uint16{dns.TypeAAAA, dns.TypeA}
			}
			groups = append(groups, dxLookup(rng, group, b, types, c))
		}
	}
	rng.Shuffle(len(groups), func(i, j int) { groups[i], groups[j] = groups[j], groups[i] })
	var corpus []dxQuery
	for _, g := range groups {
		corpus = append(corpus, g...)
	}
	return corpus
}

// truncation asks the big answer over 512-byte UDP explicitly: stock and raceguard must both set
// TC within 512 bytes, as asked and completed, and the completed reply must be whole over TCP.
func (d *dxRun) truncation() {
	rng := rand.New(rand.NewPCG(512, 512))
	for _, name := range []string{"big.example.com.", "big.example.com.default.svc.cluster.local."} {
		for _, edns := range []uint16{0, 512} {
			for _, do := range []bool{false, true} {
				if edns == 0 && do {
					continue
				}
				q := dxQuery{name: dxMixCase(rng, name), qtype: dns.TypeA, edns: edns, do: do, rd: true, net: "udp", id: uint16(rng.Uint32())}
				qwire, s, r, err := d.exchange(q)
				d.truncChecks++
				if err != nil {
					d.compared++
					d.fail(q, s, r, []string{err.Error()})
					continue
				}
				completed := d.judge(q, qwire, s, r)
				completion := name != "big.example.com."
				var p []string
				if !r.msg.Truncated || len(r.raw) > 512 {
					p = append(p, fmt.Sprintf("raceguard: want TC within 512 bytes, got TC=%v in %d bytes", r.msg.Truncated, len(r.raw)))
				}
				if !completion && (!s.msg.Truncated || len(s.raw) > 512) {
					p = append(p, fmt.Sprintf("stock: want TC within 512 bytes, got TC=%v in %d bytes", s.msg.Truncated, len(s.raw)))
				}
				if completion && !completed {
					p = append(p, "raceguard: want the documented completion of the first try")
				}
				if len(p) > 0 {
					d.t.Errorf("truncation of %v:\n  - %s\nstock %s\nraceguard %s", q, strings.Join(p, "\n  - "), s, r)
				}
			}
		}
	}
	// The client retries over TCP and must get the whole answer.
	q := dxQuery{name: "bIg.ExAmple.com.DeFault.svc.cluster.LOCAL.", qtype: dns.TypeA, rd: true, net: "tcp", id: 512}
	qwire, s, r, err := d.exchange(q)
	d.truncChecks++
	if err != nil {
		d.compared++
		d.fail(q, s, r, []string{err.Error()})
		return
	}
	if d.judge(q, qwire, s, r) && (r.msg.Truncated || len(r.msg.Answer) != 41) {
		d.t.Errorf("Expected the whole completed answer (CNAME and 40 A) over TCP, got TC=%v and %d records", r.msg.Truncated, len(r.msg.Answer))
	}
}

// bursts sends each of a few queries 20 times at once to raceguard, every copy with its own ID
// and 0x20 case, while the upstream is slow, so that collapse joins them and the sibling prefetch
// runs; every reply is judged against stock's reply to the same wire message, which stock gets
// (as a burst too) just before. The names are new to both servers' caches. Some bursts mix A and
// AAAA, some mix every EDNS, CD and transport setting: only queries that may share an answer
// must share one.
func (d *dxRun) bursts(up *lab.Upstream) {
	const n = 20
	type burst struct {
		q                  dxQuery
		mixTypes, mixFlags bool
	}
	cases := []burst{
		{q: dxQuery{name: "burst-a.wild.example.com.", qtype: dns.TypeA, edns: 1232, rd: true, net: "udp"}},
		{q: dxQuery{name: "burst-b.wild.example.com.", qtype: dns.TypeAAAA, rd: true, net: "tcp"}},
		{q: dxQuery{name: "burst-c.wild.example.com.default.svc.cluster.local.", qtype: dns.TypeA, rd: true, net: "udp"}},
		{q: dxQuery{name: "burst-d.wild.example.com.default.svc.cluster.local.", qtype: dns.TypeAAAA, edns: 4096, do: true, rd: true, net: "udp"}},
		{q: dxQuery{name: "nosuch-burst.example.org.", qtype: dns.TypeA, edns: 4096, do: true, rd: true, net: "udp"}},
		{q: dxQuery{name: "nosuch-burst.example.org.default.svc.cluster.local.", qtype: dns.TypeA, edns: 512, rd: true, net: "udp"}},
		{q: dxQuery{name: "v4only.example.net.", qtype: dns.TypeAAAA, edns: 1232, cd: true, rd: true, net: "udp"}},
		{q: dxQuery{name: "burst-e.wild.example.com.", edns: 512, rd: true, net: "udp"}, mixTypes: true},
		{q: dxQuery{name: "burst-f.wild.example.com.default.svc.cluster.local.", rd: true, net: "tcp"}, mixTypes: true},
		// Truncated answers are never shared; a 512-byte client must get TC, a larger one all.
		{q: dxQuery{name: "big.example.com.", qtype: dns.TypeA}, mixFlags: true},
		{q: dxQuery{name: "big.example.com.default.svc.cluster.local.", qtype: dns.TypeA}, mixFlags: true},
		{q: dxQuery{name: "burst-g.wild.example.com."}, mixTypes: true, mixFlags: true},
		{q: dxQuery{name: "empty.example.com.", qtype: dns.TypeAAAA}, mixFlags: true},
	}
	rng := rand.New(rand.NewPCG(20, 20))
	combos := dxCombos()
	up.SetDelay(100 * time.Millisecond)
	defer up.SetDelay(0)
	for _, c := range cases {
		qs := make([]dxQuery, n)
		wires := make([][]byte, n)
		perm := rng.Perm(len(combos))
		for i := range qs {
			qs[i] = c.q
			if c.mixFlags {
				f := combos[perm[i%len(perm)]]
				qs[i].edns, qs[i].do, qs[i].cd, qs[i].rd, qs[i].net = f.edns, f.do, f.cd, f.rd, f.net
			}
			if c.mixTypes {
				qs[i].qtype = [...]uint16{dns.TypeA, dns.TypeAAAA}[i%2]
			}
			qs[i].name, qs[i].id = dxMixCase(rng, c.q.name), uint16(rng.Uint32())
			wires[i], _ = qs[i].msg().Pack()
		}
		stock, rg := make([]*dxReply, n), make([]*dxReply, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for _, srv := range []*dxServer{d.stock, d.rg} {
			for i := range qs {
				wg.Go(func() {
					r, err := dxExchange(qs[i].net, srv.addr, wires[i])
					if srv == d.stock {
						stock[i] = r
					} else {
						rg[i] = r
					}
					if err != nil {
						errs[i] = fmt.Errorf("%s: %w", srv.name, err)
					}
				})
			}
			wg.Wait() // stock's burst first, then raceguard's
		}
		for i := range qs {
			d.burstQueries++
			if errs[i] != nil {
				d.compared++
				d.fail(qs[i], stock[i], rg[i], []string{errs[i].Error()})
				continue
			}
			d.judge(qs[i], wires[i], stock[i], rg[i])
		}
	}
}
