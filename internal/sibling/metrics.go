package sibling

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// prefetches counts sibling queries sent.
	prefetches = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "sibling_prefetches_total",
		Help:      "Counter of sibling (AAAA for an A, A for an AAAA) queries prefetched after a cache miss, by prefetched type.",
	}, []string{"server", "type"})

	// hits counts client queries for a sibling prefetched before they asked.
	hits = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "sibling_prefetch_hits_total",
		Help:      "Counter of client queries for a sibling that was prefetched before they asked, by type.",
	}, []string{"server", "type"})

	// skipped counts prefetches not sent, by why.
	skipped = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "sibling_prefetches_skipped_total",
		Help:      "Counter of sibling prefetches not sent, by reason: busy (the most allowed were in flight), unasked (the client did not ask that type recently).",
	}, []string{"server", "reason"})

	// unused counts prefetched siblings no client asked for within the window.
	unused = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "sibling_prefetches_unused_total",
		Help:      "Counter of prefetched siblings that no client asked for within the window, by type.",
	}, []string{"server", "type"})
)
