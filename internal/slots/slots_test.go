package slots

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/bounded"
)

func TestTable(t *testing.T) {
	tb := New[int]("slots_test", 3) // rounded up to 4 slots
	defer tb.Close()
	if tb.Cap() != 4 {
		t.Fatalf("Expected 4 slots, got %d", tb.Cap())
	}
	now := int64(1000)
	tb.SetClock(func() time.Time { return time.Unix(0, now) })
	evicted := func() float64 { return testutil.ToFloat64(bounded.Overflows("slots_test")) }

	var fresh []bool
	set := func(key uint64, v int) {
		tb.Update(key, now, 100, func(p *int, f bool) {
			fresh = append(fresh, f)
			*p = v
		})
	}
	get := func(i, key uint64) (v int, ok bool) {
		ok = tb.ViewAt(i, key, now, func(p *int) { v = *p })
		return v, ok
	}

	set(5, 1)
	i := tb.Index(5)
	if i != 1 {
		t.Errorf("Expected key 5 in slot 1, got %d", i)
	}
	if v, ok := get(i, 5); !ok || v != 1 {
		t.Errorf("Expected 1 in the slot of key 5, got %d %v", v, ok)
	}
	set(5, 2)
	if fresh[0] != true || fresh[1] != false {
		t.Errorf("Expected a fresh slot, then the same key's entry, got %v", fresh)
	}
	if v, ok := tb.Slot(i, 5); !ok || *v != 2 {
		t.Errorf("Expected Slot to give the entry of its key, got %v %v", v, ok)
	}

	// Another key landing in the slot takes a live entry over, counted.
	before := evicted()
	set(9, 3)
	if _, ok := get(i, 5); ok {
		t.Error("Expected key 5 gone from its slot after key 9 took it")
	}
	if _, ok := tb.Slot(i, 5); ok {
		t.Error("Expected Slot to refuse a key that no longer owns the slot")
	}
	if got := evicted() - before; got != 1 {
		t.Errorf("Expected one live entry taken over, got %v", got)
	}
	if tb.Live() != 1 {
		t.Errorf("Expected one live entry, got %d", tb.Live())
	}

	// Past its TTL an entry is gone: not viewable, not counted as taken over, fresh again.
	now += 100
	if _, ok := get(i, 9); ok {
		t.Error("Expected the entry of key 9 expired")
	}
	if tb.Live() != 0 {
		t.Errorf("Expected no live entry, got %d", tb.Live())
	}
	before = evicted()
	fresh = nil
	set(13, 4)
	if got := evicted() - before; got != 0 || !fresh[0] {
		t.Errorf("Expected an expired slot reused freshly and not counted, got %v taken over, fresh %v", got, fresh)
	}
}
