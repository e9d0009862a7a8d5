package nodenet

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// rulesPresent is 1 while a kind of raceguard's rules is fully in place.
	rulesPresent = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_rules_present",
		Help:      "1 while raceguard's node rules of a kind are all in place: notrack (its nftables table, with the rules its state wants), firewall (accept rules at the top of iptables' filter chains, where the node has them).",
	}, []string{"kind"})

	// state is 1 for what the node set-up does: capture, hold or observe.
	state = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_state",
		Help:      "1 for what the node set-up does: capture (the pods' DNS skips conntrack to this server), hold (it takes no pod's DNS: its upstream does not answer, or it is starting), observe (capture off: it never takes any).",
	}, []string{"state"})

	// addressPresent is 1 for each listen address while the node has it.
	addressPresent = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_address_present",
		Help:      "1 while the node has the node-local listen address, by address (the Corefile's, so bounded).",
	}, []string{"address"})

	// link says where the listen addresses are: a dummy link, or lo where the kernel has none.
	link = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_link",
		Help:      "1 for the kind of link the node-local addresses are on: dummy, or lo where the kernel has no dummy links.",
	}, []string{"kind"})

	// restores counts what the periodic check found missing and put back.
	restores = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_restores_total",
		Help:      "Counter of node set-up items the periodic check found missing and restored, by kind: address, notrack, firewall, firewall_order (accept rules moved back to the top of their chain).",
	}, []string{"kind"})

	// fallbacks counts set-up steps that took their fallback.
	fallbacks = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_fallbacks_total",
		Help:      "Counter of node set-ups that took a fallback, by reason: no_dummy (addresses on lo), iptables_legacy (no accept rules in a legacy filter table).",
	}, []string{"reason"})

	// errorsTotal counts failed attempts of the periodic check.
	errorsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "nodelocal_errors_total",
		Help:      "Counter of failed node set-up checks or restores, by kind: address, notrack, firewall.",
	}, []string{"kind"})
)

func boolGauge(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
