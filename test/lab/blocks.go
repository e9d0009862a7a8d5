package lab

import "strings"

// Blocks is a Corefile of one server block per zone, as NodeLocal DNSCache's own, with the
// policies a search walk must not cross (issue 11):
//
//   - cluster.local: raceguard, cache, collapse and the cluster zone, then a forward to the
//     upstream that none of the block's own names reaches; a walk that sent its tries down this
//     block's chain would resolve every external name there, past the policies below.
//   - in-addr.arpa, and corp.test: per-zone forwards; corp.test goes to the company's own servers
//     (Stub, e.g. StartStub on CorpZone), which answer other addresses than the internet.
//   - two "." blocks split by a view on name(): names under example.net. get a hosts table first
//     (v4only.example.net is 10.9.0.4 inside, 198.51.100.4 on the internet); every other name of
//     two labels or more goes to the internet block, with an acl that refuses example.org and its
//     subdomains to everyone and example.com to the client Blocked, and a rewrite of
//     alias.example.com to many.example.com. A one-label name (nosuch.) is served by no block:
//     the server refuses it.
//
// With Root, raceguard sits in the internet block instead, which then serves cluster.local too:
// a node-local raceguard learns a client's search list from the tries it sees, and in its own
// block only, so only there does it see the tries beyond the cluster domains.
type Blocks struct {
	Raceguard string // raceguard's options; "" for stock: no raceguard and no collapse
	Root      bool   // raceguard and the cluster zone in the internet block
	Stub      string // host:port of corp.test's own servers
	Blocked   string // a client address or CIDR that may not look up names under example.com
}

// Corefile returns the Corefile, a text/template over CorefileData.
func (b Blocks) Corefile() string {
	rg, cluster, rootZone := "", "", ""
	if b.Raceguard != "" {
		rg = "\n    raceguard {\n        " + strings.ReplaceAll(strings.TrimSpace(b.Raceguard), "\n", "\n        ") + "\n    }\n    collapse"
	}
	if !b.Root {
		cluster = `cluster.local:{{.Port}} {
    errors
    prometheus {{.Metrics}}` + rg + `
    cache 30
    file {{.ClusterZone}} cluster.local
    forward . {{.Upstream}}
}
`
		rg = ""
	} else {
		rootZone = "\n    file {{.ClusterZone}} cluster.local"
	}
	return cluster + `in-addr.arpa:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    cache 30
    forward . {{.Upstream}}
}
corp.test:{{.Port}} {
    errors
    prometheus {{.Metrics}}
    cache 30
    forward . ` + b.Stub + `
}
.:{{.Port}} {
    view corp {
        expr name() endsWith '.example.net.'
    }
    errors
    prometheus {{.Metrics}}
    hosts {
        10.9.0.4 v4only.example.net
        fallthrough
    }
    forward . {{.Upstream}}
}
.:{{.Port}} {
    view internet {
        expr name() matches '^[^.]+[.][^.]'
    }
    errors
    prometheus {{.Metrics}}` + rg + `
    acl example.org {
        block
    }
    acl example.com {
        block net ` + b.Blocked + `
    }
    rewrite name exact alias.example.com. many.example.com. answer auto
    cache 30` + rootZone + `
    forward . {{.Upstream}}
}
`
}
