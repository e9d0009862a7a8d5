package recovery

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

// panics counts the panics Do recovered, by server and by the goroutine's work.
var panics = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: plugin.Namespace,
	Subsystem: module.Name,
	Name:      "panics_total",
	Help:      "Counter of panics recovered in the goroutines raceguard starts (a collapse flight, a sibling prefetch, a search walk), by where.",
}, []string{"server", "where"})
