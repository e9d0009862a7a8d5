package nodelocal

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// probes counts the upstream probes, by result.
	probes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_upstream_probes_total",
		Help:      "Counter of the node-local server's probes of its upstream, by result: answered, unanswered.",
	}, []string{"result"})

	// captureChanges counts the changes between capturing and holding.
	captureChanges = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_capture_changes_total",
		Help:      "Counter of the node-local server's changes of state, by the state it went to: capture (its upstream answers), hold (it stopped answering).",
	}, []string{"to"})

	// selfCheckOK is 1 for each listen address while a query from the node to it reaches this
	// server.
	selfCheckOK = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_self_check",
		Help:      "1 while a DNS query from the node to the listen address reaches this server, 0 while it reaches another (a socket-level service load balancer) or none; by address (the Corefile's).",
	}, []string{"address"})
)
