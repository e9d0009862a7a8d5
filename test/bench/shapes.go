package main

import (
	"fmt"
	"strings"

	"github.com/raceguard/raceguard/test/lab"
)

// The pod watch of raceguard's columns reads a fake Kubernetes API (test/kubeapi) that holds
// the client, dnsperf on 127.0.0.1, as a ClusterFirst pod of namespace default on benchNode; the
// node's search domain is given rather than read from this machine's resolv.conf.
const benchNode = "node-1"

// clusterRaceguard is deploy/cluster's raceguard stanza, with the fake API's kubeconfig.
const clusterRaceguard = `search pods
        kubeconfig {{.Kubeconfig}}
        node_search ` + lab.NodeDomain + `
        conntrack off`

// A shape is a Corefile users run, in two columns: stock, and the same with raceguard's
// directives added. Each forwards to the lab's upstream, which serves cluster.local too (the
// kubernetes plugin needs an API server; the cache hits it would serve are cache hits all the
// same). The templates take lab.CorefileData, and {{.Health}} and {{.Ready}} in place of the
// addresses a Kubernetes Corefile leaves to the defaults, which two servers on one machine
// cannot share.
type shape struct {
	name             string
	stock, raceguard string
}

// shapes are the Corefiles of the single-server rows:
//
//   - minimal: cache and forward (and prometheus, to read the server's state).
//   - default: CoreDNS's own Kubernetes Corefile (coredns/deployment, kubernetes/coredns.yaml.sed,
//     the one kubeadm installs) without the kubernetes plugin; raceguard's column adds the
//     directives as deploy/cluster does (raceguard with search pods and conntrack off, and
//     collapse). The minimal shape's raceguard is the same.
//   - node-local: deploy/node-local's Corefile without nodelocal, which would change this
//     machine's addresses and firewall; raceguard's node_local option makes the server
//     node-local as nodelocal would (its pod watch is of its node's pods).
var shapes = []shape{
	{"minimal", minimalShape, withRaceguard(minimalShape, clusterRaceguard)},
	{"default", defaultShape, withRaceguard(defaultShape, clusterRaceguard)},
	{"node-local", nodeLocalShape, withRaceguard(nodeLocalShape, nodeLocalRaceguard)},
}

const (
	minimalShape = `.:{{.Port}} {
    prometheus {{.Metrics}}
    cache 30
    forward . {{.Upstream}}
}
`
	defaultShape = `.:{{.Port}} {
    errors
    health {{.Health}} {
        lameduck 5s
    }
    ready {{.Ready}}
    prometheus {{.Metrics}}
    forward . {{.Upstream}} {
        max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`
	nodeLocalShape = `.:{{.Port}} {
    errors
    health {{.Health}} {
        lameduck 10s
    }
    ready {{.Ready}}
    prometheus {{.Metrics}}
    reload
    cache {
        success 9984 30
        denial 9984 5
    }
    forward . {{.Upstream}}
}
`
	// nodeLocalRaceguard is deploy/node-local's raceguard stanza, with the fake API's kubeconfig
	// and the node's name, and node_local on in place of nodelocal.
	nodeLocalRaceguard = `search pods
        kubeconfig {{.Kubeconfig}}
        node ` + benchNode + `
        cluster_domain cluster.local
        node_search ` + lab.NodeDomain + `
        conntrack netlink
        node_local on`
)

// withRaceguard adds raceguard's directives to the stock Corefile as deploy/ does: raceguard
// with the options stanza, and collapse after cache (the order in the file is plugin.cfg's
// anyway).
func withRaceguard(stock, stanza string) string {
	lines := strings.SplitAfter(stock, "\n")
	var b strings.Builder
	inCache := false
	for _, l := range lines {
		if strings.HasPrefix(l, "    cache") {
			b.WriteString("    raceguard {\n        " + stanza + "\n    }\n")
			inCache = strings.HasSuffix(l, "{\n")
			b.WriteString(l)
			if !inCache {
				b.WriteString("    collapse\n")
			}
			continue
		}
		b.WriteString(l)
		if inCache && l == "    }\n" {
			b.WriteString("    collapse\n")
			inCache = false
		}
	}
	return b.String()
}

// withMechanism is a stock Corefile that also runs raceguard's process-wide mechanism
// (internal/stackstart) and nothing else of it: a raceguard without search completion, in a
// server block of a zone no query asks for, so the chain of the block that answers is stock's.
func withMechanism(stock string) string {
	return stock + `unused.invalid.:{{.Port}} {
    raceguard {
        search off
        conntrack off
    }
}
`
}

// shapeHitNames is how many queries the single-server rows ask, each a cache hit after the first.
const shapeHitNames = 4000

// shapeHitQueries are cache hits of both kinds: the cluster's services and names of the
// internet, most of them under the upstream's wildcard, each asked as A and AAAA as glibc and musl
// ask (a wildcard name has no AAAA: NODATA, cached as a denial), as many as a busy cluster asks.
// Names asked only as A by a client that asks both types elsewhere would make raceguard prefetch
// an AAAA nobody asks at each expiry (sibling_prefetch): twice stock's upstream queries.
func shapeHitQueries() []string {
	qs := slicesOf(cacheHitQueries, func(q string) bool { return !strings.HasPrefix(q, "_") })
	for i := 0; len(qs) < shapeHitNames; i++ {
		qs = append(qs, fmt.Sprintf("h%d.wild.example.com A", i), fmt.Sprintf("h%d.wild.example.com AAAA", i))
	}
	return qs
}

// slicesOf returns the elements of s that keep accepts.
func slicesOf(s []string, keep func(string) bool) []string {
	var out []string
	for _, v := range s {
		if keep(v) {
			out = append(out, v)
		}
	}
	return out
}
