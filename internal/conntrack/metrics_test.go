package conntrack

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

const metricsHeader = `# HELP coredns_raceguard_conntrack_clash_resolve_total Counter of conntrack insertion races the kernel resolved by merging the loser into the winner's entry, summed over CPUs (kernel clash_resolve, Linux 5.10+).
# TYPE coredns_raceguard_conntrack_clash_resolve_total counter
`

func TestCollector(t *testing.T) {
	defer SetSource(nil, "")
	full := Stats{
		InsertFailed: 299, Drop: 300, ClashResolve: 447, EarlyDrop: 2, SearchRestart: 3, ChainTooLong: 4,
		HasClashResolve: true, HasChainTooLong: true, Entries: 2673, MaxEntries: 262144, Source: "netlink",
	}
	tests := []struct {
		name   string
		r      Reader
		node   string
		want   map[string]float64 // metric (name{labels}) -> value
		absent []string
	}{
		{"6.x netlink", &fakeReader{s: full}, "node-a", map[string]float64{
			`coredns_raceguard_conntrack_insert_failed_total{node="node-a"}`:  299,
			`coredns_raceguard_conntrack_drop_total{node="node-a"}`:           300,
			`coredns_raceguard_conntrack_clash_resolve_total{node="node-a"}`:  447,
			`coredns_raceguard_conntrack_early_drop_total{node="node-a"}`:     2,
			`coredns_raceguard_conntrack_search_restart_total{node="node-a"}`: 3,
			`coredns_raceguard_conntrack_chaintoolong_total{node="node-a"}`:   4,
			`coredns_raceguard_conntrack_entries{node="node-a"}`:              2673,
			`coredns_raceguard_conntrack_entries_limit{node="node-a"}`:        262144,
			`coredns_raceguard_conntrack_up{node="node-a",source="netlink"}`:  1,
		}, nil},
		{"pre-5.10 procfs, limit unknown", &fakeReader{s: Stats{InsertFailed: 5, Drop: 1, Entries: 9, Source: "procfs"}}, "old", map[string]float64{
			`coredns_raceguard_conntrack_insert_failed_total{node="old"}`:  5,
			`coredns_raceguard_conntrack_drop_total{node="old"}`:           1,
			`coredns_raceguard_conntrack_early_drop_total{node="old"}`:     0,
			`coredns_raceguard_conntrack_search_restart_total{node="old"}`: 0,
			`coredns_raceguard_conntrack_entries{node="old"}`:              9,
			`coredns_raceguard_conntrack_up{node="old",source="procfs"}`:   1,
		}, []string{"clash_resolve_total", "chaintoolong_total", "entries_limit"}},
		{"failed fallback read", fallback{NewProcfs(filepath.Join(t.TempDir(), "missing"))}, "n", map[string]float64{
			`coredns_raceguard_conntrack_up{node="n",source="netlink"}`: 0,
		}, []string{"insert_failed", "entries"}},
		{"failed procfs read", NewProcfs(filepath.Join(t.TempDir(), "missing")), "n", map[string]float64{
			`coredns_raceguard_conntrack_up{node="n",source="procfs"}`: 0,
		}, []string{"insert_failed", "entries"}},
		{"failed foreign reader", &fakeReader{err: errors.New("boom")}, "n", map[string]float64{
			`coredns_raceguard_conntrack_up{node="n",source="unknown"}`: 0,
		}, []string{"insert_failed", "entries"}},
		{"no source", nil, "", map[string]float64{}, []string{"conntrack_up"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			SetSource(tc.r, tc.node)
			got := collect(t)
			if len(got) != len(tc.want) {
				t.Errorf("Expected %d samples, got %d: %v", len(tc.want), len(got), got)
			}
			for k, v := range tc.want {
				if g, ok := got[k]; !ok || g != v {
					t.Errorf("Expected %s %v, got %v (present %t)", k, v, g, ok)
				}
			}
			for k := range got {
				for _, a := range tc.absent {
					if strings.Contains(k, a) {
						t.Errorf("Expected no %s sample, got %s", a, k)
					}
				}
			}
			problems, err := testutil.CollectAndLint(collector{})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Errorf("Expected no lint problem, got %s: %s", p.Metric, p.Text)
			}
		})
	}
}

// TestCollectorCompare checks one metric's full exposition, Help and type included.
func TestCollectorCompare(t *testing.T) {
	defer SetSource(nil, "")
	SetSource(&fakeReader{s: Stats{ClashResolve: 1749, HasClashResolve: true, Source: "procfs"}}, "node-b")
	want := metricsHeader + `coredns_raceguard_conntrack_clash_resolve_total{node="node-b"} 1749
`
	if err := testutil.CollectAndCompare(collector{}, strings.NewReader(want), "coredns_raceguard_conntrack_clash_resolve_total"); err != nil {
		t.Errorf("Expected a matching exposition, got %v", err)
	}
}

// TestCollectorRegistered: init registered the collector on the default registry, once.
func TestCollectorRegistered(t *testing.T) {
	err := prometheus.Register(collector{})
	var are prometheus.AlreadyRegisteredError
	if !errors.As(err, &are) {
		t.Errorf("Expected AlreadyRegisteredError, got %v", err)
	}
}

// collect gathers the collector into name{labels} -> value.
func collect(t *testing.T) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(collector{}); err != nil {
		t.Fatal(err)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("Expected no gather error, got %v", err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+`="`+l.GetValue()+`"`)
			}
			v := m.GetGauge().GetValue()
			if m.Counter != nil {
				v = m.GetCounter().GetValue()
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = v
		}
	}
	return got
}

// TestCollectorConcurrent scrapes while the source is replaced and closed, as a reload does.
func TestCollectorConcurrent(t *testing.T) {
	defer SetSource(nil, "")
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 200 {
			var r Reader
			switch i % 3 {
			case 1:
				r = NewProcfs(filepath.Join(t.TempDir(), "missing"))
			case 2:
				// A netlink reader where ctnetlink answers (as root), a failing one otherwise.
				if nl, err := NewNetlink(); err == nil {
					r = nl
				} else {
					r = &fakeReader{err: err}
				}
			}
			SetSource(r, "n")
			if r != nil {
				r.Close()
			}
		}
	}()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(collector{})
	for {
		select {
		case <-done:
			return
		default:
		}
		if _, err := reg.Gather(); err != nil {
			t.Fatalf("Expected no gather error, got %v", err)
		}
	}
}
