package searchpath

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// client is what a Walker keeps of one client address: which of its walks it continues itself
// (their trails are in the Walker's trail table), the walk budget it has left, and until when its
// walks are vetoed. None of it is learned from what the client sends in a way that could change
// another lookup's answer: a forged packet can only make this client's lookups cost what they cost
// without raceguard (see veto). Every field is guarded by mu.
type client struct {
	mu       sync.Mutex
	trails   map[string]trailRef // by base
	crowded  time.Time           // until then no walk starts: a trail was dropped for room (see add)
	vetoed   time.Time           // until then no walk of an exactly known list starts (see veto)
	tokens   float64             // the walk budget left
	refilled time.Time           // when tokens was last refilled
}

// trailRef names a trail of the client in the Walker's trail table, and follows the client's
// later tries of it.
type trailRef struct {
	base, first string
	rest        []string // the domains after first, in the list's order (the walk's Rest: shared, never modified)
	exact       bool     // the list is the client's own (Walk.Exact): a try that contradicts it vetoes the client
	expires     time.Time

	pos   int  // the furthest domain the client tried, -1 before any later try
	asIs  bool // the first try was a name asked as is (counted once)
	ended bool // the client tried the base itself
}

// has reports whether the client has a token of budget b left for a walk. Call with c.mu held.
func (c *client) has(b Budget, now time.Time) bool {
	if b.Rate == 0 {
		return true
	}
	c.refill(b, now)
	return c.tokens >= 1
}

// charge takes n tokens of budget b, as far as into debt. Call with c.mu held.
func (c *client) charge(b Budget, n float64, now time.Time) {
	if b.Rate == 0 {
		return
	}
	c.refill(b, now)
	c.tokens = max(-b.Burst, c.tokens-n)
}

// refill adds the tokens earned since the last refill. Call with c.mu held.
func (c *client) refill(b Budget, now time.Time) {
	if c.refilled.IsZero() {
		c.tokens, c.refilled = b.Burst, now
	}
	c.tokens = min(b.Burst, c.tokens+now.Sub(c.refilled).Seconds()*b.Rate)
	c.refilled = now
}

// trailKey identifies a trail: one client's walk of one base.
type trailKey struct {
	client netip.Addr
	base   string
}

// trail is a walk of one client that the client continues itself: the walk passed through, was
// exhausted, answered a type with NODATA, or did not run. Its candidates, resolved or still in
// flight, answer the client's later tries from memory when they are NXDOMAIN. It is immutable.
type trail struct {
	futures []*future // per later try of its trailRef (index): the walk's resolution, nil where it made none; nil if it did not run
	do, cd  bool
}

// maxTrails bounds the trails of one client (the Walker's trail table bounds all of them), and
// settledAge is how old a trail must be to make room for another: by then its client has sent
// all its later tries, unless one of them waited out a resolver timeout.
const (
	maxTrails  = 1024
	settledAge = 10 * time.Second
)

// add notes a trail of the client, dropping expired ones when it has maxTrails, and then the
// oldest. A dropped trail's later tries can no longer be told from first tries: if it was younger
// than settledAge (the client continues more than maxTrails walks in that time), the client starts
// no walk for as long as they may come (trailTTL), and its first tries are served as they are.
// Call with c.mu held.
func (c *client) add(ref trailRef, now time.Time) {
	if c.trails == nil {
		c.trails = make(map[string]trailRef)
	}
	if _, ok := c.trails[ref.base]; !ok && len(c.trails) >= maxTrails {
		maps.DeleteFunc(c.trails, func(_ string, t trailRef) bool { return !t.expires.After(now) })
		if len(c.trails) >= maxTrails {
			oldest := ref
			for _, t := range c.trails {
				if t.expires.Before(oldest.expires) {
					oldest = t
				}
			}
			delete(c.trails, oldest.base)
			if oldest.expires.Add(-trailTTL).After(now.Add(-settledAge)) {
				c.crowded = now.Add(trailTTL)
			}
		}
	}
	ref.pos = -1
	c.trails[ref.base] = ref
}

// try is what a name is to the trails of its client (match).
type try int

const (
	tryNone  try = iota // no trail's later try: a first try of its own, or a name asked as is
	tryLater            // a later try of a trail: base under a domain of its list, or the base itself
	tryAsIs             // a name below a trail's first try, the first time: that first try was a name asked as is
	tryVeto             // a try that contradicts an exactly known list
)

// match returns what name is to the client's live trails, and for a later try, the trail and the
// domain it tries (a domain of the trail's list, "" for the base itself). A name is a later try of
// a trail only if it is exactly the trail's base under a domain of its list: never under any other
// suffix (api.shop.default.default.svc.cluster.local. is no try of api.shop.'s walk, but the first
// try of api.shop.default), and never the first try itself, which starts a new lookup. Of two
// trails whose bases both start name, the newer. Call with c.mu held.
func (c *client) match(name string, now time.Time) (ref trailRef, domain string, what try) {
	if len(c.trails) == 0 {
		return trailRef{}, "", tryNone
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		t, found := c.trails[name[:i+1]]
		if !found || !t.expires.After(now) || what == tryLater && !t.expires.After(ref.expires) {
			continue
		}
		d := name[i+1:]
		// The base itself before the list's last domain proves no shorter list: another lookup of
		// the client may ask that name as is (example.org. beside example.org), and behind a
		// ClusterIP the domains between went to another replica.
		switch j := t.index(d); {
		case j >= 0:
			t.pos, t.ended = max(t.pos, j), t.ended || d == ""
			c.trails[t.base] = t
			ref, domain, what = t, d, tryLater
		case what == tryLater:
		case len(d) > len(t.first) && strings.HasPrefix(d, t.first):
			// The first try itself, searched: it was a name asked as is.
			if !t.asIs {
				t.asIs = true
				c.trails[t.base] = t
				ref, what = t, tryAsIs
			}
		case t.contradicted(d):
			ref, what = t, tryVeto
		}
	}
	return ref, domain, what
}

// contradicted reports whether the client's try of t's base under domain d, which is not in t's
// list, shows that the list is not the client's: t's list is exactly known, the client is in the
// middle of its walk (it tried a later domain, and not yet the base itself), and d is no first try
// of a longer name (which ends with the first domain). A pod that rewrote its resolv.conf, or a
// node whose kubelet reads another resolv.conf than the one raceguard was given, shows this way.
func (t trailRef) contradicted(d string) bool {
	return t.exact && t.pos >= 0 && !t.ended && d != t.first && !strings.HasSuffix(d, "."+t.first)
}

// index returns the position of the domain d among the client's later tries: i for rest[i],
// len(rest) for the base itself (""), -1 for none.
func (t trailRef) index(d string) int {
	if d == "" {
		return len(t.rest)
	}
	return slices.Index(t.rest, d)
}
