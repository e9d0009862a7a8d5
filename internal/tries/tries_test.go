package tries

import (
	"context"
	"net/netip"
	"testing"

	"github.com/coredns/coredns/core/dnsserver"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/dnstest"
	"github.com/coredns/coredns/plugin/test"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/query"
)

type seen struct{ tries []string }

func (s *seen) ObserveTry(_ context.Context, client netip.Addr, name string) {
	s.tries = append(s.tries, client.String()+" "+name)
}

// answer is a next plugin that answers every query.
type answer struct{}

func (answer) ServeDNS(_ context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	w.WriteMsg(new(dns.Msg).SetReply(r))
	return dns.RcodeSuccess, nil
}
func (answer) Name() string { return "answer" }

type self struct{ answer }

func (self) ObservesTries() bool { return true }

func TestObservers(t *testing.T) {
	var plugins []plugin.Plugin
	add := func(p plugin.Plugin) { plugins = append(plugins, p) }
	ctx1, ctx2 := new(int), new(int)
	AddObservers(ctx1, add)
	AddObservers(ctx1, add) // a second raceguard block of the same instance
	if len(plugins) != 1 {
		t.Fatalf("Expected observers added once per instance, got %d", len(plugins))
	}
	AddObservers(ctx2, add) // a reload
	if len(plugins) != 2 {
		t.Fatalf("Expected observers added again for a new instance, got %d", len(plugins))
	}
	if h := plugins[0](self{}); h != (self{}) {
		t.Errorf("Expected the observer to leave the chain before a handler that observes itself, got %T", h)
	}
	h := plugins[0](answer{})

	here, other := &seen{}, &seen{}
	undo := Register([]string{"dns://:53"}, here)
	undoOther := Register([]string{"dns://10.0.0.1:53"}, other)
	defer undoOther()
	serve := func(name string, qtype uint16, own bool) {
		t.Helper()
		ctx := context.WithValue(context.Background(), dnsserver.Key{}, &dnsserver.Server{Addr: "dns://:53"})
		if own {
			ctx = query.MarkOwn(ctx)
		}
		rec := dnstest.NewRecorder(&test.ResponseWriter{RemoteIP: "10.1.2.3"})
		if _, err := h.ServeDNS(ctx, rec, new(dns.Msg).SetQuestion(name, qtype)); err != nil || rec.Msg == nil {
			t.Fatalf("Expected %s passed on and answered, got %v, %v", name, rec.Msg, err)
		}
	}
	serve("Wiki.EU.corp.test.", dns.TypeA, false)
	serve("wiki.eu.corp.test.", dns.TypeAAAA, false)
	serve("wiki.eu.corp.test.", dns.TypeTXT, false) // no address query
	serve("x.corp.test.", dns.TypeA, true)          // raceguard's own
	want := []string{"10.1.2.3 wiki.eu.corp.test.", "10.1.2.3 wiki.eu.corp.test."}
	if len(here.tries) != 2 || here.tries[0] != want[0] || here.tries[1] != want[1] {
		t.Errorf("Expected %v observed, got %v", want, here.tries)
	}
	if len(other.tries) != 0 {
		t.Errorf("Expected nothing observed for another listener, got %v", other.tries)
	}
	undo()
	serve("again.corp.test.", dns.TypeA, false)
	if len(here.tries) != 2 {
		t.Errorf("Expected nothing observed once unregistered, got %v", here.tries)
	}
}

func TestListeners(t *testing.T) {
	cfg := &dnsserver.Config{Transport: "dns", Port: "53", ListenHosts: []string{"", "169.254.20.10", "::1"}}
	got := Listeners(cfg)
	want := []string{"dns://:53", "dns://169.254.20.10:53", "dns://[::1]:53"}
	if len(got) != len(want) {
		t.Fatalf("Expected %v, got %v", want, got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("Expected %v, got %v", want, got)
		}
	}
}
