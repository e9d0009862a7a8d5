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

// Nanos returns the coarse time in unix nanoseconds, without building a time.Time.
func Nanos() int64 {
	if n := now.Load(); n != 0 {
		return n
	}
	return time.Now().UnixNano()
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
