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

	// passed counts walks that passed through, by why.
	passed = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_passed_total",
		Help:      "Counter of search walks that passed through (the client got its first try's own answer and walked), by reason: failed, deadline, untrusted, truncated.",
	}, []string{"server", "reason"})

	// declined counts first tries not walked at all, by why.
	declined = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_declined_total",
		Help:      "Counter of queries shaped like the first try of a search walk that were passed on untouched, by reason: dnssec, vetoed, budget, busy, full, crowded, family, panic.",
	}, []string{"server", "reason"})

	// vetoes counts tries that contradicted a client's exactly known search list.
	vetoes = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_vetoes_total",
		Help:      "Counter of client tries that contradicted the client's search list as the Kubernetes API gives it: the client's walks of that list are declined (reason vetoed) for 10 minutes.",
	}, []string{"server"})

	// decidedCount counts queries answered from a completion decided for the same client.
	decidedCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_decided_total",
		Help:      "Counter of first tries answered from a completion decided for the same client and query within the TTLs its walk met, without a walk.",
	}, []string{"server"})

	// asIsCount counts first tries that turned out to be names asked as is.
	asIsCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "search_as_is_total",
		Help:      "Counter of names shaped like a search walk's first try that the client had asked as is (it searched below the name after its NXDOMAIN): where such a name is completed, the client gets another name's answer.",
	}, []string{"server"})

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
