package raceguard

import (
	"time"

	"github.com/raceguard/raceguard/internal/conntrack"
	"github.com/raceguard/raceguard/internal/correlate"
	"github.com/raceguard/raceguard/internal/fingerprint"
)

// searchMode says where the search list for server-side completion comes from.
type searchMode int

const (
	searchInfer  searchMode = iota // namespace from the query name, node domains from resolv.conf or a list
	searchPlugin                   // per-client list from another plugin's AutoPath (e.g. @kubernetes)
	searchFixed                    // one list for every client, from a resolv.conf or the Corefile
	searchOff                      // no completion
)

// searchConfig is the parsed search, cluster_domain, node_search and parallel_walk options, from
// which build makes the searchpath.Source and Walker.
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
}

const (
	defaultResolvConf = "/etc/resolv.conf"
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
