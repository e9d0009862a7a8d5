package main

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/test/hostile"
)

// hostileRows measures what hostile and heavy traffic costs, stock against raceguard, in the
// node-local layout (package test/hostile): upstream queries per client packet of floods from one
// client, and a flood of unique first tries while the upstream drops everything.
func hostileRows(bin, dir string) ([]row, error) {
	var rows []row
	salt := rand.Uint32()
	for _, c := range []struct{ label, format string }{
		{"random first tries (r<N>.example.com.default.svc.cluster.local A)", "r%d-%d.example.com.default.svc.cluster.local."},
		{"random namespaces (x.y.r<N>.svc.cluster.local A)", "x.y.r%d-%d.svc.cluster.local."},
		{"single A queries of new names (a<N>.wild.example.com A)", "a%d-%d.wild.example.com."},
	} {
		var got [2]hostile.Amplified
		for i, l := range []hostile.Layout{{}, {Raceguard: true}} {
			f := hostile.Flood{Clients: 1, Rate: 500, N: 3000, Type: dns.TypeA, Wait: 2 * time.Second,
				Name: func(i int) string { return fmt.Sprintf(c.format, salt, i) }}
			salt++
			a, err := hostile.Amplification(bin, dir, l, f)
			if err != nil {
				return nil, err
			}
			got[i] = a
		}
		rows = append(rows, row{"Upstream queries per client packet, 3000 " + c.label + " at 500/s from one client",
			fmt.Sprintf("%.2f (%d)", got[0].PerPacket(), got[0].Upstream), fmt.Sprintf("%.2f (%d)", got[1].PerPacket(), got[1].Upstream),
			fmt.Sprintf("%+.2f a packet", got[1].PerPacket()-got[0].PerPacket())})
	}

	const rate = 2000
	var st [2]hostile.Stalled
	for i, l := range []hostile.Layout{{}, {Raceguard: true, Options: "node_local on"}} {
		s, err := hostile.Stall(bin, dir, l, *stallFor, rate)
		if err != nil {
			return nil, err
		}
		st[i] = s
	}
	what := fmt.Sprintf("Upstream down, %d unique first tries a second for %s (64 clients)", rate, *stallFor)
	rows = append(rows,
		row{what + ": peak goroutines (before)", fmt.Sprintf("%d (%d)", st[0].PeakGoroutines, st[0].BaseGoroutines),
			fmt.Sprintf("%d (%d)", st[1].PeakGoroutines, st[1].BaseGoroutines), fmt.Sprintf("%+d", st[1].PeakGoroutines-st[0].PeakGoroutines)},
		row{what + ": peak RSS (before)", fmt.Sprintf("%d MiB (%d)", st[0].PeakRSS>>20, st[0].BaseRSS>>20),
			fmt.Sprintf("%d MiB (%d)", st[1].PeakRSS>>20, st[1].BaseRSS>>20), fmt.Sprintf("%+d MiB", (st[1].PeakRSS-st[0].PeakRSS)>>20)},
		row{what + ": queries unanswered within 5 s; p99 of the answers", fmt.Sprintf("%d / %d; %s", st[0].Flood.Unanswered(), st[0].Flood.Sent, st[0].Flood.Quantile(0.99).Round(time.Microsecond)),
			fmt.Sprintf("%d / %d; %s", st[1].Flood.Unanswered(), st[1].Flood.Sent, st[1].Flood.Quantile(0.99).Round(time.Microsecond)), ""},
		row{what + ": " + hostile.OwnName + " (the server's own) asked 50/s alongside: p99 / max", fmt.Sprintf("%s / %s", st[0].Own.Quantile(0.99).Round(time.Microsecond), st[0].Own.Quantile(1).Round(time.Microsecond)),
			fmt.Sprintf("%s / %s", st[1].Own.Quantile(0.99).Round(time.Microsecond), st[1].Own.Quantile(1).Round(time.Microsecond)),
			fmt.Sprintf("walks %.0f, declined busy %.0f, budget %.0f", st[1].Walks, st[1].Declined["busy"], st[1].Declined["budget"])},
	)
	return rows, nil
}
