package correlate

import (
	"fmt"
	"math"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/module"
)

var log = clog.NewWithPlugin(module.Name)

// Config is a Monitor's configuration: the raceguard directive's conntrack, interval, window and
// node options, parsed straight into it.
type Config struct {
	Source   conntrack.Source // SourceOff: no Monitor at all
	ProcPath string           // the procfs file; empty for conntrack.DefaultProcPath
	Interval time.Duration
	Window   time.Duration
	Node     string // the node label; empty for NodeName's default
}

// Lags are the resolvers' retry intervals the correlation looks at.
var Lags = []time.Duration{time.Second, 2500 * time.Millisecond, 5 * time.Second}

// The conntrack counters and DNS signals correlated, in the order of sample's arrays.
var (
	ctSignals  = []string{"drop", "insert_failed", "clash_resolve"}
	dnsSignals = []string{"late_siblings", "retransmits"}
)

// sample is one interval.
type sample struct {
	end time.Time
	ct  [3]float64 // deltas of drop, insert_failed, clash_resolve
	dns [2]float64 // late siblings, retransmits
	ok  bool       // conntrack was read at both ends
}

// Monitor samples and correlates. Use Acquire and Release.
type Monitor struct {
	cfg    Config
	reader conntrack.Reader

	late, retrans atomic.Int64 // DNS events since the last tick

	mu      sync.Mutex
	losses  []time.Time // late siblings' loss times not matched yet; protected by mu
	ring    []sample    // protected by mu
	head, n int         // protected by mu
	prev    conntrack.Stats
	hasPrev bool
	lastLog time.Time

	stop chan struct{}
	done chan struct{}
}

const maxLosses = 10000

func newMonitor(cfg Config, r conntrack.Reader) *Monitor {
	size := max(2, int(cfg.Window/cfg.Interval))
	return &Monitor{cfg: cfg, reader: r, ring: make([]sample, size), stop: make(chan struct{}), done: make(chan struct{})}
}

func (m *Monitor) start() {
	go func() {
		defer close(m.done)
		t := time.NewTicker(m.cfg.Interval)
		defer t.Stop()
		m.tick(time.Now())
		for {
			select {
			case <-m.stop:
				return
			case now := <-t.C:
				m.tick(now)
			}
		}
	}()
}

func (m *Monitor) halt() {
	close(m.stop)
	<-m.done
}

// LateSibling records a late sibling whose lost query was sent at loss.
func (m *Monitor) LateSibling(loss time.Time) {
	m.late.Add(1)
	m.mu.Lock()
	if len(m.losses) < maxLosses {
		m.losses = append(m.losses, loss)
	}
	m.mu.Unlock()
}

// Retransmit records a retransmission.
func (m *Monitor) Retransmit() { m.retrans.Add(1) }

// tick takes one sample and updates the exported correlations.
func (m *Monitor) tick(now time.Time) {
	s := sample{end: now, dns: [2]float64{float64(m.late.Swap(0)), float64(m.retrans.Swap(0))}}
	var cur conntrack.Stats
	var err error
	if m.reader != nil {
		cur, err = m.reader.Read()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.reader != nil && err == nil {
		if m.hasPrev {
			s.ct = [3]float64{
				delta(m.prev.Drop, cur.Drop), delta(m.prev.InsertFailed, cur.InsertFailed), delta(m.prev.ClashResolve, cur.ClashResolve),
			}
			s.ok = true
		}
		m.prev, m.hasPrev = cur, true
	} else {
		m.hasPrev = false
	}
	m.ring[m.head] = s
	m.head = (m.head + 1) % len(m.ring)
	m.n = min(m.n+1, len(m.ring))

	m.matchLosses()
	m.export()
}

// delta is a counter's increase; a counter that went backwards (a new namespace, a reset) counts 0.
func delta(prev, cur uint64) float64 {
	if cur < prev {
		return 0
	}
	return float64(cur - prev)
}

// samples returns the ring's samples, oldest first. Call with mu held.
func (m *Monitor) samples() []sample {
	out := make([]sample, 0, m.n)
	for i := range m.n {
		out = append(out, m.ring[(m.head-m.n+i+len(m.ring))%len(m.ring)])
	}
	return out
}

// matchLosses counts the late siblings whose loss falls in, or next to, an interval with conntrack
// drops or failed inserts. A loss is matched once the interval after it has been sampled. Call
// with mu held.
func (m *Monitor) matchLosses() {
	ss := m.samples()
	if len(ss) < 2 {
		return
	}
	last := ss[len(ss)-1].end
	keep := m.losses[:0]
	for _, loss := range m.losses {
		if loss.After(last.Add(-m.cfg.Interval)) {
			keep = append(keep, loss)
			continue
		}
		for i, s := range ss {
			if s.end.Before(loss) {
				continue
			}
			// The interval that ended at or after the loss, and its neighbours: the kernel's and
			// our clocks are read at different moments.
			for j := max(0, i-1); j <= min(len(ss)-1, i+1); j++ {
				if ss[j].ok && (ss[j].ct[0] > 0 || ss[j].ct[1] > 0) {
					coincident.WithLabelValues(m.cfg.Node).Inc()
					break
				}
			}
			break
		}
	}
	m.losses = keep
}

// export updates the correlation gauges and logs when drops and late siblings move together.
// Call with mu held.
func (m *Monitor) export() {
	ss := m.samples()
	var strongest struct {
		r        float64
		ct, dns  string
		lag      time.Duration
		drops    float64
		siblings float64
	}
	for ci, ct := range ctSignals {
		x := make([]float64, 0, len(ss))
		for _, s := range ss {
			x = append(x, s.ct[ci])
		}
		for di, dn := range dnsSignals {
			y := make([]float64, 0, len(ss))
			for _, s := range ss {
				y = append(y, s.dns[di])
			}
			for _, lag := range Lags {
				shift := int(math.Round(float64(lag) / float64(m.cfg.Interval)))
				r := Lagged(x, y, shift)
				correlation.WithLabelValues(m.cfg.Node, ct, dn, lagLabel(lag)).Set(r)
				if ci < 2 && di == 0 && r > strongest.r {
					strongest.r, strongest.ct, strongest.dns, strongest.lag = r, ct, dn, lag
					strongest.drops, strongest.siblings = sum(x), sum(y)
				}
			}
		}
	}
	if strongest.r >= 0.5 && strongest.drops >= 3 && strongest.siblings >= 3 && time.Since(m.lastLog) >= 10*time.Minute {
		m.lastLog = time.Now()
		log.Warning(diagnosis(m.cfg.Node, strongest.ct, strongest.r, strongest.lag, strongest.drops, strongest.siblings, m.cfg.Window))
	}
}

// lagLabel is a lag as the lag label gives it: "1s", "2.5s", "5s".
func lagLabel(d time.Duration) string { return d.String() }

func sum(v []float64) float64 {
	t := 0.0
	for _, x := range v {
		t += x
	}
	return t
}

// Lagged returns the Pearson correlation of x[i] with y[i+shift] over the indexes both have, or 0
// when either side is constant (no movement, nothing to correlate) or fewer than 3 pairs exist.
func Lagged(x, y []float64, shift int) float64 {
	n := min(len(x), len(y)) - shift
	if n < 3 || shift < 0 {
		return 0
	}
	var sx, sy float64
	for i := range n {
		sx += x[i]
		sy += y[i+shift]
	}
	mx, my := sx/float64(n), sy/float64(n)
	var cov, vx, vy float64
	for i := range n {
		dx, dy := x[i]-mx, y[i+shift]-my
		cov += dx * dy
		vx += dx * dx
		vy += dy * dy
	}
	if vx == 0 || vy == 0 {
		return 0
	}
	return cov / math.Sqrt(vx*vy)
}

// diagnosis is the log line for drops that move with late siblings.
func diagnosis(node, counter string, r float64, lag time.Duration, drops, siblings float64, window time.Duration) string {
	kernel := "unknown"
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("node %s: conntrack %s (%.0f in the last %s) moves with DNS late siblings (%.0f) %s later "+
		"(correlation %.2f): clients are losing one query of their parallel A+AAAA pair in conntrack and wait their "+
		"resolver timeout. What helps: NodeLocal DNSCache (its NOTRACK rules keep DNS out of conntrack); for glibc "+
		"pods, dnsConfig option single-request-reopen; musl (Alpine) has no such option: put those pods behind "+
		"NodeLocal DNSCache or a TCP path; kernel %s (clash resolution for the DNS races landed in 4.19, 5.0 and 5.6, "+
		"the clash_resolve counter in 5.10)",
		node, counter, drops, window, siblings, lag, r, kernel)
}
