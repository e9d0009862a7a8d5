package collapse

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// collapsed counts queries collapsed into a resolution already in flight.
	collapsed = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "collapsed_total",
		Help:      "Counter of queries collapsed into an identical query's resolution already in flight, by type.",
	}, []string{"server", "type"})

	// collapsedRetransmits counts client retransmissions collapsed into their own first try.
	collapsedRetransmits = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "collapsed_retransmits_total",
		Help:      "Counter of client retransmissions (same address, port, ID and question) collapsed into their first try in flight.",
	}, []string{"server"})

	// waiterTimeouts counts waiters whose own deadline came before the shared resolution.
	waiterTimeouts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "collapse_waiter_timeouts_total",
		Help:      "Counter of queries collapsed into a resolution in flight that reached their own deadline first.",
	}, []string{"server"})

	// inflight is the number of resolutions in flight that identical queries can be collapsed into.
	inflight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "collapse_inflight",
		Help:      "Resolutions in flight that identical queries can be collapsed into.",
	}, []string{"server"})

	// overflows counts queries resolved alone because a cap was reached.
	overflows = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "collapse_overflows_total",
		Help:      "Counter of queries resolved on their own because the flights in total or the waiters on one flight were at their cap.",
	}, []string{"server"})
)
