package fingerprint

import (
	"context"
	"hash/maphash"
	"time"

	"github.com/coredns/coredns/plugin/metrics"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/coarse"
	"github.com/raceguard/raceguard/internal/query"
	"github.com/raceguard/raceguard/internal/slots"
)

// Defaults for New.
const (
	DefaultCapacity  = 50000
	DefaultLateAfter = 250 * time.Millisecond
	DefaultWindow    = 15 * time.Second
)

// seed hashes a name into the table's key, once per query, with the client's hash and port: a
// string key would be hashed twice (shard and map), at a cost that shows on a path every query
// takes.
var seed = maphash.MakeSeed()

// portMul spreads a port over the key's bits before it meets the client's hash (the golden
// ratio's odd 64-bit multiplier).
const portMul = 0x9e3779b97f4a7c15

func keyOf(client slots.Client, port uint16, name string) uint64 {
	return slots.Mix(maphash.String(seed, name) ^ uint64(client) ^ uint64(port)*portMul)
}

// entry is one lookup's pair, in the slot its client, port and name hash to. Every field is
// read and written under the slot's lock (slots.Table.Update and ViewAt): plain fields, so the
// path every query takes stores no atomic but the lock's own.
type entry struct {
	seen     [2]int64  // arrival of A and AAAA, unix nanoseconds; 0: not yet
	answered [2]int64  // when A and AAAA were answered, unix nanoseconds; 0: not yet
	ids      [2]uint16 // the ID each type arrived with
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

	pairs *slots.Table[entry]
	now   func() int64 // unix nanoseconds
	gaps  gapMetrics
}

// New returns a Tracker for about capacity pairs at once: its table has twice as many slots, so
// that a new pair rarely lands on a live one. It reads the coarse clock (5 ms) until Close: the
// gaps it looks for are hundreds of milliseconds.
func New(capacity int) *Tracker {
	coarse.Acquire()
	t := &Tracker{
		LateAfter: DefaultLateAfter,
		Window:    DefaultWindow,
		pairs:     slots.New[entry]("fingerprints", 2*capacity),
		now:       coarse.Nanos,
	}
	t.pairs.SetClock(coarse.Now)
	return t
}

// Close releases the table and the clock.
func (t *Tracker) Close() {
	t.pairs.Close()
	coarse.Release()
}

// Token is handed back to Answered once the query is answered.
// It is small on purpose: the handler holds it while the rest of the chain runs below.
type Token struct {
	key uint64 // its slot is the table's Index of it
	at  int64  // the query's arrival, unix nanoseconds (coarse)
	id  uint16
	t   uint8
	ok  bool
}

// Tracked reports whether tok is one Observe returned, not the zero Token.
func (tok Token) Tracked() bool { return tok.ok }

// Observe records an A or AAAA query for name (lower-cased) from client (slots.ClientOf its
// address) and port, counts what it showed, and returns it with the gap to its partner's or first
// try's arrival, and a token for Answered.
func (t *Tracker) Observe(ctx context.Context, client slots.Client, port uint16, r *dns.Msg, name string) (Event, time.Duration, Token) {
	typ := query.PairIndex(r.Question[0].Qtype)
	now := t.now()
	key := keyOf(client, port, name)
	ev, gap := None, time.Duration(0)
	t.pairs.Update(key, now, int64(t.Window), func(e *entry, fresh bool) {
		switch {
		case fresh:
			*e = entry{}
		case e.seen[typ] == 0 && e.seen[1-typ] != 0:
			// The sibling: late if it comes long after its partner was answered. A partner
			// answered within the clock's tick (a cache hit) has no answer time of its own: its
			// arrival stands for it. (So does a partner not answered yet: a parallel client's
			// sibling that comes long after it was resent, its first copy lost.)
			gap = time.Duration(now - e.seen[1-typ])
			ans := e.answered[1-typ]
			if ans == 0 {
				ans = e.seen[1-typ]
			}
			if time.Duration(now-ans) >= t.LateAfter {
				ev = LateSibling
			}
		case e.seen[typ] != 0 && e.ids[typ] == r.Id:
			ev, gap = Retransmit, time.Duration(now-e.seen[typ])
			return
		default:
			// The same type again with another ID: a new lookup from the same socket. Reset in
			// place; Answered checks the ID, so the older lookup cannot mark this one answered.
			*e = entry{}
		}
		e.seen[typ] = now
		e.ids[typ] = r.Id
	})
	if gap > 0 {
		t.count(ctx, ev, gap, r.Question[0].Qtype, now)
	}
	return ev, gap, Token{key: key, at: now, id: r.Id, t: uint8(typ), ok: true}
}

// count exports what a query showed, with the gap to its partner's or first try's arrival.
func (t *Tracker) count(ctx context.Context, ev Event, gap time.Duration, qtype uint16, now int64) {
	g := t.gaps.of(metrics.WithServer(ctx))
	switch ev {
	case Retransmit:
		g.retransmits.Inc()
		g.retransmitGap.Observe(gap.Seconds())
		if t.Sink != nil {
			t.Sink.Retransmit()
		}
	default:
		g.siblingGap.Observe(gap.Seconds())
		if ev == LateSibling {
			lateSiblings.WithLabelValues(g.server, dns.TypeToString[qtype]).Inc()
			if t.Sink != nil {
				t.Sink.LateSibling(time.Unix(0, now).Add(-gap))
			}
		}
	}
}

// Answered records that the query of tok was answered. An answer within the clock's tick of the
// query's arrival (every cache hit) leaves the table alone: Observe takes the arrival for it. The
// slot may have been taken over, or reset for a newer lookup from the same socket, in the
// meantime; the key, the ID and the arrival tell. (A lookup that reuses its socket and ID inside
// one pair would be taken for its predecessor, as it is for a retransmit.)
func (t *Tracker) Answered(tok Token) {
	if !tok.ok {
		return
	}
	now := t.now()
	if now == tok.at {
		return
	}
	t.pairs.ViewAt(t.pairs.Index(tok.key), tok.key, now, func(e *entry) {
		// Only the query that set the arrival answers for it: a retransmission's answer, seconds
		// later, would stand for a first answer that went unwritten within its tick.
		if e.ids[tok.t] == tok.id && e.seen[tok.t] == tok.at && e.answered[tok.t] == 0 {
			e.answered[tok.t] = now
		}
	})
}
