// Package slots provides the fixed-size, direct-mapped table behind the state raceguard keeps for
// every query, cache hits included: the fingerprints of A/AAAA pairs and the address types each
// client asks.
//
// A query's path must not pay for a general map. A Table is an array of slots indexed by a 64-bit
// hash of the key; a key owns the one slot its hash picks, and a new key takes it over (evicting
// what was there, counted as the table's overflow when that was still live). There is no sweep,
// no growth and no allocation after New: memory is the table's size, always. Slots are guarded by
// striped locks, so two queries contend only when their slots share a stripe. Two keys whose
// 64-bit hashes are equal are one key: at the sizes used here that is once in billions of years.
//
// Entries expire: a slot whose entry is older than its TTL is free. The table's entries and
// capacity are exported as the bounded package's tables are (coredns_raceguard_table_*), under
// the table's name.
package slots

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/raceguard/raceguard/internal/bounded"
)

// maxStripes bounds the locks of a table.
const maxStripes = 1024

// Table is a direct-mapped table of V. The zero value is not usable; call New.
type Table[V any] struct {
	name    string
	mask    uint64
	slots   []slot[V]
	stripes []stripe
	evicted prometheus.Counter // the table's overflow counter: live entries taken over
	nowFunc func() time.Time   // for Live
}

type slot[V any] struct {
	key     atomic.Uint64 // written under the stripe lock; read without it by Slot
	expires atomic.Int64  // unix nanoseconds; written under the stripe lock; read without it by Live
	v       V             // protected by the stripe lock, except what V keeps in atomics
}

// stripe is a lock padded to its own cache line, so that neighbouring stripes do not share one.
type stripe struct {
	mu sync.Mutex
	_  [56]byte
}

// New returns a table of at least size slots (a power of two), exported as name until Close.
func New[V any](name string, size int) *Table[V] {
	n := 1
	for n < size {
		n <<= 1
	}
	t := &Table[V]{
		name: name, mask: uint64(n - 1), slots: make([]slot[V], n), stripes: make([]stripe, min(n, maxStripes)),
		evicted: bounded.Overflows(name), nowFunc: time.Now,
	}
	bounded.Register(name, t)
	return t
}

// Close stops exporting the table.
func (t *Table[V]) Close() { bounded.Unregister(t.name, t) }

// Update runs f on the slot of key, under the slot's lock, and keeps it until ttl nanoseconds
// after now (unix nanoseconds). fresh is true when the slot held no live entry for key: f must
// then set every field of v it reads later. Index gives the slot, for ViewAt and Slot.
func (t *Table[V]) Update(key uint64, now, ttl int64, f func(v *V, fresh bool)) {
	i := key & t.mask
	s := &t.slots[i]
	mu := &t.stripes[i%uint64(len(t.stripes))].mu
	mu.Lock()
	other := s.key.Load() != key
	expires := s.expires.Load()
	fresh := other || expires <= now
	if other {
		if expires > now {
			t.evicted.Inc() // a live entry of another key goes
		}
		s.key.Store(key)
	}
	if expires != now+ttl {
		s.expires.Store(now + ttl)
	}
	f(&s.v, fresh)
	mu.Unlock()
}

// View runs f on the live entry of key, under the slot's lock, and reports whether there was one.
func (t *Table[V]) View(key uint64, now int64, f func(v *V)) bool {
	return t.ViewAt(key&t.mask, key, now, f)
}

// ViewAt is View on slot i, the key's Index, when the caller kept it.
func (t *Table[V]) ViewAt(i, key uint64, now int64, f func(v *V)) bool {
	s := &t.slots[i]
	mu := &t.stripes[i%uint64(len(t.stripes))].mu
	mu.Lock()
	ok := s.key.Load() == key && s.expires.Load() > now
	if ok {
		f(&s.v)
	}
	mu.Unlock()
	return ok
}

// Index returns the slot key lands in, for Slot.
func (t *Table[V]) Index(key uint64) uint64 { return key & t.mask }

// Slot returns the value of slot i (the key's Index) if key owns it, without the lock: only
// what V keeps in atomics may be read or written through it, and the slot may change owner at any
// moment after.
func (t *Table[V]) Slot(i, key uint64) (*V, bool) {
	s := &t.slots[i]
	if s.key.Load() != key {
		return nil, false
	}
	return &s.v, true
}

// SetClock makes Live read the time from now, for tests with a fake clock.
func (t *Table[V]) SetClock(now func() time.Time) { t.nowFunc = now }

// Live returns the number of live entries. It walks the whole table without its locks, so a
// scrape never holds up a query: it is for scrapes, and exact only while nothing writes.
func (t *Table[V]) Live() int {
	now := t.nowFunc().UnixNano()
	n := 0
	for i := range t.slots {
		if t.slots[i].expires.Load() > now {
			n++
		}
	}
	return n
}

// Cap returns the number of slots.
func (t *Table[V]) Cap() int { return len(t.slots) }

// Mix is the finaliser of MurmurHash3, for building a table's keys: every bit of x moves every bit
// of the result. Keys a client chooses (its address, a name) must be mixed with a secret seed
// first, or they could be made to land in another client's slot.
func Mix(x uint64) uint64 {
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	return x
}
