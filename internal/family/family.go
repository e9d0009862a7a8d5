// Package family remembers which address types each client asks for: A, AAAA or both.
//
// glibc and musl ask A and AAAA together for an AF_UNSPEC lookup, and one of them for AF_INET or
// AF_INET6; Go's resolver, Java and many runtimes on IPv4-only networks ask A alone. raceguard
// spends upstream queries on the type a client did not ask only when the client asks both: the
// sibling prefetch resolves AAAA for an A only for a client that asked AAAA too, and a search walk
// resolves the other type only for a client that asked it. A client is known by its address; a
// node's hostNetwork pods share one, and count as one client that asks what any of them asks.
//
// Asked says whether a client asked a type within Window. Recording a query costs a hash, a striped
// lock and a slot of a fixed table (package slots); while the client's record of the type is less
// than a second old, two atomic reads and nothing more.
package family

import (
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/slots"
)

// Defaults for New.
const (
	DefaultCapacity = 50000
	Window          = 10 * time.Minute // a type asked within it is asked
	entryTTL        = Window
	refresh         = time.Second // a record is written at most this often per type
)

// seen is one client's record: the last time it asked each type (A, AAAA), unix nanoseconds, 0
// for never. Written under its slot's lock; also read without it, to skip the write while it is
// fresh.
type seen struct {
	last [2]atomic.Int64
}

// Tracker holds the clients' records.
type Tracker struct {
	clients *slots.Table[seen]
	now     func() int64 // unix nanoseconds
}

// New returns a Tracker for about capacity clients (twice as many slots), reading the time from
// now (unix nanoseconds).
func New(capacity int, now func() int64) *Tracker {
	t := &Tracker{clients: slots.New[seen]("families", 2*capacity), now: now}
	t.clients.SetClock(func() time.Time { return time.Unix(0, now()) })
	return t
}

// Close releases the table.
func (t *Tracker) Close() { t.clients.Close() }

func slot(qtype uint16) int {
	if qtype == dns.TypeAAAA {
		return 1
	}
	return 0
}

// Observe records that client (slots.ClientOf its address) asked qtype (A or AAAA). While the
// client's record of that type is less than a second old, it reads two atomics and writes nothing.
func (t *Tracker) Observe(client slots.Client, qtype uint16) {
	now := t.now()
	i := slot(qtype)
	key := uint64(client)
	if s, ok := t.clients.Slot(t.clients.Index(key), key); ok && now-s.last[i].Load() < int64(refresh) {
		return
	}
	t.clients.Update(key, now, int64(entryTTL), func(s *seen, fresh bool) {
		if fresh {
			s.last[0].Store(0)
			s.last[1].Store(0)
		}
		s.last[i].Store(now)
	})
}

// Asked reports whether client asked qtype (A or AAAA) within Window.
func (t *Tracker) Asked(client netip.Addr, qtype uint16) bool {
	now := t.now()
	asked := false
	t.clients.View(uint64(slots.ClientOf(client)), now, func(s *seen) {
		last := s.last[slot(qtype)].Load()
		asked = last != 0 && now-last <= int64(Window)
	})
	return asked
}
