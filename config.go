package raceguard

import (
	"time"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/fingerprint"
	"github.com/raceguard/raceguard/internal/searchpath"
)

// searchMode says where the search list for server-side completion comes from.
type searchMode int

const (
	searchInfer  searchMode = iota // namespace from the query name, node domains from resolv.conf or a list
	searchPlugin                   // per-client list from another plugin's AutoPath (e.g. @kubernetes)
	searchFixed                    // one list for every client, from a resolv.conf or the Corefile
	searchOff                      // no completion
)

// searchConfig is the parsed search, cluster_domain, node_search, parallel_walk, walk_deadline and
// node_local options, from which build makes the searchpath.Source and Walker.
type searchConfig struct {
	mode searchMode

	// plugin is the AutoPather's directive name (searchPlugin).
	plugin string
	// file is the resolv.conf the node domains (searchInfer) are read from, and re-read when it
	// changes; empty when they are listed in the Corefile.
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
	// nodeLocal says this server sees every try of its clients: it learns their search lists. Set
	// by the node_local option or, when the Corefile does not set it (nodeLocalSet), at startup
	// when the block has a NodeLocaler.
	nodeLocal, nodeLocalSet bool
	// budget bounds the walks each client starts; maxWalks the walks running at once.
	budget   searchpath.Budget
	maxWalks int
}

// NodeLocaler is implemented by a plugin that makes its server block a node-local server
// (nodelocal). raceguard finds it over the block's handlers at startup, as cache finds its
// ZoneBypassers, and turns node_local on unless the Corefile sets it.
type NodeLocaler interface {
	NodeLocal() bool
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
