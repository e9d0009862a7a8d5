package bounded

import (
	"sync"

	"github.com/coredns/coredns/plugin"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/raceguard/raceguard/internal/module"
)

var (
	// overflows counts entries a full table refused.
	overflows = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: module.Name,
		Name:      "table_overflows_total",
		Help:      "Counter of entries a full raceguard table refused; the query fell back to plain pass-through.",
	}, []string{"table"})

	entriesDesc = prometheus.NewDesc(
		prometheus.BuildFQName(plugin.Namespace, module.Name, "table_entries"),
		"Entries in raceguard tables that have not expired, summed over server blocks.", []string{"table"}, nil)
	capacityDesc = prometheus.NewDesc(
		prometheus.BuildFQName(plugin.Namespace, module.Name, "table_capacity"),
		"Most entries raceguard tables can hold, summed over server blocks.", []string{"table"}, nil)
)

// Overflows returns the overflow counter of table: for tests, and for a table of another kind
// than Map (see Register) to count what it refuses.
func Overflows(table string) prometheus.Counter { return overflows.WithLabelValues(table) }

// Sized is what the collector needs of a table: its live entries and its capacity.
type Sized interface {
	Live() int
	Cap() int
}

var (
	mu     sync.Mutex
	tables = map[string]map[Sized]bool{} // table name -> live tables; protected by mu
)

// Register exports the occupancy of table m, of another kind than Map, under the table label
// name, until Unregister.
func Register(name string, m Sized) {
	mu.Lock()
	defer mu.Unlock()
	if tables[name] == nil {
		tables[name] = map[Sized]bool{}
	}
	tables[name][m] = true
}

// Unregister stops exporting table m.
func Unregister(name string, m Sized) {
	mu.Lock()
	defer mu.Unlock()
	delete(tables[name], m)
	if len(tables[name]) == 0 {
		delete(tables, name)
	}
}

// collector exports the live tables' occupancy at scrape time. It is registered once per process;
// reloads add and remove maps, never collectors.
type collector struct{}

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- entriesDesc
	ch <- capacityDesc
}

func (collector) Collect(ch chan<- prometheus.Metric) {
	mu.Lock()
	defer mu.Unlock()
	for name, maps := range tables {
		n, c := 0, 0
		for m := range maps {
			n += m.Live()
			c += m.Cap()
		}
		ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(n), name)
		ch <- prometheus.MustNewConstMetric(capacityDesc, prometheus.GaugeValue, float64(c), name)
	}
}

func init() { prometheus.MustRegister(collector{}) }
