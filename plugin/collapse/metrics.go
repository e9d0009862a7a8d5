package collapse

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	// coalesced counts queries that joined a resolution already in flight.
	coalesced = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "raceguard",
		Name:      "coalesced_total",
		Help:      "Counter of queries that joined an identical query's resolution already in flight, by type.",
	}, []string{"server", "type"})

	// retransmits counts client retransmissions that joined their own first try.
	retransmits = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "raceguard",
		Name:      "retransmits_joined_total",
		Help:      "Counter of client retransmissions (same address, port, ID and question) that joined the query in flight.",
	}, []string{"server"})

	// waiterTimeouts counts waiters whose own deadline came before the shared resolution.
	waiterTimeouts = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "raceguard",
		Name:      "coalesce_waiter_timeouts_total",
		Help:      "Counter of queries that waited on a shared resolution and reached their own deadline first.",
	}, []string{"server"})

	// inflight is the number of resolutions in flight (keys being coalesced).
	inflight = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: "raceguard",
		Name:      "coalesce_inflight",
		Help:      "Resolutions in flight that identical queries can join.",
	}, []string{"server"})

	// overflows counts queries resolved alone because a cap was reached.
	overflows = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: "raceguard",
		Name:      "coalesce_overflows_total",
		Help:      "Counter of queries resolved on their own because the flights in total or the waiters on one flight were at their cap.",
	}, []string{"server"})
)
