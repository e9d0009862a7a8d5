package bounded

import (
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkMapParallel measures the shared map under goroutines that read and write keys of their
// own (run with -cpu 1,2,4,8): time per operation should stay flat as they grow, the shards
// keeping one busy key from serialising the rest.
func BenchmarkMapParallel(b *testing.B) {
	const capacity, keys, ttl = 50000, 20000, 15 * time.Second
	m := New[uint64, int](capacity)
	for i := range uint64(keys) {
		m.Put(i, int(i), ttl)
	}
	b.Run("get", func(b *testing.B) {
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			k := seed.Add(7919) % keys
			for pb.Next() {
				m.Get(k)
				k = (k + 1) % keys
			}
		})
	})
	b.Run("update", func(b *testing.B) {
		var seed atomic.Uint64
		b.RunParallel(func(pb *testing.PB) {
			k := seed.Add(7919) % keys
			for pb.Next() {
				m.Update(k, ttl, func(v int, _ bool) int { return v + 1 })
				k = (k + 1) % keys
			}
		})
	})
}
