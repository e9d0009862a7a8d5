package collapse

import (
	"context"
	"net/netip"
	"sync"
	"time"

	"github.com/coredns/coredns/plugin/metrics"
	"github.com/coredns/coredns/plugin/pkg/nonwriter"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/bounded"
	"github.com/raceguard/raceguard/internal/recovery"
)

// flight is one resolution and the queries waiting for it, as a call of singleflight's Group.
// done is closed once every field but waiters and clients is set; those two are only touched
// under the flight table's shard lock.
type flight struct {
	done chan struct{}

	leader   *dns.Msg // the reply as the chain wrote it, for the leader alone
	shared   *dns.Msg // a copy of it for the waiters; nil when it must not be shared
	rcode    int
	err      error
	panicked bool // the resolution panicked: a retry would too

	waiters int              // queries collapsed into it; guarded by the shard lock
	clients []netip.AddrPort // who, by address and ID, to spot retransmissions; ditto
	ids     []uint16

	retryOnce sync.Once
	retry     *flight // the waiters' one retry after a failure without a reply; set by retryOnce
}

// role is how a query takes part in a flight.
type role int

const (
	roleLeader role = iota
	roleWaiter
	roleRetransmit // a waiter that is a retransmission of a query already in the flight
	roleOverflow   // over a cap: resolve alone
)

// resolution is the work of a flight: it writes the reply to w (a nonwriter) and returns the
// plugin.Handler contract's rcode and error.
type resolution func(ctx context.Context, w dns.ResponseWriter) (int, error)

// group is the table of flights, singleflight's Group: join finds or starts the flight of a key,
// run resolves it once for all who joined.
type group struct {
	flights    *bounded.Map[key, *flight]
	maxWaiters int           // queries waiting on one flight, retransmissions included
	timeout    time.Duration // bound on one resolution
}

// join finds or starts the flight for k and says how the query from, with ID id, takes part in
// it.
func (g *group) join(k key, from netip.AddrPort, id uint16) (*flight, role) {
	mine := &flight{done: make(chan struct{})}
	rl := roleOverflow
	f, ok := g.flights.Update(k, g.timeout+time.Second, func(old *flight, found bool) *flight {
		if !found {
			rl = roleLeader
			mine.clients, mine.ids = append(mine.clients, from), append(mine.ids, id)
			return mine
		}
		if old.waiters >= g.maxWaiters {
			return old // stays roleOverflow
		}
		rl = roleWaiter
		for i := range old.clients {
			if old.clients[i] == from && old.ids[i] == id {
				rl = roleRetransmit
				break
			}
		}
		old.waiters++
		if rl == roleWaiter {
			old.clients, old.ids = append(old.clients, from), append(old.ids, id)
		}
		return old
	})
	if !ok {
		return nil, roleOverflow
	}
	return f, rl
}

// run resolves f in a goroutine of its own, detached from ctx's cancellation and bounded by the
// group's timeout, so that the leader's client going away fails no one. k is f's key in the
// table (f may be a retry flight, which is not in it). A panic in the resolution is recovered
// (package recovery): f fails with it, and every query of f gets SERVFAIL.
func (g *group) run(ctx context.Context, k key, w dns.ResponseWriter, f *flight, resolve resolution) {
	server := metrics.WithServer(ctx)
	inflight.WithLabelValues(server).Inc()
	go func() {
		defer inflight.WithLabelValues(server).Dec()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), g.timeout)
		defer cancel()
		nw := nonwriter.New(w)
		var (
			rcode int
			err   error
		)
		if perr := recovery.Do(rctx, "collapse", func() { rcode, err = resolve(rctx, nw) }); perr != nil {
			nw.Msg, rcode, err, f.panicked = nil, dns.RcodeServerFailure, perr, true
		}
		g.land(k, f, nw.Msg, rcode, err)
	}()
}

// land ends f with the reply m (nil when nothing was written), rcode and err.
func (g *group) land(k key, f *flight, m *dns.Msg, rcode int, err error) {
	// A flight in the table is shared only if a query was collapsed into it; a retry flight, which
	// is not in the table, only has waiters.
	waiters, inTable := 0, false
	g.flights.DeleteIf(k, func(h *flight) bool {
		if h != f {
			return false
		}
		waiters, inTable = f.waiters, true
		return true
	})
	f.leader, f.rcode, f.err = m, rcode, err
	if (waiters > 0 || !inTable) && m != nil && !m.Truncated {
		f.shared = m.Copy()
	}
	close(f.done)
}

// retried returns the one retry flight of f, which failed without a reply, started by the first
// waiter to ask: its waiters try once more together rather than each on its own.
func (g *group) retried(ctx context.Context, k key, w dns.ResponseWriter, f *flight, resolve resolution) *flight {
	f.retryOnce.Do(func() {
		f.retry = &flight{done: make(chan struct{})}
		g.run(ctx, k, w, f.retry, resolve)
	})
	return f.retry
}

// wait waits for f's resolution or ctx, and reports whether the resolution came first.
func (f *flight) wait(ctx context.Context) bool {
	select {
	case <-f.done:
		return true
	case <-ctx.Done():
		return false
	}
}
