package nodelocal

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestMetricsLint lints the directive's metrics, one child of each materialised.
func TestMetricsLint(t *testing.T) {
	probes.WithLabelValues("answered")
	captureChanges.WithLabelValues("capture")
	selfCheckOK.WithLabelValues("169.254.20.10")
	for _, c := range []prometheus.Collector{probes, captureChanges, selfCheckOK} {
		problems, err := testutil.CollectAndLint(c)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("%s: %s", p.Metric, p.Text)
		}
	}
}
