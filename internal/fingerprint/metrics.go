package fingerprint

import (
	"sync/atomic"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

// GapBuckets bracket the retry intervals of glibc and musl, with and without timeout:1 (0.5 s,
// 1 s, 2.5 s, 5 s, and their doubles after a second loss), so each falls in a bucket of its own.
var GapBuckets = []float64{0.001, 0.01, 0.05, 0.25, 0.4, 0.6, 0.9, 1.2, 2, 2.4, 2.7, 4.5, 5.5, 8, 12}

var (
	// lateSiblings counts A or AAAA queries that came long after their partner was answered.
	lateSiblings = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "late_siblings_total",
		Help:      "Counter of A or AAAA queries that reached the server long after the other type of the same lookup (same client, port and name) was answered: the trace of a lost query. By the late type.",
	}, []string{"server", "type"})

	// retransmits counts queries seen again with the same client, port, ID and question.
	retransmits = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "retransmits_total",
		Help:      "Counter of A or AAAA queries seen again with the same client address, port, ID and question: the client lost the reply, or the query was slow.",
	}, []string{"server"})

	// siblingGap is the time between the two types of a lookup reaching the server.
	siblingGap = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "sibling_gap_seconds",
		Buckets:   GapBuckets,
		Help:      "Histogram of the time between the A and the AAAA of one lookup (same client, port and name) reaching the server. Lost packets show at the resolvers' retry intervals: 5 s glibc, 2.5 s musl, 1 s and 0.5 s with timeout:1.",
	}, []string{"server"})

	// retransmitGap is the time between a query and its retransmission.
	retransmitGap = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "retransmit_gap_seconds",
		Buckets:   GapBuckets,
		Help:      "Histogram of the time between a query and its retransmission (same client, port, ID and question).",
	}, []string{"server"})
)

// gaps are the per-server children of the metrics every pair's second query updates, for the
// last server seen: a Tracker serves one server block, so the label rarely changes, and looking a
// child up by its label values on every query would cost more than the observation itself.
type gapMetrics struct {
	last atomic.Pointer[serverGaps]
}

type serverGaps struct {
	server                    string
	siblingGap, retransmitGap prometheus.Observer
	retransmits               prometheus.Counter
}

func (g *gapMetrics) of(server string) *serverGaps {
	if s := g.last.Load(); s != nil && s.server == server {
		return s
	}
	s := &serverGaps{
		server:        server,
		siblingGap:    siblingGap.WithLabelValues(server),
		retransmitGap: retransmitGap.WithLabelValues(server),
		retransmits:   retransmits.WithLabelValues(server),
	}
	g.last.Store(s)
	return s
}
