package reply

import (
	"testing"

	"github.com/miekg/dns"
)

func TestFor(t *testing.T) {
	shared := new(dns.Msg)
	shared.SetQuestion("example.org.", dns.TypeA)
	shared.Id = 1
	shared.Response, shared.AuthenticatedData, shared.RecursionAvailable = true, true, true
	shared.Answer = []dns.RR{mustRR("example.org. 300 IN A 192.0.2.1")}
	shared.SetEdns0(4096, true)
	o := shared.IsEdns0()
	o.Option = append(o.Option,
		&dns.EDNS0_COOKIE{Code: dns.EDNS0COOKIE, Cookie: "0011223344556677"},
		&dns.EDNS0_NSID{Code: dns.EDNS0NSID, Nsid: "6e73"},
		&dns.EDNS0_PADDING{Padding: make([]byte, 8)},
	)

	req := new(dns.Msg)
	req.SetQuestion("ExAmPlE.oRg.", dns.TypeA)
	req.Id = 4242
	req.CheckingDisabled = true
	req.SetEdns0(1232, false)

	m := For(shared, req)
	if m.Id != 4242 || m.Question[0].Name != "ExAmPlE.oRg." || !m.CheckingDisabled || !m.RecursionDesired {
		t.Errorf("Expected the client's ID, question and flags, got %v", m)
	}
	if m.AuthenticatedData {
		t.Error("Expected AD cleared for a client without DO or AD")
	}
	ro := m.IsEdns0()
	if ro == nil || ro.UDPSize() != 1232 || ro.Do() {
		t.Fatalf("Expected the client's OPT (1232, no DO), got %v", ro)
	}
	if len(ro.Option) != 1 || ro.Option[0].Option() != dns.EDNS0NSID {
		t.Errorf("Expected only NSID kept of the response's options, got %v", ro.Option)
	}
	// The shared message is untouched.
	if shared.Id != 1 || shared.Question[0].Name != "example.org." || len(shared.IsEdns0().Option) != 3 || !shared.AuthenticatedData {
		t.Errorf("Expected the shared message unchanged, got %v", shared)
	}
	m.Answer[0].(*dns.A).Hdr.Ttl = 1
	if shared.Answer[0].Header().Ttl != 300 {
		t.Error("Expected a deep copy: changing the reply changed the shared answer")
	}

	// A client without EDNS gets no OPT record; one with DO keeps AD.
	plain := new(dns.Msg)
	plain.SetQuestion("example.org.", dns.TypeA)
	if m := For(shared, plain); m.IsEdns0() != nil || m.AuthenticatedData {
		t.Errorf("Expected no OPT and no AD for a plain query, got %v", m)
	}
	do := new(dns.Msg)
	do.SetQuestion("example.org.", dns.TypeA)
	do.SetEdns0(512, true)
	if m := For(shared, do); !m.AuthenticatedData || !m.IsEdns0().Do() || m.IsEdns0().UDPSize() != 512 {
		t.Errorf("Expected AD and DO kept for a DO query, got %v", m)
	}
}

func mustRR(s string) dns.RR {
	rr, err := dns.NewRR(s)
	if err != nil {
		panic(err)
	}
	return rr
}
