package searchpath

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// walkCount counts search walks by how they ended.
	walkCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_walks_total",
		Help:      "Counter of server-side search walks by outcome: answered, as_asked, passed_through, exhausted.",
	}, []string{"server", "outcome"})

	// queriesSaved counts the queries clients did not send because a walk answered for them.
	queriesSaved = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_queries_saved_total",
		Help:      "Counter of client queries saved by server-side search completion.",
	}, []string{"server"})

	// rememberedCount counts queries answered from a remembered walk.
	rememberedCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_remembered_total",
		Help:      "Counter of queries answered from a remembered search walk, without a trip down the chain.",
	}, []string{"server"})

	// walkDuration is how long search walks take.
	walkDuration = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace:                   plugin.Namespace,
		Subsystem:                   module.Name,
		Name:                        "search_walk_duration_seconds",
		Buckets:                     plugin.TimeBuckets,
		NativeHistogramBucketFactor: plugin.NativeHistogramBucketFactor,
		Help:                        "Histogram of the time server-side search walks take.",
	}, []string{"server"})
)
