// Package family remembers which address types each client asks for: A, AAAA or both.
//
// glibc and musl ask A and AAAA together for an AF_UNSPEC lookup, and one of them for AF_INET or
// AF_INET6; Go's resolver, Java and many runtimes on IPv4-only networks ask A alone. raceguard
// spends upstream queries on the type a client did not ask only when the client asks both: the
// sibling prefetch resolves AAAA for an A only for a client that asks AAAA too, and a search walk
// resolves only A for a client known to ask A alone. A client is known by its address; a node's
// hostNetwork pods share one, and count as one client that asks what any of them asks.
//
// Asked says whether a client asked a type within Window: the prefetch wants that evidence. AsksOnly
// says a client has asked one type alone for at least Settle, and not the other within Window: a
// new client is not known well enough, and a walk treats it as asking both (the safe side: an
// answer for both types changes no client's result). Recording a query reads a few atomics and
// writes one only once a second per client and type.
package family

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
)

// Defaults for New.
const (
	DefaultCapacity = 50000
	Window          = 10 * time.Minute // both types asked within it: dual
	Settle          = 30 * time.Second // one type only for at least this long: single
	refresh         = time.Second      // a type's last-asked time is written at most this often
	entryTTL        = Window
)

// seen is one client's record: the first and last time it asked each type, unix nanoseconds, 0
// for never. Only atomics: many queries of one client update it at once.
type seen struct {
	first [2]atomic.Int64 // A, AAAA
	last  [2]atomic.Int64
}

// Tracker holds the clients' records.
type Tracker struct {
	clients *bounded.Map[netip.Addr, *seen]
	now     func() time.Time
}

// New returns a Tracker of at most capacity clients, reading the time from now.
func New(capacity int, now func() time.Time) *Tracker {
	return &Tracker{clients: bounded.NewNamed[netip.Addr, *seen]("families", capacity), now: now}
}

// Close releases the table.
func (t *Tracker) Close() { t.clients.Close() }

func slot(qtype uint16) int {
	if qtype == dns.TypeAAAA {
		return 1
	}
	return 0
}

// Observe records that client asked qtype (A or AAAA).
func (t *Tracker) Observe(client netip.Addr, qtype uint16) {
	now := t.now().UnixNano()
	i := slot(qtype)
	if s, ok := t.clients.Get(client); ok {
		if last := s.last[i].Load(); now-last > int64(refresh) {
			s.last[i].Store(now)
			s.first[i].CompareAndSwap(0, now)
			t.clients.Put(client, s, entryTTL)
		}
		return
	}
	s := &seen{}
	s.first[i].Store(now)
	s.last[i].Store(now)
	t.clients.Put(client, s, entryTTL) // a full table forgets the client: it counts as dual
}

// Asked reports whether client asked qtype (A or AAAA) within Window.
func (t *Tracker) Asked(client netip.Addr, qtype uint16) bool {
	s, ok := t.clients.Get(client)
	if !ok {
		return false
	}
	last := s.last[slot(qtype)].Load()
	return last != 0 && t.now().UnixNano()-last <= int64(Window)
}

// AsksOnly returns the one type client has been asking alone for at least Settle (dns.TypeA or
// dns.TypeAAAA), or 0 when it asks both or is not known well enough.
func (t *Tracker) AsksOnly(client netip.Addr) uint16 {
	switch {
	case t.single(client, 0):
		return dns.TypeA
	case t.single(client, 1):
		return dns.TypeAAAA
	}
	return 0
}

// single reports whether client has asked type i alone: first asked at least Settle ago, and the
// other type not within Window.
func (t *Tracker) single(client netip.Addr, i int) bool {
	s, ok := t.clients.Get(client)
	if !ok {
		return false
	}
	now := t.now().UnixNano()
	first := s.first[i].Load()
	other := s.last[1-i].Load()
	return first != 0 && now-first >= int64(Settle) && (other == 0 || now-other > int64(Window))
}
