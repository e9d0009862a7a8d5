package raceguard

import (
	"time"

	"github.com/raceguard/raceguard/plugin/fingerprint"
)

// searchMode says where the search list for server-side completion comes from.
type searchMode int

const (
	searchInfer  searchMode = iota // namespace from the query name, node domains from resolv.conf or a list
	searchPlugin                   // per-client list from another plugin's AutoPath (e.g. @kubernetes)
	searchFixed                    // one list for every client, from a resolv.conf or the Corefile
	searchOff                      // no completion
)

// searchConfig is the parsed search, cluster_domain and node_search options.
type searchConfig struct {
	mode searchMode

	// plugin is the AutoPather's directive name (searchPlugin).
	plugin string
	// file is the resolv.conf the fixed list (searchFixed) or the node domains (searchInfer) come
	// from; empty when they are listed in the Corefile.
	file string
	// domains is the fixed list (searchFixed) or the node's own search domains (searchInfer),
	// when listed in the Corefile.
	domains []string
	// clusterDomains are the Kubernetes cluster domains (searchInfer).
	clusterDomains []string
	// parallel tries the names of a walk beyond the first domain's own hierarchy at once.
	parallel bool
}

// conntrackConfig is the parsed conntrack, interval, window and node options.
type conntrackConfig struct {
	source   string // "netlink" (falls back to procfs), "procfs" or "off"
	procPath string // the procfs file, for source "procfs"
	interval time.Duration
	window   time.Duration
	node     string // empty: NODE_NAME from the environment, else the host name
}

const (
	defaultResolvConf = "/etc/resolv.conf"
	defaultProcStat   = "/proc/net/stat/nf_conntrack"
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
		siblingPrefetch: true,
		fingerprints:    fingerprint.DefaultCapacity,
		conntrack: conntrackConfig{
			source:   "netlink",
			procPath: defaultProcStat,
			interval: time.Second,
			window:   10 * time.Minute,
		},
	}
}
