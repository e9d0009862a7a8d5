package bounded

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestGetPutExpire(t *testing.T) {
	m := New[string, int](64)
	now := time.Unix(1000, 0)
	m.nowFunc = func() time.Time { return now }

	if !m.Put("a", 1, time.Second) {
		t.Fatal("Expected Put to succeed")
	}
	if v, ok := m.Get("a"); !ok || v != 1 {
		t.Errorf("Expected 1, got %d, %v", v, ok)
	}
	now = now.Add(time.Second)
	if _, ok := m.Get("a"); ok {
		t.Error("Expected the entry to have expired")
	}
	if m.Len() != 0 {
		t.Errorf("Expected an expired entry to be dropped on read, Len %d", m.Len())
	}
}

func TestCapacity(t *testing.T) {
	m := New[int, int](2048) // 64 shards of 32
	now := time.Unix(1000, 0)
	m.nowFunc = func() time.Time { return now }

	stored, refused := 0, 0
	for i := range 10000 {
		if m.Put(i, i, time.Minute) {
			stored++
		} else {
			refused++
		}
	}
	if stored != m.Cap() || m.Len() != m.Cap() || refused != 10000-m.Cap() {
		t.Errorf("Expected exactly %d stored, got stored %d, refused %d, Len %d", m.Cap(), stored, refused, m.Len())
	}
	// Replacing a live key never needs room: key 0 was stored first, before its shard filled.
	if !m.Put(0, 42, time.Minute) {
		t.Error("Expected replacing a live key in a full shard to succeed")
	}
	if v, _ := m.Get(0); v != 42 {
		t.Errorf("Expected the replacement 42, got %d", v)
	}
	// Once the entries expire, a full shard is swept and takes new ones.
	now = now.Add(2 * time.Minute)
	for i := range 10000 {
		m.Put(100000+i, i, time.Minute)
	}
	if m.Len() != m.Cap() {
		t.Errorf("Expected the sweep to keep the map at its cap %d, Len %d", m.Cap(), m.Len())
	}
}

func TestSweepSpacing(t *testing.T) {
	m := New[int, int](16) // one shard of 16
	t0 := time.Unix(1000, 0)
	const ttl = 32 * time.Second // sweeps at least 1s apart
	for i := range 16 {
		if _, ok := m.UpdateAt(i, t0.Add(time.Duration(i)*100*time.Millisecond), ttl, func(int, bool) int { return i }); !ok {
			t.Fatalf("Expected entry %d stored", i)
		}
	}
	put := func(k int, at time.Duration) bool {
		_, ok := m.UpdateAt(k, t0.Add(at), ttl, func(int, bool) int { return k })
		return ok
	}
	// Full of live entries: refused without a sweep, however long since the last.
	if put(100, 31*time.Second) || !m.shards[0].swept.IsZero() {
		t.Fatalf("Expected a refusal without a sweep while nothing has expired, swept at %v", m.shards[0].swept)
	}
	// Entry 0 expired at 32s: the first sweep is due and frees it.
	if !put(101, 32*time.Second+50*time.Millisecond) {
		t.Fatal("Expected the sweep to make room once the earliest entry expired")
	}
	// Entry 1 expired at 32.1s, but the last sweep was less than ttl/32 ago: refused, not swept.
	if put(102, 32*time.Second+150*time.Millisecond) {
		t.Fatal("Expected a refusal within ttl/32 of the last sweep")
	}
	if got := m.Len(); got != 16 {
		t.Fatalf("Expected the expired entry 1 still held, Len %d", got)
	}
	m.SetClock(func() time.Time { return t0.Add(32*time.Second + 150*time.Millisecond) })
	if got := m.Live(); got != 15 {
		t.Errorf("Expected 15 live entries, the expired one held but not counted, Live %d", got)
	}
	// A second later, entries 1 to 10 have expired: one sweep drops all ten.
	if !put(103, 33*time.Second+50*time.Millisecond) {
		t.Fatal("Expected a sweep ttl/32 after the last")
	}
	if got := m.Len(); got != 7 {
		t.Errorf("Expected 16 - 10 + 1 = 7 entries after the sweep, Len %d", got)
	}
	// An entry with a shorter TTL than the rest lowers the shard's earliest expiry: once it has
	// expired, a full shard is swept for it while the others are still live.
	m = New[int, int](16)
	for i := range 16 {
		d := ttl
		if i == 15 {
			d = time.Second
		}
		m.UpdateAt(i, t0, d, func(int, bool) int { return i })
	}
	if _, ok := m.UpdateAt(100, t0.Add(2*time.Second), ttl, func(int, bool) int { return 0 }); !ok {
		t.Error("Expected the short-lived entry swept to make room once it expired")
	}
}

func TestUpdate(t *testing.T) {
	m := New[string, []int](64)
	for i := range 3 {
		v, ok := m.Update("k", time.Minute, func(old []int, found bool) []int {
			if found != (i > 0) {
				t.Errorf("Update %d: Expected found %v", i, i > 0)
			}
			return append(old, i)
		})
		if !ok || len(v) != i+1 {
			t.Errorf("Update %d: Expected %d values, got %v, %v", i, i+1, v, ok)
		}
	}
	m.DeleteIf("k", func(v []int) bool { return len(v) == 2 })
	if _, ok := m.Get("k"); !ok {
		t.Error("Expected DeleteIf to keep a value that does not match")
	}
	m.DeleteIf("k", func(v []int) bool { return len(v) == 3 })
	if _, ok := m.Get("k"); ok {
		t.Error("Expected DeleteIf to remove a value that matches")
	}
}

func TestTake(t *testing.T) {
	m := New[string, int](64)
	now := time.Unix(1000, 0)
	m.nowFunc = func() time.Time { return now }
	m.Put("a", 1, time.Second)
	m.Put("b", 2, time.Second)
	if v, ok := m.Take("a"); !ok || v != 1 {
		t.Errorf("Expected to take 1, got %d, %v", v, ok)
	}
	if _, ok := m.Take("a"); ok {
		t.Error("Expected a taken key gone")
	}
	now = now.Add(time.Second)
	if _, ok := m.Take("b"); ok {
		t.Error("Expected an expired value not taken")
	}
	if !m.Empty() || m.Len() != 0 {
		t.Errorf("Expected the map empty after taking and expiring, Len %d", m.Len())
	}
	// Concurrent takers of one key: exactly one gets it.
	for range 100 {
		m.Put("k", 1, time.Minute)
		var wg sync.WaitGroup
		var got atomic.Int32
		for range 4 {
			wg.Go(func() {
				if _, ok := m.Take("k"); ok {
					got.Add(1)
				}
			})
		}
		wg.Wait()
		if got.Load() != 1 {
			t.Fatalf("Expected one taker, got %d", got.Load())
		}
	}
}

func TestConcurrent(t *testing.T) {
	m := New[int, int](1024)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 5000 {
				k := (g*5000 + i) % 3000
				m.Put(k, i, time.Minute)
				m.Get(k)
				if i%7 == 0 {
					m.Delete(k)
				}
			}
		}()
	}
	wg.Wait()
	if m.Len() > m.Cap() {
		t.Errorf("Expected at most %d entries, got %d", m.Cap(), m.Len())
	}
}

func TestEmpty(t *testing.T) {
	m := New[string, int](64)
	now := time.Unix(1000, 0)
	m.nowFunc = func() time.Time { return now }
	if !m.Empty() {
		t.Error("Expected a new map empty")
	}
	m.Put("a", 1, time.Second)
	m.Put("a", 2, time.Second)
	m.Put("b", 1, time.Second)
	if m.Empty() || m.live.Load() != 2 {
		t.Errorf("Expected 2 live entries, got %d", m.live.Load())
	}
	m.Delete("b")
	now = now.Add(time.Second)
	m.Get("a")
	if !m.Empty() {
		t.Errorf("Expected empty after a delete and an expiry, got %d live", m.live.Load())
	}
}

func TestSmallMapsShareShards(t *testing.T) {
	for _, c := range []int{1, 5, 64, 100} {
		m := New[int, int](c)
		if m.Cap() < c || len(m.shards) > max(1, c/minPerShard) {
			t.Errorf("capacity %d: Expected at least that many entries in few shards, got Cap %d in %d shards", c, m.Cap(), len(m.shards))
		}
		// A lightly filled map does not refuse an entry, whatever shards the keys fall in (a full
		// one may, a little before its capacity: the capacity is split over the shards).
		for i := range max(1, c/4) {
			if !m.Put(i, i, time.Minute) {
				t.Errorf("capacity %d: Expected entry %d stored", c, i)
			}
		}
	}
}

// BenchmarkUpdateFull inserts new keys into a map full of live entries that expire at a steady
// rate, as the fingerprint table does on a node past its capacity: most inserts are refused, and a
// refusal must not cost a walk over the shard.
func BenchmarkUpdateFull(b *testing.B) {
	const capacity, ttl = 50000, 15 * time.Second
	m := New[uint64, int](capacity)
	now := time.Unix(1000, 0)
	m.nowFunc = func() time.Time { return now }
	// Fill the map with entries whose expiries are spread over one ttl, as a steady load leaves it.
	for i := range uint64(capacity) {
		m.UpdateAt(i, now.Add(-ttl+time.Duration(i)*ttl/capacity), ttl, func(int, bool) int { return 0 })
	}
	// The clock moves on at 10,000 inserts per second: three times what the map can hold.
	step := time.Second / 10000
	b.ReportAllocs()
	b.ResetTimer()
	refused := 0
	for i := range b.N {
		now = now.Add(step)
		if _, ok := m.UpdateAt(uint64(capacity+i), now, ttl, func(int, bool) int { return i }); !ok {
			refused++
		}
	}
	b.ReportMetric(float64(refused)/float64(b.N), "refused/op")
}
