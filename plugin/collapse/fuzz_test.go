package collapse

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin/pkg/dnstest"

	"github.com/miekg/dns"
)

// echo is a next plugin that answers every query with its question and an A record, or writes
// nothing for names starting with "fail", or a truncated reply for names starting with "tc".
type echo struct{}

func (echo) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	name := strings.ToLower(r.Question[0].Name)
	if strings.HasPrefix(name, "fail") {
		return dns.RcodeServerFailure, nil
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Truncated = strings.HasPrefix(name, "tc")
	m.Answer = []dns.RR{&dns.A{Hdr: dns.RR_Header{Name: r.Question[0].Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 30}, A: []byte{192, 0, 2, 1}}}
	w.WriteMsg(m)
	return dns.RcodeSuccess, nil
}

func (echo) Name() string { return "echo" }

// FuzzServeDNS sends each message through collapse three times at once (a leader and two waiters,
// or three alone) and checks every reply echoes its own query's ID and question.
func FuzzServeDNS(f *testing.F) {
	for _, name := range []string{"www.example.org.", "WwW.ExAmPlE.oRg.", "fail.example.org.", "tc.example.org.", "."} {
		for _, qt := range []uint16{dns.TypeA, dns.TypeAAAA, dns.TypeTXT} {
			m := new(dns.Msg).SetQuestion(name, qt)
			b, _ := m.Pack()
			f.Add(b)
			m.SetEdns0(4096, true)
			b, _ = m.Pack()
			f.Add(b)
		}
	}
	f.Add([]byte{0, 0, 1, 0, 0, 1})
	c := New()
	c.Next = echo{}
	c.Zones = []string{"."}
	c.Start()
	f.Cleanup(c.Stop)

	f.Fuzz(func(t *testing.T, data []byte) {
		r := new(dns.Msg)
		if err := r.Unpack(data); err != nil || len(r.Question) == 0 {
			return
		}
		var wg sync.WaitGroup
		for i := range 3 {
			q := r.Copy()
			q.Id += uint16(i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := dnstest.NewRecorder(udpClient(i))
				c.ServeDNS(context.Background(), rec, q)
				if m := rec.Msg; m != nil && (m.Id != q.Id || len(m.Question) == 0 || m.Question[0] != q.Question[0]) {
					t.Errorf("Reply does not echo the query: ID %d/%d, question %v/%v", m.Id, q.Id, m.Question, q.Question)
				}
			}()
		}
		wg.Wait()
	})
}

// FuzzParse feeds arbitrary Corefile blocks to the collapse directive's parser.
func FuzzParse(f *testing.F) {
	for _, s := range []string{"collapse", "collapse . {\n max_keys 5\n max_waiters 7\n}", "collapse bad..zone", "collapse {\n max_keys\n}", "collapse {{"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, input string) {
		if strings.HasPrefix(input, "collapse") {
			parse(caddy.NewTestController("dns", input))
		}
	})
}
