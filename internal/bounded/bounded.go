package bounded

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"
)

// maxShards bounds the shards of a map; a small map gets fewer, so that each shard holds at
// least minPerShard entries and two keys that meet in one shard do not refuse each other while
// the map is nearly empty.
const (
	maxShards   = 64
	minPerShard = 16
)

// Map is a capped map from K to V whose entries expire. The zero value is not usable; call New.
type Map[K comparable, V any] struct {
	live     atomic.Int64 // entries held, expired ones not yet dropped included
	name     string       // the table label of its metrics; empty for none
	seed     maphash.Seed
	perShard int
	shards   []shard[K, V]
	nowFunc  func() time.Time
}

type shard[K comparable, V any] struct {
	mu sync.RWMutex   // Get reads under RLock: the tables a query path reads are read far more than written
	m  map[K]entry[V] // protected by mu
	// earliest is at or before the expiry of every entry in m: no sweep before it frees anything.
	// Protected by mu; set by every insert, recomputed by every sweep.
	earliest time.Time
	// swept is when the shard was last swept. Protected by mu.
	swept time.Time
}

// sweepSpacing divides the TTL of a refused entry into the least time between two sweeps of its
// shard.
const sweepSpacing = 32

type entry[V any] struct {
	v       V
	expires time.Time
}

// New returns a Map that holds at most capacity entries (rounded up to a multiple of its shard
// count, at most 64).
func New[K comparable, V any](capacity int) *Map[K, V] {
	n := max(1, min(maxShards, capacity/minPerShard))
	m := &Map[K, V]{seed: maphash.MakeSeed(), perShard: max(1, (capacity+n-1)/n), nowFunc: time.Now}
	m.shards = make([]shard[K, V], n)
	for i := range m.shards {
		m.shards[i].m = make(map[K]entry[V])
	}
	return m
}

// NewNamed returns a Map like New whose occupancy and overflows are exported under the table
// label name until Close.
func NewNamed[K comparable, V any](name string, capacity int) *Map[K, V] {
	m := New[K, V](capacity)
	m.name = name
	Register(name, m)
	return m
}

// SetClock makes the map read the time from now, for tests with a fake clock.
func (m *Map[K, V]) SetClock(now func() time.Time) { m.nowFunc = now }

// Close stops exporting the map's metrics. Its entries stay readable.
func (m *Map[K, V]) Close() {
	if m.name != "" {
		Unregister(m.name, m)
	}
}

func (m *Map[K, V]) shard(k K) *shard[K, V] {
	return &m.shards[maphash.Comparable(m.seed, k)%uint64(len(m.shards))]
}

// Get returns the live value for k. It takes the shard's read lock only, unless the entry it
// finds has expired and must go.
func (m *Map[K, V]) Get(k K) (V, bool) {
	s := m.shard(k)
	s.mu.RLock()
	e, ok := s.m[k]
	live := ok && e.expires.After(m.nowFunc())
	s.mu.RUnlock()
	switch {
	case live:
		return e.v, true
	case ok:
		return m.lookup(k, false) // drops it, unless it was replaced meanwhile
	}
	var zero V
	return zero, false
}

// Take removes k and returns its live value, under one lock: of two callers taking the same key,
// one gets it.
func (m *Map[K, V]) Take(k K) (V, bool) { return m.lookup(k, true) }

// lookup returns the live value for k, removing k if take is set or its value has expired.
func (m *Map[K, V]) lookup(k K, take bool) (V, bool) {
	s := m.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[k]
	if !ok {
		var zero V
		return zero, false
	}
	live := e.expires.After(m.nowFunc())
	if take || !live {
		delete(s.m, k)
		m.live.Add(-1)
	}
	if !live {
		var zero V
		return zero, false
	}
	return e.v, true
}

// Empty reports whether the map holds nothing, without taking a lock: the cheap test a hot path
// makes before it builds a key.
func (m *Map[K, V]) Empty() bool { return m.live.Load() == 0 }

// Put stores v for k until ttl from now, replacing any value. It returns false, storing nothing,
// when k is new and its shard is full of live entries.
func (m *Map[K, V]) Put(k K, v V, ttl time.Duration) bool {
	_, ok := m.Update(k, ttl, func(V, bool) V { return v })
	return ok
}

// Update stores f(old, found) for k until ttl from now, under the shard's lock, and returns the
// stored value. found is false when k had no live value. It returns false, storing nothing, when
// k is new and its shard is full of live entries.
func (m *Map[K, V]) Update(k K, ttl time.Duration, f func(old V, found bool) V) (V, bool) {
	return m.UpdateAt(k, m.nowFunc(), ttl, f)
}

// UpdateAt is Update at a time the caller read already: clock reads are not free on every machine,
// and a hot path should make one.
func (m *Map[K, V]) UpdateAt(k K, now time.Time, ttl time.Duration, f func(old V, found bool) V) (V, bool) {
	s := m.shard(k)
	s.mu.Lock()
	defer s.mu.Unlock()
	e, held := s.m[k]
	found := held && e.expires.After(now)
	if !found && !held && len(s.m) >= m.perShard && !m.sweep(s, now, ttl) {
		if m.name != "" {
			overflows.WithLabelValues(m.name).Inc()
		}
		var zero V
		return zero, false
	}
	if !found {
		var zero V
		e.v = zero
	}
	v := f(e.v, found)
	if !held {
		m.live.Add(1)
	}
	expires := now.Add(ttl)
	if len(s.m) == 0 || expires.Before(s.earliest) {
		s.earliest = expires
	}
	s.m[k] = entry[V]{v: v, expires: expires}
	return v, true
}

// sweep drops the expired entries of the full shard s, if a sweep is due, and reports whether it
// made room. s.mu is held.
func (m *Map[K, V]) sweep(s *shard[K, V], now time.Time, ttl time.Duration) bool {
	if now.Before(s.earliest) || now.Sub(s.swept) < ttl/sweepSpacing {
		return false
	}
	s.swept = now
	var earliest time.Time
	for key, e := range s.m {
		switch {
		case !e.expires.After(now):
			delete(s.m, key)
			m.live.Add(-1)
		case earliest.IsZero() || e.expires.Before(earliest):
			earliest = e.expires
		}
	}
	s.earliest = earliest
	return len(s.m) < m.perShard
}

// Delete removes k.
func (m *Map[K, V]) Delete(k K) {
	m.DeleteIf(k, func(V) bool { return true })
}

// DeleteIf removes k if its value satisfies f, under the shard's lock.
func (m *Map[K, V]) DeleteIf(k K, f func(V) bool) {
	s := m.shard(k)
	s.mu.Lock()
	if e, ok := s.m[k]; ok && f(e.v) {
		delete(s.m, k)
		m.live.Add(-1)
	}
	s.mu.Unlock()
}

// Range calls f for every live entry, under its shard's read lock: f must not call back into the
// map.
func (m *Map[K, V]) Range(f func(K, V)) {
	now := m.nowFunc()
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		for k, e := range s.m {
			if e.expires.After(now) {
				f(k, e.v)
			}
		}
		s.mu.RUnlock()
	}
}

// Len returns the number of entries held, expired ones not yet dropped included.
func (m *Map[K, V]) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// Live returns the number of entries that have not expired: what the table is doing now, where Len
// counts what it holds in memory. It walks every shard; it is for scrapes, not for a query's path.
func (m *Map[K, V]) Live() int {
	n := 0
	m.Range(func(K, V) { n++ })
	return n
}

// Cap returns the most entries the map holds.
func (m *Map[K, V]) Cap() int { return m.perShard * len(m.shards) }
