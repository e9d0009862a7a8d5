package searchpath

import (
	"reflect"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/resolvconf"
)

var podList = []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "lab.internal."}

func TestExpand(t *testing.T) {
	tests := []struct {
		qname    string
		ok       bool
		names    []string
		local    int
		oneLabel bool
	}{
		{"example.org.default.svc.cluster.local.", true, []string{
			"example.org.default.svc.cluster.local.", "example.org.svc.cluster.local.", "example.org.cluster.local.",
			"example.org.lab.internal.", "example.org.",
		}, 3, false},
		{"api.shop.default.svc.cluster.local.", true, []string{
			"api.shop.default.svc.cluster.local.", "api.shop.svc.cluster.local.", "api.shop.cluster.local.",
			"api.shop.lab.internal.", "api.shop.",
		}, 3, false},
		{"web.default.svc.cluster.local.", true, []string{ // one-label: marked, completed only where every try is seen
			"web.default.svc.cluster.local.", "web.svc.cluster.local.", "web.cluster.local.", "web.lab.internal.", "web.",
		}, 3, true},
		{"default.svc.cluster.local.", false, nil, 0, false},          // the search domain itself
		{"example.org.shop.svc.cluster.local.", false, nil, 0, false}, // not below the first domain
		{"example.org.", false, nil, 0, false},
		{"xdefault.svc.cluster.local.", false, nil, 0, false},       // a suffix, but not at a label boundary
		{`c\.d.default.svc.cluster.local.`, false, nil, 0, false},   // an escaped dot: labels cannot be told apart
		{`a\046b.default.svc.cluster.local.`, false, nil, 0, false}, // likewise a \DDD escape
	}
	for _, tc := range tests {
		w, ok := Expand(tc.qname, podList)
		var names []string
		if ok {
			names = w.Names()
		}
		if ok != tc.ok || !reflect.DeepEqual(names, tc.names) || w.Local != tc.local || w.OneLabel != tc.oneLabel {
			t.Errorf("Expand(%q): Expected %v %v local %d one-label %v, got %v %v local %d one-label %v",
				tc.qname, tc.ok, tc.names, tc.local, tc.oneLabel, ok, names, w.Local, w.OneLabel)
		}
		if ok && (w.Trusted != len(tc.names) || w.Verify || w.Name != tc.qname) {
			t.Errorf("Expand(%q): Expected the whole list trusted, no verification, the name kept; got %+v", tc.qname, w)
		}
	}
	if _, ok := Expand("a.b.default.svc.cluster.local.", nil); ok {
		t.Error("Expected no walk without a search list")
	}
}

func TestInfer(t *testing.T) {
	in := &Infer{ClusterDomains: []string{"cluster.local.", "corp.cluster."}, Node: resolvconf.New([]string{"lab.internal.", "svc.cluster.local."})}
	tests := []struct {
		qname string
		want  []string // the names of the walk
	}{
		{"Example.Org.Shop.Svc.Cluster.Local.", []string{"example.org.shop.svc.cluster.local.", "example.org.svc.cluster.local.",
			"example.org.cluster.local.", "example.org.lab.internal.", "example.org."}},
		{"x.y.ns.svc.corp.cluster.", []string{"x.y.ns.svc.corp.cluster.", "x.y.svc.corp.cluster.", "x.y.corp.cluster.",
			"x.y.lab.internal.", "x.y."}},
		{"web.default.svc.cluster.local.", nil}, // a one-label base: never without the client's exact list
		{"shop.svc.cluster.local.", nil},        // a namespace, no base
		{"svc.cluster.local.", nil},
		{"x.pod.cluster.local.", nil},
		{"example.org.", nil},
		{`a\.b.default.svc.cluster.local.`, nil},
	}
	for _, tc := range tests {
		m := new(dns.Msg).SetQuestion(tc.qname, dns.TypeA)
		name := strings.ToLower(tc.qname)
		w, ok := in.Plan(*qOf(&test.ResponseWriter{}, m))
		var names []string
		if ok {
			names = w.Names()
		}
		if ok != (tc.want != nil) || !reflect.DeepEqual(names, tc.want) {
			t.Errorf("Infer(%q): Expected %v, got %v %v", tc.qname, tc.want, ok, names)
			continue
		}
		if ok && (!w.Verify || w.Trusted != 3 || w.Local != 3 || w.OneLabel || w.Exact || w.Name != name) {
			t.Errorf("Infer(%q): Expected the namespace verified, its three domains trusted; got %+v", tc.qname, w)
		}
	}
	// The node's domains change: the lists follow.
	in.Node = resolvconf.New([]string{"corp.example."})
	w, _ := in.Plan(named("a.b.default.svc.cluster.local."))
	if want := []string{"svc.cluster.local.", "cluster.local.", "corp.example."}; !reflect.DeepEqual(w.Rest, want) {
		t.Errorf("Expected %v after the node domains changed, got %v", want, w.Rest)
	}
}

func TestInferPlanAllocatesNothing(t *testing.T) {
	in := &Infer{ClusterDomains: []string{"cluster.local."}, Node: resolvconf.New([]string{"lab.internal."})}
	in.Plan(named("a.b.default.svc.cluster.local.")) // builds the lists once
	for _, name := range []string{"web.default.svc.cluster.local.", "example.org.default.svc.cluster.local.", "example.org."} {
		if n := testing.AllocsPerRun(100, func() { in.Plan(named(name)) }); n != 0 {
			t.Errorf("Plan(%q): Expected no allocation, got %v", name, n)
		}
	}
}

func TestFunc(t *testing.T) {
	f := Func(func(request.Request) []string { return []string{"a.", "b.", ""} })
	if w, ok := f.Plan(named("x.y.a.")); !ok || !reflect.DeepEqual(w.Names(), []string{"x.y.a.", "x.y.b.", "x.y."}) || w.Verify || w.Trusted != w.Local {
		t.Errorf("Expected the sentinel dropped, no verification and only the first domain's hierarchy trusted, got %v %+v", ok, w)
	}
	if w, ok := f.Plan(named("y.a.")); ok {
		t.Errorf("Expected no walk for a name too short to be completed, got %+v", w)
	}
	if w, ok := Func(func(request.Request) []string { return nil }).Plan(named("x.y.a.")); ok {
		t.Errorf("Expected no walk without a list, got %+v", w)
	}
}
