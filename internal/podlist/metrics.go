package podlist

import (
	"sync"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// lookupCount counts pod lookups by what they found.
	lookupCount = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "pod_lookups_total",
		Help:      "Counter of search-list lookups by client address, by state: known, ambiguous, shared, no_pod, unknown (the pod watch not synced, lost or over capacity).",
	}, []string{"state"})

	// lossCount counts the times a pod watch was lost.
	lossCount = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "pod_watch_losses_total",
		Help:      "Counter of the times a pod watch was lost: a list or watch failed, or the API server ended a watch with an error.",
	})

	upDesc = prometheus.NewDesc(
		prometheus.BuildFQName(plugin.Namespace, module.Name, "pod_watch_up"),
		"1 while every running pod watch answers lookups (synced, not lost, within its capacity), 0 otherwise; absent without one.",
		nil, nil)
)

// lookups holds lookupCount's counter of each State, so that a lookup counts without a label
// lookup.
var lookups [len(stateNames)]prometheus.Counter

var (
	runningMu sync.Mutex
	running   = map[*Source]bool{} // started Sources; protected by runningMu
)

func register(s *Source) {
	runningMu.Lock()
	defer runningMu.Unlock()
	running[s] = true
}

func unregister(s *Source) {
	runningMu.Lock()
	defer runningMu.Unlock()
	delete(running, s)
}

// upCollector exports pod_watch_up at scrape time, over the Sources running then: a reload
// starts one and stops another.
type upCollector struct{}

func (upCollector) Describe(ch chan<- *prometheus.Desc) { ch <- upDesc }

func (upCollector) Collect(ch chan<- prometheus.Metric) {
	runningMu.Lock()
	defer runningMu.Unlock()
	if len(running) == 0 {
		return
	}
	up := 1.0
	for s := range running {
		if s.health.Load() != 0 {
			up = 0
		}
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
}

func init() {
	for st, name := range stateNames {
		lookups[st] = lookupCount.WithLabelValues(name)
	}
	prometheus.MustRegister(upCollector{})
}
