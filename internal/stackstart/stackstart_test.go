package stackstart

import (
	"runtime"
	"runtime/metrics"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// read returns the runtime/metrics value of name.
func read(name string) uint64 {
	s := []metrics.Sample{{Name: name}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// startingSizeAfterGC runs GCs, within a deadline, until the runtime's starting stack size
// satisfies ok, and returns the last one read.
func startingSizeAfterGC(t *testing.T, ok func(uint64) bool) uint64 {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		runtime.GC()
		n := read("/gc/stack/starting-size:bytes")
		if ok(n) || time.Now().After(deadline) {
			return n
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStartingSizeMoves(t *testing.T) {
	defer func(d time.Duration, n int) { sampleEvery, decideEvery = d, n }(sampleEvery, decideEvery)
	sampleEvery, decideEvery = time.Millisecond, 10
	const target = 16 << 10 // above what a test binary's goroutines make of themselves
	t.Setenv(EnvName, "16384")

	before := startingSizeAfterGC(t, func(uint64) bool { return true })
	if before >= target {
		t.Fatalf("Expected this test binary to start goroutines below %d bytes by itself, got %d", target, before)
	}
	if err := Acquire(); err != nil {
		t.Fatal(err)
	}
	if err := Acquire(); err != nil { // a reload's instance
		t.Fatal(err)
	}
	got := startingSizeAfterGC(t, func(n uint64) bool { return n == target })
	if got != target {
		t.Errorf("Expected the runtime's starting stack size at the target %d with the holders parked, got %d (holders %v)", target, got, testutil.ToFloat64(holdersGauge))
	}
	if h := testutil.ToFloat64(holdersGauge); h < 1 || h > maxHolders {
		t.Errorf("Expected between 1 and %d holders, got %v", maxHolders, h)
	}
	deadline := time.Now().Add(20 * time.Second) // the controller reads it every interval
	for testutil.ToFloat64(startingSize) != target && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if g := testutil.ToFloat64(startingSize); g != target {
		t.Errorf("Expected the gauge of the starting size at %d, got %v", target, g)
	}
	Release()
	if h := testutil.ToFloat64(holdersGauge); h < 1 {
		t.Errorf("Expected the holders kept while a user is left, got %v", h)
	}
	Release()
	if h, tg := testutil.ToFloat64(holdersGauge), testutil.ToFloat64(targetGauge); h != 0 || tg != 0 {
		t.Errorf("Expected no holder and no target after the last Release, got %v and %v", h, tg)
	}
	if after := startingSizeAfterGC(t, func(n uint64) bool { return n < target }); after >= target {
		t.Errorf("Expected the starting size back below %d once the holders ended, got %d", target, after)
	}
}

func TestHolderStack(t *testing.T) {
	// What one holder adds to the stack bytes a GC scans: the controller counts on holdBytes,
	// and a holder deeper than its 32 KiB stack's usable part would take a 64 KiB one.
	const n = 8
	c := newController(DefaultTarget)
	runtime.GC()
	without := read("/gc/scan/stack:bytes")
	c.set(n)
	deadline := time.Now().Add(20 * time.Second)
	var per uint64
	for {
		runtime.GC()
		with := read("/gc/scan/stack:bytes")
		per = (max(with, without) - without) / n
		if per >= holdBytes*9/10 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond) // the holders are still calling down
	}
	c.set(0)
	c.wg.Wait()
	if per < holdBytes*9/10 || per > 31<<10 {
		t.Errorf("Expected each holder's scanned stack near holdBytes (%d) and under 31 KiB, got %d", holdBytes, per)
	}
}

func TestEstimate(t *testing.T) {
	c := newController(8 << 10)
	// 40 idle goroutines of 1 KiB: the mean is 1 KiB, the band for 8 KiB is 3.1 to 7.1 KiB.
	n := c.estimate(40<<10, 40)
	if n < 1 || n > maxHolders {
		t.Fatalf("Expected some holders for 40 shallow goroutines, got %d", n)
	}
	if m := (40<<10 + uint64(n)*holdBytes) / (40 + uint64(n)); m < 4<<10-guard || m > 8<<10-guard {
		t.Errorf("Expected %d holders to bring the mean into the band that rounds to 8 KiB, mean %d", n, m)
	}
	if got := c.estimate(40*(6<<10), 40); got != 0 {
		t.Errorf("Expected no holder where the goroutines are deep enough, got %d", got)
	}
	if got := c.estimate(100000<<10, 100000); got != maxHolders {
		t.Errorf("Expected at most %d holders for 100000 shallow goroutines, got %d", maxHolders, got)
	}
	// With holders parked, a GC's figures include them: the same goroutines want as many.
	c.holders = make([]chan struct{}, n)
	if got := c.estimate(40<<10+uint64(n)*holdBytes, 40+uint64(n)); got != n {
		t.Errorf("Expected the estimate to count the %d holders in the figures, got %d", n, got)
	}
}

func TestDecide(t *testing.T) {
	c := newController(8 << 10)
	defer c.wg.Wait()
	defer c.set(0)
	c.set(8)
	for _, tc := range []struct {
		seen, below, above int
		want               int
	}{
		{0, 0, 0, 8},      // no GC: nothing new
		{10, 1, 5, 12},    // one GC under the target: half as many more, whatever the others
		{10, 0, 0, 12},    // every one from the target to maxStart: kept
		{10, 0, 1, 11},    // one over maxStart, none under: an eighth fewer, at least one
		{10, 10, 0, 16},   // all under
		{5, 5, 0, 24},     // 16 + 8
		{100, 100, 0, 36}, // 24 + 12
		{1, 0, 1, 32},     // 36 - 4
		{1, 1, 0, 48},     // at most maxHolders
	} {
		c.seen, c.below, c.above = tc.seen, tc.below, tc.above
		c.decide()
		if got := len(c.holders); got != tc.want {
			t.Errorf("After %d GCs sampled, %d under the target and %d over maxStart: expected %d holders, got %d", tc.seen, tc.below, tc.above, tc.want, got)
		}
	}
}

func TestTarget(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want uint64
		err  bool
	}{
		{"", DefaultTarget, false},
		{"off", 0, false},
		{"4096", 4096, false},
		{"16384", 16384, false},
		{"8k", 0, true},
		{"6000", 0, true},
		{"2048", 0, true},
		{"32768", 0, true},
	} {
		got, err := Target(tc.in)
		if (err != nil) != tc.err || got != tc.want {
			t.Errorf("Target(%q): expected %d (error %v), got %d (%v)", tc.in, tc.want, tc.err, got, err)
		}
	}
}

func TestOff(t *testing.T) {
	t.Setenv(EnvName, "off")
	if err := Acquire(); err != nil {
		t.Fatal(err)
	}
	defer Release()
	if h := testutil.ToFloat64(targetGauge); h != 0 {
		t.Errorf("Expected no target with %s=off, got %v", EnvName, h)
	}
	t.Setenv(EnvName, "")
	t.Setenv("GODEBUG", "gctrace=0,adaptivestackstart=0")
	if err := Acquire(); err != nil {
		t.Fatal(err)
	}
	defer Release()
	if h := testutil.ToFloat64(targetGauge); h != 0 {
		t.Errorf("Expected no target with GODEBUG adaptivestackstart=0, got %v", h)
	}
	t.Setenv(EnvName, "bad")
	if err := Acquire(); err == nil {
		t.Errorf("Expected an error for %s=bad", EnvName)
	}
}
