package fingerprint

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/slots"
)

// client is the address every query of these tests comes from, each test's lookups from ports
// of their own.
var client = slots.ClientOf(netip.MustParseAddr("10.32.1.2"))

type sink struct {
	losses  []time.Time
	retrans int
}

func (s *sink) LateSibling(loss time.Time) { s.losses = append(s.losses, loss) }
func (s *sink) Retransmit()                { s.retrans++ }

func q(qtype uint16, id uint16) *dns.Msg {
	m := new(dns.Msg).SetQuestion("example.org.", qtype)
	m.Id = id
	return m
}

func TestTracker(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(1000)
	defer tr.Close()
	tr.now = func() int64 { return now.UnixNano() }
	tr.pairs.SetClock(func() time.Time { return now })
	sk := &sink{}
	tr.Sink = sk
	ctx := context.Background()
	const name = "example.org."
	at := func(d time.Duration) { now = time.Unix(1000, 0).Add(d) }

	late := func(typ string) float64 { return testutil.ToFloat64(lateSiblings.WithLabelValues("", typ)) }
	lateBefore := late("AAAA")

	// A parallel pair: AAAA right behind the A, before it is answered. Not late.
	ev, gap, tok := tr.Observe(ctx, client, uint16(1), q(dns.TypeA, 1), name)
	at(time.Millisecond)
	tr.Answered(tok)
	at(200 * time.Microsecond)
	if ev2, gap2, _ := tr.Observe(ctx, client, uint16(1), q(dns.TypeAAAA, 2), name); ev != None || ev2 != None || gap != 0 || gap2 != 200*time.Microsecond {
		t.Errorf("Expected a plain pair, got %v %v, gap %s", ev, ev2, gap2)
	}

	// A pair whose AAAA was lost: glibc asks again 5 s later, long after the A was answered.
	at(10 * time.Second)
	_, _, tok = tr.Observe(ctx, client, uint16(2), q(dns.TypeA, 3), name)
	at(10*time.Second + time.Millisecond)
	tr.Answered(tok)
	at(15 * time.Second)
	ev, gap, _ = tr.Observe(ctx, client, uint16(2), q(dns.TypeAAAA, 4), name)
	if ev != LateSibling || gap != 5*time.Second {
		t.Errorf("Expected a late sibling 5s after its partner, got %v after %s", ev, gap)
	}
	if len(sk.losses) != 1 || !sk.losses[0].Equal(time.Unix(1010, 0)) {
		t.Errorf("Expected the loss at the partner's arrival (t=1010), got %v", sk.losses)
	}
	if got := late("AAAA") - lateBefore; got != 1 {
		t.Errorf("Expected one late AAAA counted, got %v", got)
	}

	// A cache hit: the A answered within the clock's tick leaves no answer time; its arrival
	// stands for it, and the AAAA lost behind it is late all the same.
	at(20 * time.Second)
	_, _, tok = tr.Observe(ctx, client, uint16(7), q(dns.TypeA, 12), name)
	tr.Answered(tok)
	if e, _ := tr.pairs.Slot(tr.pairs.Index(tok.key), tok.key); e.answered[0] != 0 {
		t.Errorf("Expected no answer time written within the tick, got %d", e.answered[0])
	}
	at(25 * time.Second)
	if ev, gap, _ := tr.Observe(ctx, client, uint16(7), q(dns.TypeAAAA, 13), name); ev != LateSibling || gap != 5*time.Second {
		t.Errorf("Expected the AAAA behind a cache hit late after 5s, got %v after %s", ev, gap)
	}
	// Its sibling right behind it is not late.
	_, _, tok = tr.Observe(ctx, client, uint16(8), q(dns.TypeA, 14), name)
	tr.Answered(tok)
	at(25*time.Second + 2*time.Millisecond)
	if ev, _, _ := tr.Observe(ctx, client, uint16(8), q(dns.TypeAAAA, 15), name); ev != None {
		t.Errorf("Expected a sibling 2ms behind a cache hit not late, got %v", ev)
	}

	// A sequential client behind a slow upstream: the AAAA comes 600 ms after the A, but right
	// after the A's answer. Not late.
	at(30 * time.Second)
	_, _, tok = tr.Observe(ctx, client, uint16(3), q(dns.TypeA, 5), name)
	at(30*time.Second + 600*time.Millisecond)
	tr.Answered(tok)
	at(30*time.Second + 601*time.Millisecond)
	if ev, _, _ := tr.Observe(ctx, client, uint16(3), q(dns.TypeAAAA, 6), name); ev != None {
		t.Errorf("Expected a sequential sibling not counted late, got %v", ev)
	}

	// A retransmission: the same type and ID again.
	at(40 * time.Second)
	tr.Observe(ctx, client, uint16(4), q(dns.TypeA, 7), name)
	at(42500 * time.Millisecond)
	if ev, gap, _ := tr.Observe(ctx, client, uint16(4), q(dns.TypeA, 7), name); ev != Retransmit || gap != 2500*time.Millisecond || sk.retrans != 1 {
		t.Errorf("Expected a retransmission after 2.5s, got %v after %s (sink %d)", ev, gap, sk.retrans)
	}
	// The same type with another ID: a new lookup, not a retransmission.
	if ev, _, _ := tr.Observe(ctx, client, uint16(4), q(dns.TypeA, 8), name); ev != None {
		t.Errorf("Expected a new lookup, got %v", ev)
	}

	// Another client's AAAA is not this client's sibling.
	at(50 * time.Second)
	_, _, tok = tr.Observe(ctx, client, uint16(5), q(dns.TypeA, 9), name)
	tr.Answered(tok)
	at(55 * time.Second)
	if ev, _, _ := tr.Observe(ctx, client, uint16(6), q(dns.TypeAAAA, 10), name); ev != None {
		t.Errorf("Expected no sibling across clients, got %v", ev)
	}

	// Past the window an entry is gone: a very late AAAA starts a new pair.
	at(80 * time.Second)
	if ev, _, _ := tr.Observe(ctx, client, uint16(5), q(dns.TypeAAAA, 11), name); ev != None {
		t.Errorf("Expected an entry past the window forgotten, got %v", ev)
	}
}

// TestTrackerRetransmittedPartner: glibc resends the A with its ID along with the lost AAAA. The
// retransmission's answer, 5 s on, must not stand for the A's own answer (unwritten within its
// tick), or the AAAA right behind it would not be late.
func TestTrackerRetransmittedPartner(t *testing.T) {
	now := time.Unix(1000, 0)
	tr := New(1000)
	defer tr.Close()
	tr.now = func() int64 { return now.UnixNano() }
	ctx := context.Background()
	const name = "example.org."

	_, _, tok := tr.Observe(ctx, client, uint16(1), q(dns.TypeA, 1), name)
	tr.Answered(tok)
	now = now.Add(5 * time.Second)
	ev, _, tok := tr.Observe(ctx, client, uint16(1), q(dns.TypeA, 1), name)
	if ev != Retransmit {
		t.Fatalf("Expected the A again with its ID a retransmission, got %v", ev)
	}
	now = now.Add(10 * time.Millisecond)
	tr.Answered(tok)
	if ev, gap, _ := tr.Observe(ctx, client, uint16(1), q(dns.TypeAAAA, 2), name); ev != LateSibling || gap != 5010*time.Millisecond {
		t.Errorf("Expected the AAAA after a retransmitted A late, 5.01s after the A, got %v after %s", ev, gap)
	}
}

func TestTrackerCapped(t *testing.T) {
	tr := New(64)
	defer tr.Close()
	before := testutil.ToFloat64(bounded.Overflows("fingerprints"))
	for i := range 5000 {
		tr.Observe(context.Background(), client, uint16(i), q(dns.TypeA, uint16(i)), "example.org.")
	}
	if n, c := tr.pairs.Live(), tr.pairs.Cap(); n > c || c != 128 {
		t.Errorf("Expected at most 128 pairs (twice the capacity), got %d of %d", n, c)
	}
	if got := testutil.ToFloat64(bounded.Overflows("fingerprints")) - before; got < 5000-128 {
		t.Errorf("Expected the pairs taken over counted, got %v", got)
	}
}

func TestObserveAllocatesNothing(t *testing.T) {
	tr := New(1000)
	defer tr.Close()
	ctx := context.Background()
	qa, qaaaa := q(dns.TypeA, 1), q(dns.TypeAAAA, 2)
	if n := testing.AllocsPerRun(1000, func() {
		_, _, tok := tr.Observe(ctx, client, 1, qa, "example.org.")
		tr.Answered(tok)
		_, _, tok = tr.Observe(ctx, client, 1, qaaaa, "example.org.")
		tr.Answered(tok)
	}); n != 0 {
		t.Errorf("Expected no allocation, got %v", n)
	}
}
