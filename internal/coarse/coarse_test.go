package coarse

import (
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClock(t *testing.T) {
	Acquire()
	Acquire()
	start := Now()
	time.Sleep(50 * time.Millisecond)
	if d := Now().Sub(start); d < 30*time.Millisecond || d > time.Second {
		t.Errorf("Expected the coarse clock to advance about 50ms, got %s", d)
	}
	if d := time.Since(Now()); d < 0 || d > 10*Resolution {
		t.Errorf("Expected the coarse clock within a few ticks of the real one, %s behind", d)
	}
	Release()
	Release()
	Release() // one too many is harmless
	if now.Load() != 0 {
		t.Error("Expected the ticker stopped with its last user")
	}
	if d := time.Since(Now()); d > time.Millisecond {
		t.Errorf("Expected the real time without users, got %s behind", d)
	}
}
