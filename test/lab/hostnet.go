package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// hostRuleset counts the UDP queries the node's own processes send to a DNS server on the node
// (NodeIP) or to the ClusterIP: those of hostNetwork pods, which take the output path.
const hostRuleset = `
add table inet labhost
add counter inet labhost queries
add chain inet labhost out { type filter hook output priority -300; policy accept; }
flush chain inet labhost out
add rule inet labhost out ip daddr { ` + NodeIP + `, ` + ClusterIP + ` } udp dport 53 counter name "queries"
`

// LookupHostNetwork is Lookup by a hostNetwork pod: a client in the node's own namespace, whose
// queries leave from the node's address, as every hostNetwork pod's of the node and the node's
// own do. rc is written as the node namespace's resolv.conf for the time of the lookups (the
// lab's Corefiles name their upstreams and search domains, so no CoreDNS reads it). It returns
// the results and the UDP queries the clients sent to NodeIP or the ClusterIP. Without output
// DNAT in the lab, only a server on the node itself (StartNodeDNS) is reachable this way: rc
// names NodeIP, as a kubelet whose cluster DNS is the node-local server's address writes it.
func (l *Lab) LookupHostNetwork(libc Libc, family Family, rc ResolvConf, workers int, names ...string) ([]Result, int, error) {
	if _, err := runInput(hostRuleset, "ip", "netns", "exec", l.Node, "nft", "-f", "-"); err != nil {
		return nil, 0, err
	}
	before, err := l.hostQueries()
	if err != nil {
		return nil, 0, err
	}
	host := &Lab{Client: l.Node} // Lookup runs its clients in, and writes the files of, Client
	defer os.RemoveAll(filepath.Join("/etc/netns", l.Node))
	rs, err := host.Lookup(libc, family, rc, workers, names...)
	if err != nil {
		return nil, 0, err
	}
	after, err := l.hostQueries()
	return rs, after - before, err
}

// hostQueries reads the counter of hostRuleset.
func (l *Lab) hostQueries() (int, error) {
	out, err := nsExec(l.Node, "nft", "-j", "list", "counter", "inet", "labhost", "queries")
	if err != nil {
		return 0, err
	}
	var doc struct {
		Nftables []struct {
			Counter *struct {
				Packets int `json:"packets"`
			} `json:"counter"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		return 0, fmt.Errorf("nft counter: %w", err)
	}
	for _, o := range doc.Nftables {
		if o.Counter != nil {
			return o.Counter.Packets, nil
		}
	}
	return 0, fmt.Errorf("nft counter inet labhost queries: not found")
}
