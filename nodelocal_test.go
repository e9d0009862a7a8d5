package raceguard

import (
	"testing"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/test"

	"github.com/raceguard/raceguard/plugin/collapse"
	"github.com/raceguard/raceguard/plugin/nodelocal"
)

// TestScan: raceguard recognises the nodelocal and collapse directives among a block's handlers.
func TestScan(t *testing.T) {
	if nl, _ := scan([]plugin.Handler{test.ErrorHandler()}); nl {
		t.Error("Expected no node-local server without nodelocal")
	}
	if nl, _ := scan([]plugin.Handler{test.ErrorHandler(), &nodelocal.NodeLocal{}}); !nl {
		t.Error("Expected nodelocal found among the handlers")
	}
	if _, hc := scan([]plugin.Handler{test.ErrorHandler(), collapse.New()}); !hc {
		t.Error("Expected collapse found among the handlers")
	}
}

// TestNodeLocalSet: a Corefile's own node_local wins over the nodelocal default.
func TestNodeLocalSet(t *testing.T) {
	for _, tc := range []struct {
		input string
		set   bool
	}{{"raceguard", false}, {"raceguard {\n node_local off\n}", true}, {"raceguard {\n node_local on\n}", true}} {
		rg, err := parse(caddy.NewTestController("dns", tc.input))
		if err != nil {
			t.Fatal(err)
		}
		if rg.search.nodeLocalSet != tc.set {
			t.Errorf("%q: Expected nodeLocalSet %v, got %v", tc.input, tc.set, rg.search.nodeLocalSet)
		}
	}
}
