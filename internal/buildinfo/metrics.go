package buildinfo

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

// buildInfo is 1, labelled with raceguard's version and revision and the Go version of the build.
var buildInfo = promauto.NewGaugeVec(prometheus.GaugeOpts{
	Namespace: plugin.Namespace,
	Subsystem: module.Name,
	Name:      "build_info",
	Help:      "A metric with a constant '1' value labeled by version, revision, and goversion from which raceguard was built.",
}, []string{"version", "revision", "goversion"})
