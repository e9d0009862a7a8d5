package searchpath

import (
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// client is what a Walker knows of one client address: which of its walks it continues itself
// (their trails are in the Walker's trail table), the walk budget it has left, and, where the
// Walker sees every try of its clients (Learn), the search lists its own walks showed. Every field
// is guarded by mu.
type client struct {
	mu       sync.Mutex
	trails   map[string]trailRef // by base
	crowded  time.Time           // until then no walk starts: a trail was dropped for room (see add)
	lists    []*learned
	tokens   float64   // the walk budget left
	refilled time.Time // when tokens was last refilled
}

// trailRef names a trail of the client in the Walker's trail table.
type trailRef struct {
	base, first string
	expires     time.Time
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
// exhausted, or answered a type with NODATA. Its candidates, resolved or still in flight, answer
// the client's later tries from memory when they are NXDOMAIN; and the tries the client sends
// show its search list. Every field above mu is set before the trail is shared.
type trail struct {
	first   string    // the first search domain: the walk's first try is base+first
	domains []string  // the domains after first the walk tried, in order ("" is the base itself); nil if it did not run
	futures []*future // per domain: the walk's resolution, nil where it made none
	do, cd  bool

	mu    sync.Mutex
	seen  []string // the domains the client tried after first, in its order; guarded by mu
	ended bool     // the client tried the base itself after them; guarded by mu
	asIs  bool     // the first try was a name asked as is; guarded by mu
}

// learned is a client's search list after its first domain, as its own walks showed it.
type learned struct {
	first   string
	domains []string
	ended   bool // the list ends after domains: the client's next try is the name itself
	at      time.Time
}

// maxTrails bounds the trails of one client (the Walker's trail table bounds all of them), and
// settledAge is how old a trail must be to make room for another: by then its client has sent
// all its later tries, unless one of them waited out a resolver timeout. maxLearned bounds the
// learned lists of a client (one per first domain: a node's hostNetwork pods share its address and
// may sit in several namespaces); maxDomains the length of a learned list (glibc and musl read at
// most 6 search domains from resolv.conf; a dnsConfig may add a few).
const (
	maxTrails  = 1024
	settledAge = 10 * time.Second
	maxLearned = 4
	maxDomains = 12
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
	c.trails[ref.base] = ref
}

// match returns the trail name is a later try of, and the domain it tries: name is the trail's
// base followed by one of the client's search domains, or the base itself (domain ""). Of two
// trails whose bases both start name, the newer. The first try itself (base+first) is no later
// try: a client asking it again starts a new lookup. Nor is a name below the first try, which
// shows the client asked the first try as is (a name given whole, or with ndots dots or more) and
// now searches below it: belowFirst is set. Call with c.mu held.
func (c *client) match(name string, now time.Time) (ref trailRef, domain string, belowFirst, ok bool) {
	if len(c.trails) == 0 {
		return trailRef{}, "", false, false
	}
	for i := 0; i < len(name); i++ {
		if name[i] != '.' {
			continue
		}
		t, found := c.trails[name[:i+1]]
		if !found || !t.expires.After(now) {
			continue
		}
		d := name[i+1:]
		if d == t.first || ok && !t.expires.After(ref.expires) {
			continue
		}
		ref, domain, ok = t, d, true
	}
	if ok {
		belowFirst = len(domain) > len(ref.first) && strings.HasPrefix(domain, ref.first)
	}
	return ref, domain, belowFirst, ok
}

// observe records that the client tried t's base with domain, and returns the search list its
// tries show so far, for learning. The A and the AAAA of one try, and retransmissions, are one
// try.
func (t *trail) observe(domain string) (domains []string, ended, changed bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.ended || t.asIs:
	case domain == "":
		t.ended, changed = true, true
	case len(t.seen) > 0 && t.seen[len(t.seen)-1] == domain:
	case len(t.seen) < maxDomains:
		t.seen, changed = append(t.seen, domain), true
	}
	return slices.Clone(t.seen), t.ended, changed
}

// follows reports whether a try of t's base under domain can be the client's next try of t's
// walk. After a namespace domain (<ns>.svc.<cluster domain>) every list kubelet writes goes on
// with its parent (svc.<cluster domain>) and that one's parent (the cluster domain), the
// hierarchy raceguard trusts for every such list: a try elsewhere among the first two is a name
// asked as is that happens to share the base (db.shop.svc.cluster.local. after
// db.default.svc.cluster.local.), and teaches nothing. The A and the AAAA of one try, and
// retransmissions, are one try.
func (t *trail) follows(domain string) bool {
	t.mu.Lock()
	n := len(t.seen)
	same := n > 0 && t.seen[n-1] == domain
	t.mu.Unlock()
	if same || n >= 2 || !strings.HasPrefix(t.first[strings.IndexByte(t.first, '.')+1:], "svc.") {
		return true
	}
	want := t.first
	for range n + 1 {
		want = want[strings.IndexByte(want, '.')+1:]
	}
	return domain == want
}

// markAsIs marks t's first try as a name asked as is, and reports whether it was not marked yet.
func (t *trail) markAsIs() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	first := !t.asIs
	t.asIs = true
	return first
}

// list returns the learned list for the first domain first, or nil. Call with c.mu held.
func (c *client) list(first string) *learned {
	for _, l := range c.lists {
		if l.first == first {
			return l
		}
	}
	return nil
}

// knowsOther reports whether the client has a learned list, but none for first: its first try
// would be under another namespace domain. Call with c.mu held.
func (c *client) knowsOther(first string) bool {
	return len(c.lists) > 0 && c.list(first) == nil
}

// learn keeps what a walk of the client showed of its list after first. A longer or different
// observation replaces what was learned; one that stops short of it (the client found its answer
// sooner) confirms it. Call with c.mu held.
func (c *client) learn(first string, domains []string, ended bool, now time.Time) {
	l := c.list(first)
	if l == nil {
		if len(c.lists) >= maxLearned {
			c.lists = slices.Delete(c.lists, 0, 1)
		}
		l = &learned{first: first}
		c.lists = append(c.lists, l)
	}
	l.at = now
	n := min(len(domains), len(l.domains))
	if slices.Equal(domains[:n], l.domains[:n]) && len(domains) <= len(l.domains) && (!ended || l.ended && len(domains) == len(l.domains)) {
		return // a prefix of what is known: a confirmation
	}
	l.domains, l.ended = slices.Clone(domains), ended
}

// expire drops the learned lists not confirmed since before. Call with c.mu held.
func (c *client) expire(before time.Time) {
	c.lists = slices.DeleteFunc(c.lists, func(l *learned) bool { return l.at.Before(before) })
}
