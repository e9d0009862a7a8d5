package stackstart

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// startingSize is the runtime's starting stack size, as the controller last read it.
	startingSize = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "stack_start_bytes",
		Help:      "The stack size new goroutines start with (runtime/metrics /gc/stack/starting-size:bytes), as last read; 0 while the mechanism is off.",
	})

	// holdersGauge is the goroutines parked to raise it.
	holdersGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "stack_start_holders",
		Help:      "Goroutines parked with deep stacks to raise the runtime's starting stack size to the target.",
	})

	// targetGauge is the starting size aimed at.
	targetGauge = promauto.NewGauge(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "stack_start_target_bytes",
		Help:      "The starting stack size the holders aim at; 0 when the mechanism is off (RACEGUARD_STACK_START=off).",
	})
)
