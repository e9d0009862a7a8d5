package searchpath

import (
	"net/netip"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// pairKey identifies one lookup's walk: everything that can change its answers. A Walker serves
// one server block, so the server and view are the same for all its keys.
type pairKey struct {
	client      netip.Addr
	name        string
	do, cd, tcp bool
}

// shared is a walk in flight or just done. res is written once, before done is closed, and only
// read after.
type shared struct {
	started time.Time // when the walk began; it is not shared pairTTL later
	done    chan struct{}
	res     *result
	once    sync.Once
}

func (s *shared) finish(res *result) {
	s.once.Do(func() {
		s.res = res
		close(s.done)
	})
}

// share returns the walk for key and whether the caller leads it. A walk is shared only within
// pairTTL of its start, however often it is asked for: its answers are that old at most (and aged
// accordingly), never kept alive by a client asking again and again. When the table is full the
// caller leads a walk of its own, unshared.
func (wk *Walker) share(key pairKey) (*shared, bool) {
	now := time.Now()
	mine := &shared{started: now, done: make(chan struct{})}
	got, ok := wk.pairs.UpdateAt(key, now, pairTTL, func(old *shared, found bool) *shared {
		if found && now.Sub(old.started) < pairTTL {
			return old
		}
		return mine
	})
	if !ok {
		return mine, true
	}
	return got, got == mine
}

// memKey identifies a name one client will ask next, with the flags that change its answer.
type memKey struct {
	client netip.Addr
	name   string
	do, cd bool
}

// remembered is what a walk knows of a name a client will try next: its A and AAAA NXDOMAINs,
// or nothing (nil) for a name the client must resolve down the chain itself.
type remembered struct {
	msg [2]*dns.Msg
	at  time.Time
}

// remember keeps, for the walk's client, the tail of a walk the client will continue itself.
//
// A walk answered for the client leaves a tail too when a type got a plain NODATA: that client
// may walk on (glibc does for a single family, and for a pair where neither type has records),
// and its later tries must get what they would have got, never be completed as walks of their own
// (found by the differential test, test/differential_test.go WalkTail).
func (wk *Walker) remember(key pairKey, res *result) {
	switch res.outcome {
	case outcomeExhausted, outcomePassed:
	case outcomeAnswered:
		if res.answer[0].class() != classNoData && res.answer[1].class() != classNoData {
			return // records for both types: the client stops here
		}
	default:
		return
	}
	now := time.Now()
	for i := 1; i < len(res.names); i++ {
		e := &remembered{at: now}
		ttl := passTTL
		// NXDOMAINs found before the walk stopped are answered from memory; from the stopping
		// name on, the client resolves down the chain, uncompleted.
		if i < len(res.tried) && (res.outcome == outcomeExhausted || i < res.k) {
			e.msg = [2]*dns.Msg{res.tried[i][0].msg, res.tried[i][1].msg}
			ttl = min(negativeTTL(e.msg[0]), negativeTTL(e.msg[1]))
		}
		wk.memory.Put(memKey{client: key.client, name: res.names[i], do: key.do, cd: key.cd}, e, ttl)
	}
}

// negativeTTL is how long an NXDOMAIN may be remembered: its SOA's TTL and minimum (RFC 2308),
// between minRememberTTL and maxRememberTTL.
func negativeTTL(m *dns.Msg) time.Duration {
	ttl := defaultRememberTTL
	for _, rr := range m.Ns {
		if soa, ok := rr.(*dns.SOA); ok {
			ttl = time.Duration(min(soa.Hdr.Ttl, soa.Minttl)) * time.Second
			break
		}
	}
	return max(minRememberTTL, min(ttl, maxRememberTTL))
}
