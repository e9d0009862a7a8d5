package correlate

import (
	"bytes"
	golog "log"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/conntrack"
)

func TestLagged(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := make([]float64, 600)
	for i := range x {
		if rng.IntN(10) == 0 {
			x[i] = float64(1 + rng.IntN(5))
		}
	}
	shifted := make([]float64, len(x)) // y[i] = x[i-5]: what drops do to late siblings 5 s on
	copy(shifted[5:], x)
	negated := make([]float64, len(x))
	for i := range x {
		negated[i] = -x[i]
	}
	noise := make([]float64, len(x))
	for i := range noise {
		noise[i] = float64(rng.IntN(3))
	}
	for _, tc := range []struct {
		name   string
		y      []float64
		shift  int
		lo, hi float64
	}{
		{"shifted by the lag", shifted, 5, 0.999, 1.001},
		{"shifted, looked at the wrong lag", shifted, 2, -0.2, 0.2},
		{"negated", negated, 0, -1.001, -0.999},
		{"independent noise", noise, 5, -0.15, 0.15},
		{"constant", make([]float64, len(x)), 5, 0, 0},
	} {
		if r := Lagged(x, tc.y, tc.shift); r < tc.lo || r > tc.hi || math.IsNaN(r) {
			t.Errorf("%s: Expected a correlation in [%v, %v], got %v", tc.name, tc.lo, tc.hi, r)
		}
	}
	if r := Lagged([]float64{1, 2}, []float64{1, 2}, 0); r != 0 {
		t.Errorf("Expected 0 for too few points, got %v", r)
	}
}

// fakeReader returns counters that a test advances.
type fakeReader struct{ s conntrack.Stats }

func (f *fakeReader) Read() (conntrack.Stats, error) { return f.s, nil }
func (f *fakeReader) Close() error                   { return nil }

func TestMonitor(t *testing.T) {
	var buf bytes.Buffer
	golog.SetOutput(&buf)
	defer golog.SetOutput(os.Stderr)

	f := &fakeReader{}
	cfg := Config{Interval: time.Second, Window: 2 * time.Minute, Node: "test-node"}
	m := newMonitor(cfg, f)
	t0 := time.Unix(5000, 0)
	coincidentBefore := testutil.ToFloat64(coincident.WithLabelValues("test-node"))

	// Every 10 s the node drops 2 packets; each loss shows as a late sibling 5 s later (glibc).
	for i := range 120 {
		now := t0.Add(time.Duration(i) * time.Second)
		if i%10 == 3 {
			f.s.Drop += 2
			f.s.InsertFailed += 2
		}
		if i%10 == 8 && i > 5 {
			loss := now.Add(-5*time.Second - 300*time.Millisecond)
			m.LateSibling(loss)
			m.LateSibling(loss)
		}
		m.tick(now)
	}
	if r := testutil.ToFloat64(correlation.WithLabelValues("test-node", "drop", "late_siblings", "5s")); r < 0.9 {
		t.Errorf("Expected drops and late siblings 5 s later to correlate, got %v", r)
	}
	if r := testutil.ToFloat64(correlation.WithLabelValues("test-node", "drop", "late_siblings", "1s")); r > 0.3 {
		t.Errorf("Expected little correlation at the 1 s lag, got %v", r)
	}
	if r := testutil.ToFloat64(correlation.WithLabelValues("test-node", "clash_resolve", "late_siblings", "5s")); r != 0 {
		t.Errorf("Expected 0 for a counter that never moved, got %v", r)
	}
	// 12 bursts of 2 late siblings (ticks 8, 18, ... 118), each lost in an interval with drops.
	if got := testutil.ToFloat64(coincident.WithLabelValues("test-node")) - coincidentBefore; got != 24 {
		t.Errorf("Expected 24 late siblings coinciding with drops, got %v", got)
	}
	logs := buf.String()
	if n := strings.Count(logs, "moves with DNS late siblings"); n != 1 {
		t.Errorf("Expected exactly one diagnosis line (rate-limited), got %d:\n%s", n, logs)
	}
	for _, want := range []string{"test-node", "NodeLocal DNSCache", "single-request-reopen", "musl"} {
		if !strings.Contains(logs, want) {
			t.Errorf("Expected the diagnosis to mention %q:\n%s", want, logs)
		}
	}
}

func TestMonitorUncorrelated(t *testing.T) {
	f := &fakeReader{}
	cfg := Config{Interval: time.Second, Window: 2 * time.Minute, Node: "quiet-node"}
	m := newMonitor(cfg, f)
	t0 := time.Unix(9000, 0)
	rng := rand.New(rand.NewPCG(3, 4))
	// Late siblings at random, drops at random: nothing moves together.
	for i := range 120 {
		now := t0.Add(time.Duration(i) * time.Second)
		if rng.IntN(8) == 0 {
			f.s.Drop++
		}
		if rng.IntN(8) == 0 {
			m.LateSibling(now.Add(-5 * time.Second))
		}
		m.tick(now)
	}
	for _, lag := range []string{"1s", "2.5s", "5s"} {
		if r := testutil.ToFloat64(correlation.WithLabelValues("quiet-node", "drop", "late_siblings", lag)); math.Abs(r) > 0.35 {
			t.Errorf("Expected near-zero correlation at %s for independent series, got %v", lag, r)
		}
	}
}

func TestAcquireRelease(t *testing.T) {
	cfg := Config{Interval: 100 * time.Millisecond, Window: 10 * time.Second, Node: "n1", Source: "procfs", ProcPath: "/nonexistent/nf_conntrack"}
	Acquire(cfg)
	first := current
	Acquire(cfg) // a second server block with the same options shares it
	if current != first {
		t.Fatalf("Expected one shared monitor, got %p vs %p", current, first)
	}
	cfg2 := cfg
	cfg2.Node = "n2"
	Acquire(cfg2) // a reload with new options replaces it
	if current == first || current.cfg.Node != "n2" {
		t.Errorf("Expected the newest options to apply")
	}
	Release()
	Release()
	if current == nil {
		t.Error("Expected the monitor kept while a user is left")
	}
	Release()
	if current != nil || Events.cur.Load() != nil {
		t.Error("Expected the monitor stopped with its last user")
	}
	Release() // one too many is harmless
}
