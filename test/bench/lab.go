package main

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// nodeLocalCorefile is lab.RaceguardCorefile on a node-local server, which knows each client's
// own list from its pod watch (the lab client is a ClusterFirst pod of it) and completes within it.
var nodeLocalCorefile = strings.Replace(lab.RaceguardCorefile, "node_search", lab.PodWatchOptions+"\n        node_search", 1)

// lookupNames are the rows' names: one outside the cluster, a service in the pod's own namespace,
// and a service in another namespace.
var lookupNames = []struct{ label, name string }{
	{"an external name (example.org)", "example.org"},
	{"a short service name (web)", "web"},
	{"a service in another namespace (api.shop)", "api.shop"},
}

func labRows(bin string) ([]row, error) {
	l, err := lab.New(bin)
	if err != nil {
		return nil, err
	}
	defer l.Close()

	type result struct {
		perLookup map[lab.Libc][]float64 // queries the server saw, per lookupNames entry
		stalled   map[lab.Libc][2]int    // lookups ≥1 s, lookups
		p99       map[lab.Libc]time.Duration
		drops     map[lab.Libc]int
	}
	// measure runs the rows against corefile: on the two DNS servers behind the DNAT, or, for
	// raceguard, on one node-local server that knows the client's list from its pod watch.
	measure := func(corefile string, nodeLocal bool) (result, error) {
		res := result{perLookup: map[lab.Libc][]float64{}, stalled: map[lab.Libc][2]int{}, p99: map[lab.Libc]time.Duration{}, drops: map[lab.Libc]int{}}
		if err := l.SetFault(lab.FaultOff, 0); err != nil {
			return res, err
		}
		rc := lab.DefaultResolvConf()
		if nodeLocal {
			p, err := l.StartNodeDNSFor(corefile, rc)
			if err != nil {
				return res, err
			}
			defer p.Stop()
		} else if err := startBehindDNAT(l, corefile); err != nil {
			return res, err
		}
		for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
			for _, n := range lookupNames {
				const repeat = 3
				before, err := l.Counters()
				if err != nil {
					return res, err
				}
				if _, err := l.Lookup(libc, lab.Unspec, rc, 1, slices.Repeat([]string{n.name}, repeat)...); err != nil {
					return res, err
				}
				after, err := l.Counters()
				if err != nil {
					return res, err
				}
				seen := after.Sub(before)
				res.perLookup[libc] = append(res.perLookup[libc], float64(seen.ServerUDP+seen.LocalUDP)/repeat)
			}
		}
		if err := l.SetFault(lab.FaultSecond, *dropPercent); err != nil {
			return res, err
		}
		for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
			before, err := l.Counters()
			if err != nil {
				return res, err
			}
			rs, err := l.Lookup(libc, lab.Unspec, rc, *workers, slices.Repeat([]string{"example.org"}, *lookups)...)
			if err != nil {
				return res, err
			}
			after, err := l.Counters()
			if err != nil {
				return res, err
			}
			var slow int
			var times []time.Duration
			for _, r := range rs {
				times = append(times, r.Elapsed)
				if r.Elapsed >= time.Second {
					slow++
				}
			}
			slices.Sort(times)
			res.stalled[libc] = [2]int{slow, len(rs)}
			res.p99[libc] = times[len(times)*99/100]
			res.drops[libc] = after.Sub(before).FaultDrops
		}
		return res, l.SetFault(lab.FaultOff, 0)
	}

	stock, err := measure(lab.StockCorefile, false)
	if err != nil {
		return nil, err
	}
	rg, err := measure(nodeLocalCorefile, true)
	if err != nil {
		return nil, err
	}

	// Lookups of names nobody asked before, with a 20 ms upstream: the walk's last two names go
	// upstream, one after the other or at the same time.
	const delay = 20 * time.Millisecond
	cold := func(corefile string, round int, nodeLocal bool) (time.Duration, error) {
		if nodeLocal {
			p, err := l.StartNodeDNSFor(corefile, lab.DefaultResolvConf())
			if err != nil {
				return 0, err
			}
			defer p.Stop()
		} else if err := startBehindDNAT(l, corefile); err != nil {
			return 0, err
		}
		l.Up.SetDelay(delay)
		defer l.Up.SetDelay(0)
		names := make([]string, 40)
		for i := range names {
			names[i] = fmt.Sprintf("r%dn%d.wild.example.com", round, i)
		}
		rs, err := l.Lookup(lab.Glibc, lab.Unspec, lab.DefaultResolvConf(), 4, names...)
		if err != nil {
			return 0, err
		}
		var times []time.Duration
		for _, r := range rs {
			times = append(times, r.Elapsed)
		}
		slices.Sort(times)
		return times[len(times)/2], nil
	}
	coldStock, err := cold(lab.StockCorefile, 1, false)
	if err != nil {
		return nil, err
	}
	coldRG, err := cold(nodeLocalCorefile, 2, true)
	if err != nil {
		return nil, err
	}
	coldSeq, err := cold(strings.Replace(nodeLocalCorefile, "node_search", "parallel_walk off\n        node_search", 1), 3, true)
	if err != nil {
		return nil, err
	}

	// Node-local: raceguard on the node with nodelocal (transparent mode), in front of the same
	// stock kube-dns, under the same drop. The pods' queries skip conntrack, where the emulated
	// race lives.
	nodeLocal := map[lab.Libc][2]int{}
	var podFlows, failed int
	if err := startBehindDNAT(l, lab.StockCorefile); err != nil {
		return nil, err
	}
	p, err := l.StartNodeLocal(lab.NodeLocalWith(""))
	if err != nil {
		return nil, err
	}
	if err := l.WaitNodeLocalRules(15 * time.Second); err != nil {
		p.Stop()
		return nil, err
	}
	if err := l.SetFault(lab.FaultSecond, *dropPercent); err != nil {
		p.Stop()
		return nil, err
	}
	before, err := l.PodDNSFlows()
	if err != nil {
		p.Stop()
		return nil, err
	}
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		rs, err := l.Lookup(libc, lab.Unspec, lab.DefaultResolvConf(), *workers, slices.Repeat([]string{"example.org"}, *lookups)...)
		if err != nil {
			p.Stop()
			return nil, err
		}
		slow := 0
		for _, r := range rs {
			if r.Elapsed >= time.Second {
				slow++
			}
			if r.String() != "192.0.2.10,2001:db8::10" {
				failed++ // a fast failure is no stall, but no answer either
			}
		}
		nodeLocal[libc] = [2]int{slow, len(rs)}
	}
	after, err := l.PodDNSFlows()
	p.StopWithin(15 * time.Second)
	if err != nil {
		return nil, err
	}
	podFlows = len(lab.NewFlows(before, after))
	if err := l.SetFault(lab.FaultOff, 0); err != nil {
		return nil, err
	}

	rows := []row{{
		fmt.Sprintf("glibc lookup of a never-seen external name, %s upstream: median", delay),
		coldStock.Round(100 * time.Microsecond).String(), coldRG.Round(100 * time.Microsecond).String(),
		fmt.Sprintf("%s with parallel_walk off", coldSeq.Round(100*time.Microsecond)),
	}}
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		for i, n := range lookupNames {
			s, r := stock.perLookup[libc][i], rg.perLookup[libc][i]
			rows = append(rows, row{fmt.Sprintf("Queries the server sees per %s lookup of %s", libc, n.label),
				fmt.Sprintf("%.0f", s), fmt.Sprintf("%.0f", r), fmt.Sprintf("%+.0f", r-s)})
		}
	}
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		s, r := stock.stalled[libc], rg.stalled[libc]
		rows = append(rows,
			row{fmt.Sprintf("%s lookups of example.org stalled ≥1 s, %d %% emulated pair drop", libc, *dropPercent),
				fmt.Sprintf("%d / %d (%.1f %%)", s[0], s[1], 100*frac(s[0], s[1])),
				fmt.Sprintf("%d / %d (%.1f %%)", r[0], r[1], 100*frac(r[0], r[1])), ""},
			row{fmt.Sprintf("%s lookup p99 under that drop (packets dropped)", libc),
				fmt.Sprintf("%s (%d)", stock.p99[libc].Round(time.Millisecond), stock.drops[libc]),
				fmt.Sprintf("%s (%d)", rg.p99[libc].Round(time.Millisecond), rg.drops[libc]), ""})
	}
	for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
		s, r := stock.stalled[libc], nodeLocal[libc]
		rows = append(rows, row{fmt.Sprintf("%s lookups of example.org stalled ≥1 s, %d %% emulated pair drop: kube-dns through the DNAT vs node-local raceguard (nodelocal)", libc, *dropPercent),
			fmt.Sprintf("%d / %d (%.1f %%)", s[0], s[1], 100*frac(s[0], s[1])),
			fmt.Sprintf("%d / %d (%.1f %%)", r[0], r[1], 100*frac(r[0], r[1])),
			fmt.Sprintf("%d lookups without example.org's addresses, %d conntrack entries for pod queries to node-local", failed, podFlows)})
	}
	return rows, nil
}

// startBehindDNAT starts the lab's DNS servers on corefile behind the ClusterIP's DNAT, as a
// Deployment serves. A row before may have sent the ClusterIP to a server on the node
// (StartNodeDNS), which is stopped by now: without this, every lookup would wait for its timeouts.
func startBehindDNAT(l *lab.Lab, corefile string) error {
	if err := l.SetBackends(len(lab.DNSIPs)); err != nil {
		return err
	}
	return l.StartDNS(corefile)
}
