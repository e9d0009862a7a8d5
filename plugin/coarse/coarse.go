// Package coarse is a clock that costs one atomic load to read, for hot paths that need
// milliseconds, not nanoseconds. Reading the real clock costs 20 to 120 ns depending on the
// machine's clock source (the higher end on some virtual machines, this project's CI among them);
// raceguard's fingerprints read the time for every A and AAAA query.
//
// The clock ticks every Resolution while at least one user holds it (Acquire/Release), so an
// idle process runs no ticker.
package coarse

import (
	"sync"
	"sync/atomic"
	"time"
)

// Resolution is how far behind the real clock Now may be.
const Resolution = 5 * time.Millisecond

var (
	now atomic.Int64 // unix nanoseconds

	mu    sync.Mutex
	users int           // protected by mu
	stop  chan struct{} // protected by mu
	done  chan struct{} // protected by mu
)

// Now returns the coarse time: the real time when no one holds the clock.
func Now() time.Time {
	if n := now.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

// Acquire starts the ticker for one more user.
func Acquire() {
	mu.Lock()
	defer mu.Unlock()
	if users++; users > 1 {
		return
	}
	now.Store(time.Now().UnixNano())
	stop, done = make(chan struct{}), make(chan struct{})
	go func(stop, done chan struct{}) {
		defer close(done)
		t := time.NewTicker(Resolution)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case tick := <-t.C:
				now.Store(tick.UnixNano())
			}
		}
	}(stop, done)
}

// Release stops the ticker when its last user leaves.
func Release() {
	mu.Lock()
	defer mu.Unlock()
	if users == 0 {
		return
	}
	if users--; users > 0 {
		return
	}
	close(stop)
	<-done
	now.Store(0)
}
