// Package process holds what a CoreDNS process has once, however many server instances use it:
// the coarse clock's ticker, the conntrack monitor. A reload (SIGUSR1, the reload plugin) starts
// the new instance before it shuts the old one down, so such a thing is counted, started by its
// first user and stopped when its last user leaves, never in between.
package process

import "sync"

// Resource counts the users of one process-wide thing. The zero value has none.
type Resource struct {
	mu    sync.Mutex
	users int    // guarded by mu
	stop  func() // what the first user's start returned; guarded by mu
}

// Acquire counts one more user. The first one's start runs, and what it returns is kept to run
// when the last user leaves; a later one's join, if not nil, runs instead (to take on a new
// configuration, say). Both run under the Resource's lock.
func (r *Resource) Acquire(start func() (stop func()), join func()) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users++; r.users == 1 {
		r.stop = start()
	} else if join != nil {
		join()
	}
}

// Release counts one user less, and stops the thing when none is left. A Release without an
// Acquire does nothing.
func (r *Resource) Release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.users == 0 {
		return
	}
	if r.users--; r.users == 0 && r.stop != nil {
		r.stop()
		r.stop = nil
	}
}
