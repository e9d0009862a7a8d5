package main

import (
	"fmt"
	"time"

	"github.com/raceguard/raceguard/test/lab"
)

// The per-lookup amplification rows run the node-local layout of issue 13: everything, the
// cluster zone too, goes upstream, to kube-dns and beyond, which kubeUpstream stands for and where
// each query is counted.
const kubeUpstream = lab.UpstreamIP + ":5354"

const (
	forwardStock = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    cache 30
    forward . ` + kubeUpstream + `
}
`
	forwardRaceguard = `.:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    raceguard {
        node_search ` + lab.NodeDomain + `
        ` + lab.PodWatchOptions + `
        conntrack off
    }
    cache 30
    collapse
    forward . ` + kubeUpstream + `
}
`
)

// familyLookups is how many lookups of new names each cell averages over.
const familyLookups = 5

// upstreamPerLookup runs familyLookups lookups of new names made from format with libc and fam,
// and returns the upstream queries per lookup.
func upstreamPerLookup(l *lab.Lab, up *lab.Upstream, libc lab.Libc, fam lab.Family, format string, round *int) (float64, error) {
	names := make([]string, familyLookups)
	for i := range names {
		*round++
		names[i] = fmt.Sprintf(format, *round)
	}
	before := up.Total()
	if _, err := l.Lookup(libc, fam, lab.DefaultResolvConf(), 1, names...); err != nil {
		return 0, err
	}
	time.Sleep(100 * time.Millisecond) // a walk's last tries may outlive the lookup
	return float64(up.Total()-before) / familyLookups, nil
}

// familyCell is one cell: upstream queries per lookup of a name that exists nowhere, and of one
// that exists as asked (under a wildcard).
type familyCell [2]float64

func (c familyCell) String() string { return fmt.Sprintf("%.1f / %.1f", c[0], c[1]) }

// familyRows measures upstream queries per lookup, per C library and address family, stock
// against raceguard on a node-local server that learned the client's list from one lookup in that
// family: a client that asks one type alone is walked for it alone from its first lookup on.
func familyRows(bin string) ([]row, error) {
	l, err := lab.New(bin)
	if err != nil {
		return nil, err
	}
	defer l.Close()
	up, err := lab.StartKubeUpstream(l.Upstream, kubeUpstream)
	if err != nil {
		return nil, err
	}
	defer up.Close()
	type key struct {
		libc lab.Libc
		fam  lab.Family
	}
	measure := func(corefile string, round *int) (map[key]familyCell, error) {
		cells := map[key]familyCell{}
		for _, fam := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
			var p *lab.Process
			var err error
			if corefile == forwardRaceguard {
				p, err = l.StartNodeDNSFor(corefile, lab.DefaultResolvConf())
			} else {
				p, err = l.StartNodeDNS(corefile)
			}
			if err != nil {
				return nil, err
			}
			// A first lookup in this family, left out of the measure: the server's first sight of
			// the client, which says which address types it asks.
			if _, err := l.Lookup(lab.Glibc, fam, lab.DefaultResolvConf(), 1, fmt.Sprintf("learn%d.nosuch.example", *round)); err != nil {
				p.Stop()
				return nil, err
			}
			for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
				var c familyCell
				for i, format := range []string{"f%d.example.com", "f%d.wild.example.com"} {
					if c[i], err = upstreamPerLookup(l, up, libc, fam, format, round); err != nil {
						p.Stop()
						return nil, err
					}
				}
				cells[key{libc, fam}] = c
			}
			p.Stop()
		}
		return cells, nil
	}
	round := 0
	stock, err := measure(forwardStock, &round)
	if err != nil {
		return nil, err
	}
	rg, err := measure(forwardRaceguard, &round)
	if err != nil {
		return nil, err
	}
	diff := func(s, r familyCell) string { return fmt.Sprintf("%+.1f / %+.1f", r[0]-s[0], r[1]-s[1]) }
	var rows []row
	for _, fam := range []lab.Family{lab.Unspec, lab.Inet, lab.Inet6} {
		for _, libc := range []lab.Libc{lab.Glibc, lab.Musl} {
			k := key{libc, fam}
			what := fmt.Sprintf("Upstream queries per %s %s lookup of a new name, nowhere / under a wildcard (node-local layout)", libc, fam)
			rows = append(rows, row{what, stock[k].String(), rg[k].String(), diff(stock[k], rg[k])})
		}
	}
	return rows, nil
}
