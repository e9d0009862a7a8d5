package process

import "testing"

func TestResource(t *testing.T) {
	var r Resource
	starts, stops, joins := 0, 0, 0
	start := func() func() { starts++; return func() { stops++ } }
	join := func() { joins++ }

	r.Release() // nothing to release
	r.Acquire(start, join)
	r.Acquire(start, join) // a reload's new instance, before the old one goes
	r.Release()
	if starts != 1 || joins != 1 || stops != 0 {
		t.Fatalf("Expected one start, one join and no stop while a user is left, got %d, %d, %d", starts, joins, stops)
	}
	r.Release()
	if stops != 1 {
		t.Fatalf("Expected the last user's release to stop it, got %d stops", stops)
	}
	r.Acquire(start, nil)
	r.Release()
	if starts != 2 || stops != 2 {
		t.Errorf("Expected it started and stopped again, got %d starts, %d stops", starts, stops)
	}
}
