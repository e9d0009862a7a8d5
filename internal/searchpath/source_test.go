package searchpath

import (
	"reflect"
	"strings"
	"testing"

	"github.com/coredns/coredns/plugin/test"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
)

var podList = []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "lab.internal."}

func TestExpand(t *testing.T) {
	tests := []struct {
		qname string
		ok    bool
		names []string
		local int
	}{
		{"example.org.default.svc.cluster.local.", true, []string{
			"example.org.default.svc.cluster.local.", "example.org.svc.cluster.local.", "example.org.cluster.local.",
			"example.org.lab.internal.", "example.org.",
		}, 3},
		{"api.shop.default.svc.cluster.local.", true, []string{
			"api.shop.default.svc.cluster.local.", "api.shop.svc.cluster.local.", "api.shop.cluster.local.",
			"api.shop.lab.internal.", "api.shop.",
		}, 3},
		{"web.default.svc.cluster.local.", false, nil, 0},      // one-label base: ambiguous, never completed
		{"default.svc.cluster.local.", false, nil, 0},          // the search domain itself
		{"example.org.shop.svc.cluster.local.", false, nil, 0}, // not below the first domain
		{"example.org.", false, nil, 0},
		{"xdefault.svc.cluster.local.", false, nil, 0}, // a suffix, but not at a label boundary
	}
	for _, tc := range tests {
		w, ok := Expand(tc.qname, podList)
		if ok != tc.ok || !reflect.DeepEqual(w.Names, tc.names) || w.Local != tc.local {
			t.Errorf("Expand(%q): Expected %v %v local %d, got %v %v local %d", tc.qname, tc.ok, tc.names, tc.local, ok, w.Names, w.Local)
		}
	}
	if _, ok := Expand("a.b.default.svc.cluster.local.", nil); ok {
		t.Error("Expected no walk without a search list")
	}
}

func TestInfer(t *testing.T) {
	in := Infer{ClusterDomains: []string{"cluster.local.", "corp.cluster."}, Node: NewNodeSearch([]string{"lab.internal.", "svc.cluster.local."})}
	tests := []struct {
		qname string
		want  []string
	}{
		{"Example.Org.Shop.Svc.Cluster.Local.", []string{"shop.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "lab.internal."}},
		{"x.y.ns.svc.corp.cluster.", []string{"ns.svc.corp.cluster.", "svc.corp.cluster.", "corp.cluster.", "lab.internal."}},
		{"shop.svc.cluster.local.", nil},        // a namespace, no base
		{"web.default.svc.cluster.local.", nil}, // a one-label base, refused before any work
		{"svc.cluster.local.", nil},
		{"x.pod.cluster.local.", nil},
		{"example.org.", nil},
	}
	for _, tc := range tests {
		m := new(dns.Msg).SetQuestion(tc.qname, dns.TypeA)
		name := strings.ToLower(tc.qname)
		if got := in.list(name); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Infer(%q): Expected %v, got %v", tc.qname, tc.want, got)
		}
		w, ok := in.Plan(name, request.Request{W: &test.ResponseWriter{}, Req: m})
		if ok != (tc.want != nil) || ok && (w.Verify != tc.want[0] || w.Names[0] != name) {
			t.Errorf("Infer.Plan(%q): Expected a walk %v verifying %v, got %v %+v", tc.qname, tc.want != nil, tc.want, ok, w)
		}
	}
}

func TestFunc(t *testing.T) {
	f := Func(func(request.Request) []string { return []string{"a.", "b.", ""} })
	if w, ok := f.Plan("x.y.a.", request.Request{}); !ok || !reflect.DeepEqual(w.Names, []string{"x.y.a.", "x.y.b.", "x.y."}) || w.Verify != "" {
		t.Errorf("Expected the sentinel dropped and no verification, got %v %+v", ok, w)
	}
	if w, ok := f.Plan("y.a.", request.Request{}); ok {
		t.Errorf("Expected no walk for a name too short to be completed, got %+v", w)
	}
	if w, ok := Func(func(request.Request) []string { return nil }).Plan("x.y.a.", request.Request{}); ok {
		t.Errorf("Expected no walk without a list, got %+v", w)
	}
}
