package correlate

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// correlation is the lagged correlation of a conntrack counter with a DNS signal.
	correlation = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "conntrack_correlation",
		Help:      "Pearson correlation, over the window, of a conntrack counter's per-interval increase (drop, insert_failed, clash_resolve) with a DNS signal (late_siblings, retransmits) the given lag later; 0 when either did not move.",
	}, []string{"node", "conntrack", "dns", "lag"})

	// coincident counts late siblings lost in an interval with conntrack drops.
	coincident = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "late_siblings_with_conntrack_drops_total",
		Help:      "Counter of late siblings whose lost query was sent in an interval in which conntrack dropped packets or failed an insert.",
	}, []string{"node"})
)
