package fingerprint

import (
	"context"
	"hash/maphash"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/coarse"
	"github.com/raceguard/raceguard/internal/query"
)

// Defaults for New.
const (
	DefaultCapacity  = 50000
	DefaultLateAfter = 250 * time.Millisecond
	DefaultWindow    = 15 * time.Second
)

// seed hashes a client and name into the table's key, once per query: a string key would be
// hashed twice (shard and map), at a cost that shows on a path every query takes.
var seed = maphash.MakeSeed()

func keyOf(client netip.AddrPort, name string) uint64 {
	var h maphash.Hash
	h.SetSeed(seed)
	b := client.Addr().As16()
	h.Write(b[:])
	h.WriteByte(byte(client.Port()))
	h.WriteByte(byte(client.Port() >> 8))
	h.WriteString(name)
	return h.Sum64()
}

// entry is one lookup's pair. seen is written under the table's shard lock; ids and answered
// are atomics, read by Answered without it.
type entry struct {
	client   netip.AddrPort // with name: the pair this is, in case two hash alike
	name     string
	seen     [2]int64 // arrival of A and AAAA, unix nanoseconds; 0: not yet
	ids      atomic.Uint32
	answered [2]atomic.Int64 // when A and AAAA were answered, unix nanoseconds; 0: not yet
}

func (e *entry) idOf(t int) uint16 { return uint16(e.ids.Load() >> (16 * t)) }

func (e *entry) setID(t int, id uint16) {
	v := e.ids.Load()
	v &^= 0xffff << (16 * t)
	e.ids.Store(v | uint32(id)<<(16*t))
}

// Event is what an arriving query showed.
type Event int

// Events.
const (
	None        Event = iota // a first type, or the second one in time
	LateSibling              // the second type, long after the first was answered
	Retransmit               // the same type again with the same ID
)

// Sink receives late siblings, for the correlation with conntrack drops.
type Sink interface {
	LateSibling(loss time.Time)
	Retransmit()
}

// Tracker holds the pairs in flight.
type Tracker struct {
	LateAfter time.Duration
	Window    time.Duration
	Sink      Sink // may be nil

	pairs *bounded.Map[uint64, *entry]
	now   func() time.Time
}

// New returns a Tracker holding at most capacity pairs. It reads the coarse clock (5 ms) until
// Close: the gaps it looks for are hundreds of milliseconds.
func New(capacity int) *Tracker {
	coarse.Acquire()
	return &Tracker{
		LateAfter: DefaultLateAfter,
		Window:    DefaultWindow,
		pairs:     bounded.NewNamed[uint64, *entry]("fingerprints", capacity),
		now:       coarse.Now,
	}
}

// Close releases the table and the clock.
func (t *Tracker) Close() {
	t.pairs.Close()
	coarse.Release()
}

// Token is handed back to Answered once the query is answered.
type Token struct {
	e  *entry
	t  int
	id uint16
}

// Observe records an A or AAAA query for name (lower-cased) from w's client, counts what it
// showed, and returns it with the gap to its partner's or first try's arrival, and a token for
// Answered.
func (t *Tracker) Observe(ctx context.Context, w dns.ResponseWriter, r *dns.Msg, name string) (Event, time.Duration, Token) {
	typ := query.PairIndex(r.Question[0].Qtype)
	clock := t.now()
	now := clock.UnixNano()
	client := query.ClientAddrPort(w)
	ev, gap := None, time.Duration(0)
	e, ok := t.pairs.UpdateAt(keyOf(client, name), clock, t.Window, func(e *entry, found bool) *entry {
		switch {
		case !found || e.client != client || e.name != name:
			e = &entry{client: client, name: name}
		case e.seen[typ] == 0 && e.seen[1-typ] != 0:
			// The sibling: late if it comes long after its partner was answered.
			gap = time.Duration(now - e.seen[1-typ])
			if ans := e.answered[1-typ].Load(); ans != 0 && time.Duration(now-ans) >= t.LateAfter {
				ev = LateSibling
			}
		case e.seen[typ] != 0 && e.idOf(typ) == r.Id:
			ev, gap = Retransmit, time.Duration(now-e.seen[typ])
			return e
		default:
			// The same type again with another ID: a new lookup from the same socket. Reset in
			// place; Answered checks the ID, so the older lookup cannot mark this one answered.
			e.seen = [2]int64{}
			e.ids.Store(0)
			e.answered[0].Store(0)
			e.answered[1].Store(0)
		}
		e.seen[typ] = now
		e.setID(typ, r.Id)
		return e
	})
	if !ok {
		return None, 0, Token{}
	}
	if gap > 0 {
		server := metrics.WithServer(ctx)
		switch ev {
		case Retransmit:
			retransmits.WithLabelValues(server).Inc()
			retransmitGap.WithLabelValues(server).Observe(gap.Seconds())
			if t.Sink != nil {
				t.Sink.Retransmit()
			}
		default:
			siblingGap.WithLabelValues(server).Observe(gap.Seconds())
			if ev == LateSibling {
				lateSiblings.WithLabelValues(server, dns.TypeToString[r.Question[0].Qtype]).Inc()
				if t.Sink != nil {
					t.Sink.LateSibling(time.Unix(0, now).Add(-gap))
				}
			}
		}
	}
	return ev, gap, Token{e: e, t: typ, id: r.Id}
}

// Answered records that the query of tok was answered. The entry may have been reset for a newer
// lookup in the meantime; the ID tells. (The IDs are read atomically; a lookup that reuses its
// socket and ID inside one pair would be taken for its predecessor, as it is for a retransmit.)
func (t *Tracker) Answered(tok Token) {
	if tok.e != nil && tok.e.idOf(tok.t) == tok.id {
		tok.e.answered[tok.t].CompareAndSwap(0, t.now().UnixNano())
	}
}
