/*
Package raceguard implements the raceguard directive of the raceguard CoreDNS plugin module, which
ends the Kubernetes "5 second DNS lookup".

raceguard sits in the chain just before rewrite, so it sees each client's own question before
acl and cache do, and everything it asks on a client's behalf goes where the client's own query
would (package dispatch). On every A and AAAA query in its zones it records the query's
fingerprint (internal/fingerprint: late siblings and retransmissions, tied to the node's conntrack
counters by internal/correlate) and which types its client asks (internal/family); then the search
Walker (internal/searchpath) answers it if it can: a later try of a walk the client continues, a
completion decided moments before, or the first try of a search walk, completed on the server.
Everything else goes down the chain untouched. The collapse directive (plugin/collapse) calls
PrefetchSibling for each miss it resolves (internal/sibling).

The files: raceguard.go holds the type, its options and its lifecycle; setup.go the Corefile
parsing and the wiring into the server block; handler.go ServeDNS.
*/
package raceguard

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/request"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/coarse"
	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/dispatch"
	"github.com/raceguard/raceguard/internal/family"
	"github.com/raceguard/raceguard/internal/fingerprint"
	"github.com/raceguard/raceguard/internal/module"
	"github.com/raceguard/raceguard/internal/podlist"
	"github.com/raceguard/raceguard/internal/resolvconf"
	"github.com/raceguard/raceguard/internal/searchpath"
	"github.com/raceguard/raceguard/internal/sibling"
	"github.com/raceguard/raceguard/plugin/collapse"
)

// pluginName is the directive's name, used for registration, errors, logs and metrics.
const pluginName = module.Name

// RaceGuard is the raceguard plugin. Its options are set by parse; its mechanisms are made by
// OnStartup and released by OnShutdown.
type RaceGuard struct {
	Next  plugin.Handler
	Zones []string

	// The parsed options.
	search              searchConfig
	siblingPrefetch     bool
	conntrack           correlate.Config
	fingerprintCapacity int // the most lookups the fingerprint table tracks at once

	// The mechanisms, made by OnStartup from the options and the server block's other plugins.
	walker       *searchpath.Walker   // nil: no search completion
	node         *resolvconf.Watcher  // the node's search domains, for search infer and pods
	pods         *podlist.Source      // the pod watch, for search pods
	prefetch     *sibling.Prefetcher  // nil: sibling_prefetch off
	fingerprints *fingerprint.Tracker // late siblings and retransmissions
	families     *family.Tracker      // which address types each client asks
	traced       bool                 // the trace plugin is in the server block: see direct
}

// RaceGuard prefetches the sibling of every miss the block's collapse resolves.
var _ collapse.SiblingPrefetcher = (*RaceGuard)(nil)

// searchMode says where the search list for server-side completion comes from.
type searchMode int

const (
	searchInfer  searchMode = iota // namespace from the query name, node domains from resolv.conf or a list
	searchPods                     // each pod's exact list from the Kubernetes API; infer for other clients
	searchPlugin                   // per-client list from another plugin's AutoPath (e.g. @kubernetes)
	searchFixed                    // one list for every client, from a resolv.conf or the Corefile
	searchOff                      // no completion
)

// searchConfig is the parsed search, cluster_domain, node_search, parallel_walk, walk_deadline,
// walk_budget, max_walks and node_local options.
type searchConfig struct {
	mode searchMode

	// plugin is the AutoPather's directive name (searchPlugin).
	plugin string
	// kubeconfig is the kubeconfig the pod watch reads (searchPods); empty for in-cluster.
	kubeconfig string
	// file is the resolv.conf the node domains (searchInfer, searchPods) are read from, as the
	// kubelet reads it, and re-read when it changes; empty when they are listed in the Corefile.
	file string
	// domains is the fixed list (searchFixed; read once from a resolv.conf or listed) or the node's
	// own search domains listed in the Corefile (searchInfer).
	domains []string
	// clusterDomains are the Kubernetes cluster domains (searchInfer).
	clusterDomains []string
	// parallel tries the names of a walk beyond the first domain's own hierarchy at once.
	parallel bool
	// deadline is how much longer than its first try's own answer a client waits for a walk.
	deadline time.Duration
	// nodeLocal says this server sees every try of its clients (one server per node), so that a
	// one-label name of a client whose list is exactly known can be completed. Set by the
	// node_local option or, when the Corefile does not set it (nodeLocalSet), at startup when the
	// block has a NodeLocaler.
	nodeLocal, nodeLocalSet bool
	// budget bounds the walks each client starts; maxWalks the walks running at once.
	budget   searchpath.Budget
	maxWalks int
}

const (
	defaultResolvConf = "/etc/resolv.conf"
	// The default walk budget of a client: 50 walks a second, 500 at once. A walk is one lookup's
	// first try of a name its client did not complete in the last few seconds (a completion is
	// remembered for the shortest TTL its walk met); a client busier than that gets its further
	// first tries served as without raceguard. The lab's zoo client, which looks up 47 names
	// with 8 processes at once over and over, walks fewer than that.
	defaultWalkRate  = 50
	defaultWalkBurst = 500
	// maxFingerprints bounds the fingerprints option: at about 200 bytes a pair, 800 MiB.
	maxFingerprints = 1 << 22
)

// New returns a RaceGuard with every option at its default.
func New() *RaceGuard {
	return &RaceGuard{
		search: searchConfig{
			mode:           searchInfer,
			file:           defaultResolvConf,
			clusterDomains: []string{"cluster.local."},
			parallel:       true,
			deadline:       searchpath.DefaultDeadline,
			budget:         searchpath.Budget{Rate: defaultWalkRate, Burst: defaultWalkBurst},
			maxWalks:       searchpath.DefaultMaxWalks,
		},
		siblingPrefetch:     true,
		fingerprintCapacity: fingerprint.DefaultCapacity,
		conntrack: correlate.Config{
			Source:   conntrack.SourceNetlink,
			ProcPath: conntrack.DefaultProcPath,
			Interval: time.Second,
			Window:   10 * time.Minute,
		},
	}
}

// NodeLocaler is implemented by a plugin that makes its server block a node-local server
// (nodelocal). raceguard finds it over the block's handlers at startup, as cache finds its
// ZoneBypassers, and turns node_local on unless the Corefile sets it.
type NodeLocaler interface {
	NodeLocal() bool
}

// partners is what raceguard needs of the other plugins of its server block, found when the
// server starts (setup.go: partnersOf), as autopath finds its AutoPather and cache its
// ZoneBypassers.
type partners struct {
	autoPath  func(request.Request) []string // the @PLUGIN's AutoPath, for search @PLUGIN
	nodeLocal bool                           // nodelocal makes the block node-local
	traced    bool                           // the trace plugin is in the block
	// metricsZones are the zones the block's prometheus plugin labels requests with, for the
	// count of raceguard's own queries; nil without it.
	metricsZones func() []string
}

// OnStartup makes and starts the mechanisms the options ask for, with what the server block's
// other plugins bring (p). The chain below is rg.Next by then.
func (rg *RaceGuard) OnStartup(p partners) error {
	rg.traced = p.traced
	rg.families = family.New(family.DefaultCapacity, coarse.Nanos)
	rg.fingerprints = fingerprint.New(rg.fingerprintCapacity) // holds the coarse clock until Close
	if rg.conntrack.Source != conntrack.SourceOff {
		rg.fingerprints.Sink = correlate.Events
		correlate.Acquire(rg.conntrack)
	}
	d := &dispatch.Dispatcher{Next: rg.Next, Zones: p.metricsZones}
	if rg.siblingPrefetch {
		rg.prefetch = sibling.New(d, sibling.DefaultInflight)
		rg.prefetch.Families = rg.families
		rg.prefetch.Start()
	}
	if p.nodeLocal && !rg.search.nodeLocalSet {
		rg.search.nodeLocal = true
	}
	source, err := rg.source(p)
	if source == nil || err != nil {
		return err
	}
	rg.walker = searchpath.New(source, d, rg.search.maxWalks, searchpath.DefaultPairs, searchpath.DefaultClients)
	rg.walker.Parallel = rg.search.parallel
	rg.walker.Deadline = rg.search.deadline
	rg.walker.Budget = rg.search.budget
	rg.walker.Families = rg.families
	return nil
}

// source returns the search completion's Source, and starts what it reads: the node's search
// domains' watcher for search infer and pods, and the pod watch; nil for search off.
func (rg *RaceGuard) source(p partners) (searchpath.Source, error) {
	switch rg.search.mode {
	case searchInfer:
		return rg.infer(), nil
	case searchPods:
		return rg.podSource()
	case searchFixed:
		return searchpath.Fixed(rg.search.domains), nil
	case searchPlugin:
		return searchpath.Func(p.autoPath), nil
	}
	return nil, nil
}

// infer returns the namespace's own hierarchy as a Source, and starts the node domains' watcher.
func (rg *RaceGuard) infer() *searchpath.Infer {
	if rg.search.file != "" {
		rg.node = resolvconf.NewFile(rg.search.file)
	} else {
		rg.node = resolvconf.New(rg.search.domains)
	}
	rg.node.Start()
	return &searchpath.Infer{ClusterDomains: rg.search.clusterDomains, Node: rg.node}
}

// podSource returns each pod's exact list from the Kubernetes API, and the namespace's own
// hierarchy for the clients it does not know, and starts the pod watch: of this node's pods on a
// node-local server (the node option, else NODE_NAME), of every pod in cluster mode. The node's
// resolv.conf is the one node_search names; a cluster Deployment assumes every node has the
// search domains its own has.
func (rg *RaceGuard) podSource() (searchpath.Source, error) {
	in := rg.infer()
	cfg := podlist.Config{Kubeconfig: rg.search.kubeconfig, ClusterDomain: strings.TrimSuffix(rg.search.clusterDomains[0], "."), Host: rg.node}
	if rg.search.nodeLocal {
		cfg.Node = correlate.NodeName(rg.conntrack.Node)
	} else {
		var domains []string
		for _, d := range rg.node.Domains() {
			if !searchpath.IsUnder(d, rg.search.clusterDomains) {
				domains = append(domains, d)
			}
		}
		cfg.Host = resolvconf.New(domains)
	}
	src, err := podlist.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("search pods: %w", err)
	}
	rg.pods = src
	src.Start()
	return &searchpath.Pods{Lists: podLists{src}, Else: in, EveryTry: rg.search.nodeLocal}, nil
}

// podLists adapts a podlist.Source to searchpath.Lists: an address answers a list only when
// exactly one pod holds it and its list is told (podlist.Known).
type podLists struct{ src *podlist.Source }

// Lookup implements searchpath.Lists.
func (l podLists) Lookup(a netip.Addr) ([]string, int, bool) {
	list, state := l.src.Lookup(a)
	if state != podlist.Known {
		return nil, 0, false
	}
	return list.Search, list.NDots, true
}

// OnShutdown stops what OnStartup started and releases the tables.
func (rg *RaceGuard) OnShutdown() error {
	if rg.pods != nil {
		rg.pods.Stop()
	}
	if rg.node != nil {
		rg.node.Stop()
	}
	if rg.walker != nil {
		rg.walker.Close()
	}
	if rg.prefetch != nil {
		rg.prefetch.Stop()
		rg.prefetch.Close()
	}
	if rg.conntrack.Source != conntrack.SourceOff {
		correlate.Release()
	}
	rg.families.Close()
	rg.fingerprints.Close()
	return nil
}

// PrefetchSibling implements collapse.SiblingPrefetcher: collapse calls it for every miss it
// resolves.
func (rg *RaceGuard) PrefetchSibling(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) {
	if rg.prefetch != nil {
		rg.prefetch.PrefetchSibling(ctx, w, r)
	}
}
