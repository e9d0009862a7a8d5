package dispatch

import (
	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

// ownRequests counts the queries raceguard sent through the server on clients' behalf, with the
// labels of coredns_dns_requests_total they are also counted in.
var ownRequests = promauto.NewCounterVec(prometheus.CounterOpts{
	Namespace: plugin.Namespace,
	Subsystem: module.Name,
	Name:      "own_requests_total",
	Help:      "Counter of queries raceguard sent on clients' behalf (search walks' tries, sibling prefetches), which coredns_dns_requests_total counts too: subtract them for what clients sent.",
}, []string{"server", "zone", "type"})
