package coarse

import (
	"sync/atomic"
	"time"

	"github.com/raceguard/raceguard/internal/process"
)

// Resolution is how far behind the real clock Now may be.
const Resolution = 5 * time.Millisecond

var (
	now    atomic.Int64     // unix nanoseconds
	ticker process.Resource // the goroutine that sets now
)

// Now returns the coarse time: the real time when no one holds the clock.
func Now() time.Time {
	if n := now.Load(); n != 0 {
		return time.Unix(0, n)
	}
	return time.Now()
}

// Nanos returns the coarse time in unix nanoseconds, without building a time.Time.
func Nanos() int64 {
	if n := now.Load(); n != 0 {
		return n
	}
	return time.Now().UnixNano()
}

// Acquire starts the ticker for one more user.
func Acquire() { ticker.Acquire(tick, nil) }

// Release stops the ticker when its last user leaves.
func Release() { ticker.Release() }

// tick starts the goroutine that keeps now, and returns what stops it.
func tick() (stop func()) {
	now.Store(time.Now().UnixNano())
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(Resolution)
		defer t.Stop()
		for {
			select {
			case <-quit:
				return
			case tick := <-t.C:
				now.Store(tick.UnixNano())
			}
		}
	}()
	return func() {
		close(quit)
		<-done
		now.Store(0)
	}
}
