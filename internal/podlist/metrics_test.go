package podlist

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetricsLint(t *testing.T) {
	for name, c := range map[string]prometheus.Collector{
		"lookups": lookupCount, "losses": lossCount, "up": upCollector{},
	} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil || len(problems) != 0 {
			t.Errorf("%s: Expected no lint problems, got %v, %v", name, problems, err)
		}
	}
}

func TestWatchUp(t *testing.T) {
	if n := testutil.CollectAndCount(upCollector{}); n != 0 {
		t.Fatalf("Expected no pod_watch_up without a running watch, got %d samples", n)
	}
	api := serveAPI(t, mkPod("shop", "api-0", "node-a", "10.244.1.10"))
	api.SetDown(true)
	s := startSource(t, api, Config{Node: "node-a"})
	want := func(v string) {
		t.Helper()
		waitFor(t, "pod_watch_up "+v, func() bool {
			return testutil.CollectAndCompare(upCollector{}, strings.NewReader(
				"# HELP coredns_raceguard_pod_watch_up 1 while every running pod watch answers lookups (synced, not lost, within its capacity), 0 otherwise; absent without one.\n"+
					"# TYPE coredns_raceguard_pod_watch_up gauge\ncoredns_raceguard_pod_watch_up "+v+"\n")) == nil
		})
	}
	want("0")
	api.SetDown(false)
	want("1")
	s.Stop()
	if n := testutil.CollectAndCount(upCollector{}); n != 0 {
		t.Errorf("Expected no pod_watch_up once stopped, got %d samples", n)
	}
}
