package e2e

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/hostile"
	"github.com/raceguard/raceguard/test/testenv"
)

// The walk budget the README states: RATE walks a second per client, BURST at once, and a walk
// that completes nothing (every name NXDOMAIN: what a flood of random names looks like) costs
// fruitlessCost tokens.
const (
	budgetRate    = 50
	budgetBurst   = 500
	fruitlessCost = 5
)

// TestAmplification: what one client's packets cost upstream, raceguard against stock, in the
// node-local layout (raceguard, cache, collapse, forward; the cluster zone is upstream too). A
// client over its walk budget costs stock's queries plus a constant rate: at most
// (BURST + RATE·T)/5 + 1 walks in T seconds, each at most one query per name of its list beyond
// the first try and per type it asks, plus one to check the namespace.
func TestAmplification(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	run := func(l hostile.Layout, f hostile.Flood) hostile.Amplified {
		t.Helper()
		a, err := hostile.Amplification(bin, t.TempDir(), l, f)
		if err != nil {
			t.Fatal(err)
		}
		if a.Flood.Mismatch > 0 || a.Flood.Unanswered() > 0 {
			t.Errorf("%+v: Expected every query answered, each with its own ID and question, got %d unanswered and %d mismatched of %d",
				l, a.Flood.Unanswered(), a.Flood.Mismatch, a.Flood.Sent)
		}
		return a
	}
	// The walks of the pod list default.svc.cluster.local, svc.cluster.local, cluster.local,
	// lab.internal and the name itself: four names beyond the first try, A alone.
	const perWalk = 4 + 1
	salt := rand.Uint32()
	for _, c := range []struct {
		name    string
		format  string
		perWalk int // upstream queries a walk adds; 0: no walks
	}{
		{"random first tries", "r%d-%d.example.com.default.svc.cluster.local.", perWalk},
		{"random namespaces", "x.y.r%d-%d.svc.cluster.local.", perWalk},
		{"single A queries", "a%d-%d.wild.example.com.", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			// 250 a second: the upstream runs in this process, under the race detector too.
			f := hostile.Flood{Clients: 1, Rate: 250, N: 1500, Type: dns.TypeA, Wait: 5 * time.Second,
				Name: func(i int) string { return fmt.Sprintf(c.format, salt, i) }}
			stock := run(hostile.Layout{}, f)
			salt++
			rg := run(hostile.Layout{Raceguard: true}, f)
			salt++
			walks := (budgetBurst+budgetRate*(rg.Flood.Elapsed.Seconds()+1))/fruitlessCost + 1
			bound := stock.Upstream + int(walks)*c.perWalk
			t.Logf("%s: stock %d upstream queries (%.2f a packet), raceguard %d (%.2f), at most %d", c.name,
				stock.Upstream, stock.PerPacket(), rg.Upstream, rg.PerPacket(), bound)
			if rg.Upstream > bound {
				t.Errorf("Expected at most %d upstream queries (stock's %d and %.0f walks of %d), got %d",
					bound, stock.Upstream, walks, c.perWalk, rg.Upstream)
			}
		})
	}
}

// TestStalledUpstream: unique first tries at 2000 a second while the upstream answers nothing,
// the cluster zone served in the block. Each walk's names beyond the cluster zone wait for
// forward's timeout, so walks pile up to max_walks and no further: the rest are served as stock
// serves them. raceguard must answer what stock answers as fast, hold at most walkGoroutines per
// walk beyond stock's goroutines, about 50 MiB more memory, and serve the cluster zone's own
// names as fast. (make bench runs the same for 60 s; the README has its figures.)
func TestStalledUpstream(t *testing.T) {
	bin, err := testenv.CoreDNSBinary()
	if err != nil {
		t.Fatal(err)
	}
	const (
		maxWalks       = 128 // the default
		walkGoroutines = 8   // a walk, its names' tries and collapse's flights for them
		d              = 10 * time.Second
	)
	stall := func(l hostile.Layout) hostile.Stalled {
		t.Helper()
		st, err := hostile.Stall(bin, t.TempDir(), l, d, 2000)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s: CPU %s; goroutines %d, peak %d; RSS %d MiB, peak %d MiB (heap %.0f MiB, stacks %.1f MiB); %d of %d answered within 5 s, p99 %s; %s p99 %s, max %s; walks %v, declined %v",
			l.Name(), st.CPU, st.BaseGoroutines, st.PeakGoroutines, st.BaseRSS>>20, st.PeakRSS>>20, st.PeakHeap/(1<<20), st.PeakStacks/(1<<20), st.Flood.Answered, st.Flood.Sent,
			st.Flood.Quantile(0.99), hostile.OwnName, st.Own.Quantile(0.99), st.Own.Quantile(1), st.Walks, st.Declined)
		return st
	}
	stock := stall(hostile.Layout{})
	for _, l := range []hostile.Layout{
		{Raceguard: true, Options: "node_local on"},
		{Raceguard: true, Options: "node_local on\nwalk_budget 0"}, // the cap alone
	} {
		rg := stall(l)
		if rg.Walks == 0 {
			t.Errorf("%s: Expected walks", l.Name())
		}
		if lost, slack := rg.Flood.Unanswered(), stock.Flood.Unanswered()+rg.Flood.Sent/200; lost > slack {
			t.Errorf("%s: Expected at most %d queries unanswered within 5 s (stock's and 0.5 %%), got %d", l.Name(), slack, lost)
		}
		if limit := stock.PeakGoroutines + maxWalks*walkGoroutines; rg.PeakGoroutines > limit {
			t.Errorf("%s: Expected at most %d goroutines (stock's peak and %d a walk), got %d", l.Name(), limit, walkGoroutines, rg.PeakGoroutines)
		}
		// The target is 50 MiB, which raceguard meets at the edge (47 to 52 MiB on the 2-core
		// machine: 12 MiB of it its fixed tables, most of the rest garbage between collections):
		// the check leaves room for a noisy machine.
		if limit := stock.PeakRSS + 60<<20; rg.PeakRSS > limit {
			t.Errorf("%s: Expected a peak RSS within stock's and 60 MiB (%d MiB), got %d MiB", l.Name(), limit>>20, rg.PeakRSS>>20)
		}
		// The target is stock's p99 and 10 ms, and make bench measures it (3.1 ms against
		// stock's 5.9 in the README's run). Here, under the race detector with 700 goroutines on
		// a noisy machine, a p99 of 500 answers moved to 47-58 ms once while stock's was 2.4 (the
		// whole flood's p99 with it): the check catches what it is for, the server's own names
		// queued behind walks that wait for forward's timeout (seconds), not that noise.
		if limit := stock.Own.Quantile(0.99) + 100*time.Millisecond; rg.Own.Quantile(0.99) > limit {
			t.Errorf("%s: Expected %s at p99 within stock's and 100 ms (%s), got %s", l.Name(), hostile.OwnName, limit, rg.Own.Quantile(0.99))
		}
		if rg.Own.Unanswered() > stock.Own.Unanswered() {
			t.Errorf("%s: Expected %s answered as often as by stock (%d unanswered), got %d unanswered", l.Name(), hostile.OwnName, stock.Own.Unanswered(), rg.Own.Unanswered())
		}
	}
}
