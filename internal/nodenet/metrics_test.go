package nodenet

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsLint lints the node set-up's metrics, one child of each materialised.
func TestMetricsLint(t *testing.T) {
	rulesPresent.WithLabelValues("notrack")
	state.WithLabelValues("hold")
	addressPresent.WithLabelValues("169.254.20.10")
	link.WithLabelValues("dummy")
	restores.WithLabelValues("firewall_order")
	fallbacks.WithLabelValues("no_dummy")
	errorsTotal.WithLabelValues("address")
	for _, c := range []prometheus.Collector{rulesPresent, state, addressPresent, link, restores, fallbacks, errorsTotal} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
