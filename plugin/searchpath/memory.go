package searchpath

import (
	"net"
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
	done chan struct{}
	res  *result
	once sync.Once
}

func (s *shared) finish(res *result) {
	s.once.Do(func() {
		s.res = res
		close(s.done)
	})
}

// join returns the walk for key and whether the caller leads it. When the table is full the
// caller leads a walk of its own, unshared.
func (wk *Walker) join(key pairKey) (*shared, bool) {
	mine := &shared{done: make(chan struct{})}
	got, ok := wk.pairs.Update(key, pairTTL, func(old *shared, found bool) *shared {
		if found {
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
func (wk *Walker) remember(key pairKey, res *result) {
	if res.outcome != outcomeExhausted && res.outcome != outcomePassed {
		return
	}
	now := time.Now()
	for i := 1; i < len(res.names); i++ {
		e := &remembered{at: now}
		ttl := passTTL
		// NXDOMAINs found before the walk stopped are answered from memory; from the stopping
		// name on, the client resolves down the chain.
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

// clientAddr returns the client's address without the allocations of formatting and parsing it.
func clientAddr(w dns.ResponseWriter) netip.Addr {
	switch a := w.RemoteAddr().(type) {
	case *net.UDPAddr:
		return a.AddrPort().Addr().Unmap()
	case *net.TCPAddr:
		return a.AddrPort().Addr().Unmap()
	case nil:
		return netip.Addr{}
	}
	ap, _ := netip.ParseAddrPort(w.RemoteAddr().String())
	return ap.Addr().Unmap()
}

// flags returns the query's DO and CD bits.
func flags(r *dns.Msg) (do, cd bool) {
	if o := r.IsEdns0(); o != nil {
		do = o.Do()
	}
	return do, r.CheckingDisabled
}
