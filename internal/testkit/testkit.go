// Package testkit holds what the tests and benchmarks of raceguard's own packages share, and
// nothing the product runs: a writer whose replies go nowhere, and a bounded wait for a condition
// that another goroutine makes true. (The end-to-end tests under test/ share test/testenv.)
package testkit

import (
	"testing"
	"time"
)

// WaitTimeout bounds every Eventually: far beyond what any condition of a passing test needs on
// a loaded machine, so that a fault fails the test with a message instead of hanging the binary.
const WaitTimeout = 10 * time.Second

// Eventually waits until cond holds, checking it every millisecond, and fails the test, naming
// what it waited for, if it does not within WaitTimeout. Use it where no event can be waited
// for: a counter another goroutine raises, a slot it releases.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(WaitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("Timed out after %s waiting for %s", WaitTimeout, what)
		}
		time.Sleep(time.Millisecond)
	}
}
