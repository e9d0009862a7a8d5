package conntrack

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raceguard/raceguard/internal/module"
)

// The metrics' namespace and subsystem: plugin.Namespace, spelled out so that this package does
// not import CoreDNS's plugin package (and with it caddy), and the module's subsystem.
const (
	namespace = "coredns"
	subsystem = module.Name
)

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(prometheus.BuildFQName(namespace, subsystem, name), help, append([]string{"node"}, labels...), nil)
}

var (
	// insertFailedDesc is the kernel's insert_failed.
	insertFailedDesc = newDesc("conntrack_insert_failed_total",
		"Counter of conntrack entries the kernel could not insert, summed over CPUs (kernel insert_failed); since Linux 5.10 only unresolved clashes, before, resolved ones too.")
	// dropDesc is the kernel's drop.
	dropDesc = newDesc("conntrack_drop_total",
		"Counter of packets conntrack dropped, summed over CPUs (kernel drop): lost races that could not be resolved, and packets no entry could be made for.")
	// clashResolveDesc is the kernel's clash_resolve (Linux 5.10+).
	clashResolveDesc = newDesc("conntrack_clash_resolve_total",
		"Counter of conntrack insertion races the kernel resolved by merging the loser into the winner's entry, summed over CPUs (kernel clash_resolve, Linux 5.10+).")
	// earlyDropDesc is the kernel's early_drop.
	earlyDropDesc = newDesc("conntrack_early_drop_total",
		"Counter of conntrack entries evicted early to make room in a full table, summed over CPUs (kernel early_drop).")
	// searchRestartDesc is the kernel's search_restart.
	searchRestartDesc = newDesc("conntrack_search_restart_total",
		"Counter of conntrack table lookups restarted because the hash table was resized, summed over CPUs (kernel search_restart).")
	// chainTooLongDesc is the kernel's chaintoolong (Linux 5.15+).
	chainTooLongDesc = newDesc("conntrack_chaintoolong_total",
		"Counter of conntrack insertions refused because their hash chain was too long, summed over CPUs (kernel chaintoolong, Linux 5.15+).")
	// entriesDesc is the namespace's entry count.
	entriesDesc = newDesc("conntrack_entries",
		"Conntrack entries in the network namespace the statistics are read from.")
	// entriesLimitDesc is nf_conntrack_max.
	entriesLimitDesc = newDesc("conntrack_entries_limit",
		"Most conntrack entries the kernel allows (nf_conntrack_max, global to the host).")
	// upDesc says whether the last read worked.
	upDesc = newDesc("conntrack_up",
		"Whether the conntrack statistics could be read at this scrape (1) or not (0), by source: netlink or procfs when read, the configured source when not.",
		"source")
)

// current is the Reader the collector reads at scrape time; nil exports nothing.
type current struct {
	r    Reader
	node string
}

var source atomic.Pointer[current]

// SetSource makes the collector read r at each scrape and label the samples node=node. A nil r
// stops the export altogether: with conntrack statistics off nothing is exported, not even up.
// SetSource does not close the Reader it replaces; its caller owns both.
func SetSource(r Reader, node string) {
	if r == nil {
		source.Store(nil)
		return
	}
	source.Store(&current{r: r, node: node})
}

// collector exports the current source's statistics at scrape time. It is registered once per
// process, because CoreDNS reloads re-run setup; reloads change its source, never the registry.
type collector struct{}

// Describe implements the prometheus.Collector interface.
func (collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{insertFailedDesc, dropDesc, clashResolveDesc, earlyDropDesc,
		searchRestartDesc, chainTooLongDesc, entriesDesc, entriesLimitDesc, upDesc} {
		ch <- d
	}
}

// Collect implements the prometheus.Collector interface.
func (collector) Collect(ch chan<- prometheus.Metric) {
	c := source.Load()
	if c == nil {
		return
	}
	s, err := c.r.Read()
	if err != nil {
		// No sample rather than a wrong one.
		ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 0, c.node, string(configured(c.r)))
		return
	}
	counter := func(d *prometheus.Desc, v uint64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), c.node)
	}
	counter(insertFailedDesc, s.InsertFailed)
	counter(dropDesc, s.Drop)
	if s.HasClashResolve {
		counter(clashResolveDesc, s.ClashResolve)
	}
	counter(earlyDropDesc, s.EarlyDrop)
	counter(searchRestartDesc, s.SearchRestart)
	if s.HasChainTooLong {
		counter(chainTooLongDesc, s.ChainTooLong)
	}
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(s.Entries), c.node)
	if s.MaxEntries > 0 {
		ch <- prometheus.MustNewConstMetric(entriesLimitDesc, prometheus.GaugeValue, float64(s.MaxEntries), c.node)
	}
	if s.Source == "" {
		s.Source = configured(c.r)
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, 1, c.node, string(s.Source))
}

// configured returns the source r was configured with, for a sample that has no Stats to say.
func configured(r Reader) Source {
	if sr, ok := r.(sourcer); ok {
		return sr.Source()
	}
	return "unknown"
}

func init() { prometheus.MustRegister(collector{}) }
