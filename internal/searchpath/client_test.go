package searchpath

import (
	"fmt"
	"testing"
	"time"
)

func TestClientTrails(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	fill := func(c *client, age time.Duration) {
		for i := range maxTrails {
			c.add(trailRef{base: fmt.Sprintf("n%d.example.", i), first: "default.svc.cluster.local.", expires: now.Add(trailTTL - age)}, now.Add(-age))
		}
	}
	next := trailRef{base: "new.example.", first: "default.svc.cluster.local.", expires: now.Add(trailTTL)}

	// Full of trails whose clients are done: the oldest makes room, and walks go on.
	settled := &client{}
	fill(settled, settledAge+time.Second)
	settled.add(next, now)
	if !settled.crowded.IsZero() || len(settled.trails) != maxTrails {
		t.Errorf("Expected room made without crowding, got crowded %v and %d trails", settled.crowded, len(settled.trails))
	}
	if _, _, _, ok := settled.match("new.example.svc.cluster.local.", now); !ok {
		t.Error("Expected the new trail matched")
	}

	// Full of trails younger than settledAge: the client is crowded for trailTTL.
	busy := &client{}
	fill(busy, time.Second)
	busy.add(next, now)
	if !busy.crowded.Equal(now.Add(trailTTL)) {
		t.Errorf("Expected the client crowded until %v, got %v", now.Add(trailTTL), busy.crowded)
	}

	// match: the newer of two trails whose bases start the name; never the first try itself;
	// below the first try flagged.
	c := &client{}
	c.add(trailRef{base: "a.", first: "default.svc.cluster.local.", expires: now.Add(time.Second)}, now)
	c.add(trailRef{base: "a.b.", first: "default.svc.cluster.local.", expires: now.Add(2 * time.Second)}, now)
	for _, tc := range []struct {
		name, base, domain string
		below, ok          bool
	}{
		{"a.b.svc.cluster.local.", "a.b.", "svc.cluster.local.", false, true},
		{"a.b.", "a.b.", "", false, true},
		{"a.c.svc.cluster.local.", "a.", "c.svc.cluster.local.", false, true},
		{"a.b.default.svc.cluster.local.", "a.", "b.default.svc.cluster.local.", false, true},
		{"x.a.b.default.svc.cluster.local.", "", "", false, false},
		{"a.b.c.default.svc.cluster.local.", "a.b.", "c.default.svc.cluster.local.", false, true},
		{"a.b.default.svc.cluster.local.lab.", "a.b.", "default.svc.cluster.local.lab.", true, true},
	} {
		ref, domain, below, ok := c.match(tc.name, now)
		if ok != tc.ok || ref.base != tc.base || domain != tc.domain || below != tc.below {
			t.Errorf("match(%q) = %q, %q, below %v, %v; want %q, %q, below %v, %v", tc.name, ref.base, domain, below, ok, tc.base, tc.domain, tc.below, tc.ok)
		}
	}
	if _, _, _, ok := c.match("a.b.svc.cluster.local.", now.Add(3*time.Second)); ok {
		t.Error("Expected expired trails not matched")
	}
}
