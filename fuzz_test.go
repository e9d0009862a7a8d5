package raceguard

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/file"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
)

// seedQueries are wire-format queries like those real clients send: glibc and musl A and AAAA
// with RD, search expansions, EDNS variants (DO, CD, small and large sizes, an ECS and a cookie
// option), mixed case, and some malformed messages.
func seedQueries() [][]byte {
	var out [][]byte
	add := func(m *dns.Msg) {
		if b, err := m.Pack(); err == nil {
			out = append(out, b)
		}
	}
	for _, name := range []string{
		"example.org.default.svc.cluster.local.", "ExAmPlE.oRg.DeFaUlT.sVc.ClUsTeR.lOcAl.", "web.default.svc.cluster.local.",
		"api.shop.default.svc.cluster.local.", "kubernetes.default.svc.cluster.local.", "example.org.", ".",
		"x.y.z.w.default.svc.cluster.local.", "a.b.cnn.svc.cluster.local.", `we\.ird.default.svc.cluster.local.`,
	} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeSRV, dns.TypeANY} {
			m := new(dns.Msg).SetQuestion(name, qt)
			add(m)
			e := m.Copy()
			e.SetEdns0(1232, true)
			e.CheckingDisabled = true
			add(e)
			s := m.Copy()
			s.SetEdns0(512, false)
			o := s.IsEdns0()
			o.Option = append(o.Option, &dns.EDNS0_SUBNET{Code: dns.EDNS0SUBNET, Family: 1, SourceNetmask: 24, Address: []byte{192, 0, 2, 0}},
				&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0102030405060708"})
			add(s)
		}
	}
	n := new(dns.Msg).SetQuestion("example.org.", dns.TypeSOA)
	n.Opcode = dns.OpcodeNotify
	add(n)
	two := new(dns.Msg).SetQuestion("example.org.", dns.TypeA)
	two.Question = append(two.Question, two.Question[0])
	add(two)
	out = append(out, []byte{}, []byte{0, 1, 2}, []byte("\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01"))
	return out
}

// fuzzNext is a real next plugin: CoreDNS's file plugin serving the sample cluster zone.
func fuzzNext(f testing.TB) *file.File {
	body, err := os.ReadFile("zones/cluster.local.db")
	if err != nil {
		f.Fatal(err)
	}
	z, err := file.Parse(strings.NewReader(string(body)), "cluster.local.", "cluster.local.db", 0)
	if err != nil {
		f.Fatal(err)
	}
	return &file.File{Zones: file.Zones{Z: map[string]*file.Zone{"cluster.local.": z}, Names: []string{"cluster.local."}}}
}

// FuzzServeDNS sends arbitrary messages through raceguard (search completion, fingerprints,
// prefetch trigger) into the file plugin, as the server would (messages without a question are
// dropped before the chain), and checks every reply written echoes the query's ID and question.
func FuzzServeDNS(f *testing.F) {
	for _, b := range seedQueries() {
		f.Add(b)
	}
	rg := started(f, "raceguard {\n node_search lab.internal\n conntrack off\n}", fuzzNext(f))

	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil || len(r.Question) == 0 {
			return
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{})
		rg.ServeDNS(context.Background(), rec, r)
		if m := rec.Msg; m != nil {
			if m.Id != r.Id || len(m.Question) != len(r.Question) || m.Question[0] != r.Question[0] {
				t.Errorf("Reply does not echo the query: ID %d/%d, question %v/%v", m.Id, r.Id, m.Question, r.Question)
			}
		}
	})
}

// FuzzParse feeds arbitrary Corefile blocks to the raceguard directive's parser: an error, never a
// panic.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"raceguard", "raceguard example.org 10.0.0.0/8", "raceguard {\n search infer\n cluster_domain cluster.local\n node_search none\n}",
		"raceguard {\n search @kubernetes\n}", "raceguard {\n search a.b c.d\n parallel_walk off\n}",
		"raceguard {\n conntrack procfs /x\n interval 500ms\n window 1m\n node n1\n}", "raceguard {\n bogus\n}",
		"raceguard {\n interval\n}", "raceguard {\n search @\n}", "raceguard {{{", "raceguard }", "raceguard {\n window 1\n}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if !strings.HasPrefix(input, "raceguard") {
			return
		}
		parse(caddy.NewTestController("dns", input))
	})
}
