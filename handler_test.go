package raceguard

import (
	"context"
	"testing"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

// TestServeDNS runs queries through raceguard in front of a real next plugin (the file plugin
// serving the sample cluster zone), as the server would, and checks what each client gets: its own
// ID and question bytes every time, a completion only for the first try of a search walk that a
// client may be given one, and everything else exactly what the chain below answers.
func TestServeDNS(t *testing.T) {
	next := fuzzNext(t)
	rg := started(t, "raceguard {\n node_search lab.internal\n conntrack off\n}", next)

	const first = "KuBeRnEtEs.default.default.svc.cluster.local." // a pod in default looks up kubernetes.default
	tests := []struct {
		name   string
		qname  string
		qtype  uint16
		edit   func(r *dns.Msg)
		own    bool   // raceguard's own query (a walk's try, a prefetch)
		rcode  int    // of the reply written
		target string // the CNAME a completion with records starts with
		nodata bool   // completed at a name without records of the type: a plain NODATA
	}{
		{name: "service name, as the chain answers it", qname: "web.default.svc.cluster.local.", qtype: dns.TypeAAAA},
		{name: "first try completed, A", qname: first, qtype: dns.TypeA, target: "KuBeRnEtEs.default.svc.cluster.local."},
		{name: "first try completed, AAAA (NODATA at the name)", qname: first, qtype: dns.TypeAAAA, nodata: true},
		{name: "validating client: never completed", qname: first, qtype: dns.TypeA, rcode: dns.RcodeNameError,
			edit: func(r *dns.Msg) { r.SetEdns0(1232, true) }},
		{name: "AD asked: never completed", qname: first, qtype: dns.TypeA, rcode: dns.RcodeNameError,
			edit: func(r *dns.Msg) { r.AuthenticatedData = true }},
		{name: "raceguard's own query: passed on", qname: first, qtype: dns.TypeA, own: true, rcode: dns.RcodeNameError},
		{name: "other types: passed on", qname: "_https._tcp.kubernetes.default.default.svc.cluster.local.", qtype: dns.TypeSRV, rcode: dns.RcodeNameError},
		{name: "namespace that does not exist: answered as asked", qname: "kubernetes.default.nosuchns.svc.cluster.local.", qtype: dns.TypeA, rcode: dns.RcodeNameError},
		{name: "one-label base, list unknown: answered as asked", qname: "web.default.svc.cluster.local.", qtype: dns.TypeA},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := new(dns.Msg).SetQuestion(tc.qname, tc.qtype)
			r.Id = uint16(100 + i)
			if tc.edit != nil {
				tc.edit(r)
			}
			ctx := context.Background()
			if tc.own {
				ctx = query.MarkOwn(ctx)
			}
			// Each case is its own client: nothing one case leaves in memory answers another's.
			rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: "10.244.9." + string(rune('1'+i))})
			rcode, err := rg.ServeDNS(ctx, rec, r)
			if err != nil || !plugin.ClientWrite(rcode) {
				t.Fatalf("Expected a reply written, got rcode %d, error %v", rcode, err)
			}
			m := rec.Msg
			if m.Id != r.Id || len(m.Question) != 1 || m.Question[0] != r.Question[0] {
				t.Fatalf("Expected ID %d and question %v echoed, got %d and %v", r.Id, r.Question[0], m.Id, m.Question)
			}
			if m.Rcode != tc.rcode {
				t.Errorf("Expected rcode %s, got %s", dns.RcodeToString[tc.rcode], dns.RcodeToString[m.Rcode])
			}
			var cname *dns.CNAME
			if len(m.Answer) > 0 {
				cname, _ = m.Answer[0].(*dns.CNAME)
			}
			switch {
			case tc.nodata && (len(m.Answer) != 0 || len(m.Ns) != 1):
				t.Errorf("Expected a plain NODATA with the stopping name's SOA, got %v", m)
			case tc.target == "" && cname != nil:
				t.Errorf("Expected no completion, got %v", m.Answer)
			case tc.target != "" && (cname == nil || cname.Hdr.Name != tc.qname || cname.Target != tc.target || len(m.Answer) != 2 || m.AuthenticatedData):
				t.Errorf("Expected a CNAME %s -> %s and its address, without AD, got %v", tc.qname, tc.target, m)
			}
			// Without a completion, the reply is exactly what the chain below gives.
			if tc.target == "" && !tc.nodata {
				direct := dnstest.NewRecorder(&test.ResponseWriter{})
				next.ServeDNS(context.Background(), direct, r)
				if direct.Msg.String() != m.String() {
					t.Errorf("Expected the chain's own reply\n%v\ngot\n%v", direct.Msg, m)
				}
			}
		})
	}
}
