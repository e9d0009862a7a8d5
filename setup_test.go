package raceguard

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/coredns/caddy"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/searchpath"
)

func TestSetup(t *testing.T) {
	tests := []struct {
		name  string
		input string
		check func(t *testing.T, rg *RaceGuard)
	}{
		{"defaults", `raceguard`, func(t *testing.T, rg *RaceGuard) {
			want := New()
			want.Zones = []string{"example.org."}
			if !reflect.DeepEqual(rg, want) {
				t.Errorf("Expected defaults %+v, got %+v", want, rg)
			}
		}},
		{"zones from arguments", `raceguard Cluster.Local 10.0.0.0/24`, func(t *testing.T, rg *RaceGuard) {
			if want := []string{"cluster.local.", "0.0.10.in-addr.arpa."}; !reflect.DeepEqual(rg.Zones, want) {
				t.Errorf("Expected zones %v, got %v", want, rg.Zones)
			}
		}},
		{"empty block", "raceguard {\n}", nil},
		{"infer with listed node domains", `raceguard {
			search infer
			cluster_domain Cluster.Local example.cluster
			node_search corp.example.com lab.internal.
		}`, func(t *testing.T, rg *RaceGuard) {
			want := searchConfig{mode: searchInfer, clusterDomains: []string{"cluster.local.", "example.cluster."}, domains: []string{"corp.example.com.", "lab.internal."}, parallel: true, deadline: searchpath.DefaultDeadline, budget: searchpath.Budget{Rate: defaultWalkRate, Burst: defaultWalkBurst}, maxWalks: searchpath.DefaultMaxWalks}
			if !reflect.DeepEqual(rg.search, want) {
				t.Errorf("Expected %+v, got %+v", want, rg.search)
			}
		}},
		{"infer with a node resolv.conf", "raceguard {\n node_search testdata/resolv.conf\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.file != "testdata/resolv.conf" || rg.search.domains != nil {
				t.Errorf("Expected node_search from testdata/resolv.conf, got %+v", rg.search)
			}
		}},
		{"infer without node domains", "raceguard {\n node_search none\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.file != "" || rg.search.domains != nil {
				t.Errorf("Expected no node domains, got %+v", rg.search)
			}
		}},
		{"search @kubernetes", "raceguard {\n search @kubernetes\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.mode != searchPlugin || rg.search.plugin != "kubernetes" {
				t.Errorf("Expected @kubernetes, got %+v", rg.search)
			}
		}},
		{"search from a resolv.conf", "raceguard {\n search testdata/resolv.conf\n}", func(t *testing.T, rg *RaceGuard) {
			want := []string{"default.svc.cluster.local.", "svc.cluster.local.", "cluster.local.", "lab.internal."}
			if rg.search.mode != searchFixed || !reflect.DeepEqual(rg.search.domains, want) {
				t.Errorf("Expected fixed %v, got %+v", want, rg.search)
			}
		}},
		{"search from a list", "raceguard {\n search a.example.org B.example.org\n}", func(t *testing.T, rg *RaceGuard) {
			want := []string{"a.example.org.", "b.example.org."}
			if rg.search.mode != searchFixed || !reflect.DeepEqual(rg.search.domains, want) {
				t.Errorf("Expected fixed %v, got %+v", want, rg.search)
			}
		}},
		{"sequential walks", "raceguard {\n parallel_walk off\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.parallel {
				t.Error("Expected parallel_walk off")
			}
		}},
		{"walk options", "raceguard {\n walk_deadline 50ms\n walk_budget 5 40\n max_walks 32\n node_local on\n}", func(t *testing.T, rg *RaceGuard) {
			s := rg.search
			if s.deadline != 50*time.Millisecond || s.budget != (searchpath.Budget{Rate: 5, Burst: 40}) || s.maxWalks != 32 || !s.nodeLocal {
				t.Errorf("Expected deadline 50ms, budget 5/40, 32 walks, node_local on; got %+v", s)
			}
		}},
		{"walk budget default burst and off", "raceguard {\n walk_budget 0.5\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.budget != (searchpath.Budget{Rate: 0.5, Burst: 2.5}) {
				t.Errorf("Expected 0.5 walks a second, 5 seconds' worth at once, got %+v", rg.search.budget)
			}
		}},
		{"search pods", "raceguard {\n search pods\n kubeconfig /etc/kube.conf\n cluster_domain corp.cluster\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.mode != searchPods || rg.search.kubeconfig != "/etc/kube.conf" || rg.search.clusterDomains[0] != "corp.cluster." {
				t.Errorf("Expected search pods with its kubeconfig and cluster domain, got %+v", rg.search)
			}
		}},
		{"search off", "raceguard {\n search off\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.search.mode != searchOff {
				t.Errorf("Expected search off, got %+v", rg.search)
			}
		}},
		{"conntrack and correlation", `raceguard {
			sibling_prefetch off
			conntrack procfs /host/proc/net/stat/nf_conntrack
			interval 500ms
			window 5m
			node worker-1
		}`, func(t *testing.T, rg *RaceGuard) {
			want := correlate.Config{Source: conntrack.SourceProcfs, ProcPath: "/host/proc/net/stat/nf_conntrack", Interval: 500 * time.Millisecond, Window: 5 * time.Minute, Node: "worker-1"}
			if rg.siblingPrefetch || !reflect.DeepEqual(rg.conntrack, want) {
				t.Errorf("Expected prefetch off and %+v, got %v and %+v", want, rg.siblingPrefetch, rg.conntrack)
			}
		}},
		{"fingerprints", "raceguard {\n fingerprints 200000\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.fingerprintCapacity != 200000 {
				t.Errorf("Expected 200000 fingerprints, got %d", rg.fingerprintCapacity)
			}
		}},
		{"conntrack off", "raceguard {\n conntrack off\n}", func(t *testing.T, rg *RaceGuard) {
			if rg.conntrack.Source != conntrack.SourceOff {
				t.Errorf("Expected conntrack off, got %+v", rg.conntrack)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := caddy.NewTestController("dns", tc.input)
			c.ServerBlockKeys = []string{"example.org:53"}
			rg, err := parse(c)
			if err != nil {
				t.Fatalf("Expected no error, got %v", err)
			}
			if tc.check != nil {
				tc.check(t, rg)
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	const prefix = "plugin/raceguard: "
	tests := []struct {
		input string
		want  string // the whole message a user sees
	}{
		{"raceguard\nraceguard", prefix + "this plugin can only be used once per Server Block"},
		{"raceguard example..org", prefix + `Testfile:1 - Error during parsing: raceguard: invalid zone "example..org"`},
		{"raceguard {\n bogus 1\n}", prefix + "Testfile:2 - Error during parsing: unknown property 'bogus'"},
		{"raceguard {\n search\n}", prefix + "Testfile:2 - Error during parsing: search: missing value"},
		{"raceguard {\n search infer\n search off\n}", prefix + "Testfile:3 - Error during parsing: search: given more than once"},
		{"raceguard {\n search infer cluster.local\n}", prefix + `Testfile:2 - Error during parsing: search infer: unexpected value "cluster.local"`},
		{"raceguard {\n search off now\n}", prefix + `Testfile:2 - Error during parsing: search off: unexpected value "now"`},
		{"raceguard {\n search @\n}", prefix + `Testfile:2 - Error during parsing: search: invalid value "@": want a single @PLUGIN`},
		{"raceguard {\n search @kubernetes @erratic\n}", prefix + `Testfile:2 - Error during parsing: search: invalid value "@kubernetes @erratic": want a single @PLUGIN`},
		{"raceguard {\n search testdata/missing.conf\n}", prefix + `Testfile:2 - Error during parsing: search: cannot read "testdata/missing.conf": open testdata/missing.conf: no such file or directory`},
		{"raceguard {\n search testdata/resolv-nosearch.conf\n}", prefix + `Testfile:2 - Error during parsing: search: "testdata/resolv-nosearch.conf" has no search domains`},
		{"raceguard {\n search testdata/resolv.conf cluster.local\n}", prefix + `Testfile:2 - Error during parsing: search: invalid value "testdata/resolv.conf cluster.local": want a single resolv.conf path`},
		{"raceguard {\n search svc..cluster.local\n}", prefix + `Testfile:2 - Error during parsing: search: invalid value "svc..cluster.local": want a domain name`},
		{"raceguard {\n cluster_domain\n}", prefix + "Testfile:2 - Error during parsing: cluster_domain: missing value: want one or more domain names"},
		{"raceguard {\n cluster_domain .\n}", prefix + `Testfile:2 - Error during parsing: cluster_domain: invalid value ".": want a domain name`},
		{"raceguard {\n search @kubernetes\n cluster_domain cluster.local\n}", prefix + "Testfile:4 - Error during parsing: cluster_domain: only applies to 'search infer' and 'search pods'"},
		{"raceguard {\n search cluster.local\n node_search none\n}", prefix + "Testfile:4 - Error during parsing: node_search: only applies to 'search infer' and 'search pods'"},
		{"raceguard {\n kubeconfig /etc/kube.conf\n}", prefix + "Testfile:3 - Error during parsing: kubeconfig: only applies to 'search pods'"},
		{"raceguard {\n search pods\n kubeconfig\n}", prefix + "Testfile:3 - Error during parsing: kubeconfig: missing value"},
		{"raceguard {\n search pods now\n}", prefix + `Testfile:2 - Error during parsing: search pods: unexpected value "now"`},
		{"raceguard {\n node_search\n}", prefix + "Testfile:2 - Error during parsing: node_search: missing value"},
		{"raceguard {\n node_search /nonexistent/resolv.conf\n}", prefix + `Testfile:2 - Error during parsing: node_search: cannot read "/nonexistent/resolv.conf": open /nonexistent/resolv.conf: no such file or directory`},
		{"raceguard {\n node_search testdata/resolv.conf lab.internal\n}", prefix + `Testfile:2 - Error during parsing: node_search: invalid value "testdata/resolv.conf lab.internal": want a single resolv.conf path`},
		{"raceguard {\n node_search lab_internal!\n}", prefix + `Testfile:2 - Error during parsing: node_search: invalid value "lab_internal!": want a domain name`},
		{"raceguard {\n parallel_walk maybe\n}", prefix + `Testfile:2 - Error during parsing: parallel_walk: invalid value "maybe": want 'on' or 'off'`},
		{"raceguard {\n search off\n parallel_walk on\n}", prefix + "Testfile:4 - Error during parsing: parallel_walk: does not apply to 'search off'"},
		{"raceguard {\n search off\n node_local on\n}", prefix + "Testfile:4 - Error during parsing: node_local: does not apply to 'search off'"},
		{"raceguard {\n walk_deadline 1ms\n}", prefix + `Testfile:2 - Error during parsing: walk_deadline: invalid value "1ms": want a duration from 10ms to 5s`},
		{"raceguard {\n walk_budget\n}", prefix + `Testfile:2 - Error during parsing: walk_budget: want 'RATE [BURST]', got ""`},
		{"raceguard {\n walk_budget fast\n}", prefix + `Testfile:2 - Error during parsing: walk_budget: invalid rate "fast": want walks a second from 0 to 1000000`},
		{"raceguard {\n walk_budget 5 0\n}", prefix + `Testfile:2 - Error during parsing: walk_budget: invalid value "0": want an integer from 1 to 1048576`},
		{"raceguard {\n max_walks 0\n}", prefix + `Testfile:2 - Error during parsing: max_walks: invalid value "0": want an integer from 1 to 65536`},
		{"raceguard {\n node_local maybe\n}", prefix + `Testfile:2 - Error during parsing: node_local: invalid value "maybe": want 'on' or 'off'`},
		{"raceguard {\n sibling_prefetch\n}", prefix + "Testfile:2 - Error during parsing: sibling_prefetch: missing value"},
		{"raceguard {\n sibling_prefetch yes\n}", prefix + `Testfile:2 - Error during parsing: sibling_prefetch: invalid value "yes": want 'on' or 'off'`},
		{"raceguard {\n sibling_prefetch on off\n}", prefix + `Testfile:2 - Error during parsing: sibling_prefetch: want 1 value(s), got 2: "on off"`},
		{"raceguard {\n conntrack\n}", prefix + "Testfile:2 - Error during parsing: conntrack: missing value"},
		{"raceguard {\n conntrack ebpf\n}", prefix + `Testfile:2 - Error during parsing: conntrack: invalid value "ebpf": want 'netlink', 'procfs [PATH]' or 'off'`},
		{"raceguard {\n conntrack netlink /proc\n}", prefix + `Testfile:2 - Error during parsing: conntrack netlink: unexpected value "/proc"`},
		{"raceguard {\n conntrack procfs /a /b\n}", prefix + `Testfile:2 - Error during parsing: conntrack: invalid value "procfs /a /b": want 'procfs [PATH]'`},
		{"raceguard {\n fingerprints\n}", prefix + "Testfile:2 - Error during parsing: fingerprints: missing value"},
		{"raceguard {\n fingerprints 0\n}", prefix + `Testfile:2 - Error during parsing: fingerprints: invalid value "0": want an integer from 1 to 4194304`},
		{"raceguard {\n fingerprints 1e6\n}", prefix + `Testfile:2 - Error during parsing: fingerprints: invalid value "1e6": want an integer from 1 to 4194304`},
		{"raceguard {\n interval\n}", prefix + "Testfile:2 - Error during parsing: interval: missing value"},
		{"raceguard {\n interval 1\n}", prefix + `Testfile:2 - Error during parsing: interval: invalid value "1": want a duration from 100ms to 1m0s`},
		{"raceguard {\n interval 10ms\n}", prefix + `Testfile:2 - Error during parsing: interval: invalid value "10ms": want a duration from 100ms to 1m0s`},
		{"raceguard {\n window 48h\n}", prefix + `Testfile:2 - Error during parsing: window: invalid value "48h": want a duration from 10s to 24h0m0s`},
		{"raceguard {\n interval 1m\n window 10m\n}", prefix + `Testfile:4 - Error during parsing: window: invalid value "10m0s": want 20 to 86400 intervals of 1m0s`},
		{"raceguard {\n node\n}", prefix + "Testfile:2 - Error during parsing: node: missing value"},
		{"raceguard {\n node a b\n}", prefix + `Testfile:2 - Error during parsing: node: want 1 value(s), got 2: "a b"`},
	}
	for i, tc := range tests {
		c := caddy.NewTestController("dns", tc.input)
		err := setup(c)
		if err == nil {
			t.Errorf("Test %d: Expected error %q for %q, got none", i, tc.want, tc.input)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Test %d: Expected error\n\t%q\ngot\n\t%q", i, tc.want, err.Error())
		}
		if !strings.HasPrefix(err.Error(), prefix) {
			t.Errorf("Test %d: Expected the error to name the plugin, got %q", i, err)
		}
	}
}
