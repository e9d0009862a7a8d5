package searchpath

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/dnsname"
	"github.com/raceguard/raceguard/internal/module"
)

var log = clog.NewWithPlugin(module.Name)

// NodeSearch holds the node's own search domains, which follow the cluster domains in a pod's
// search list: listed in the Corefile, or read from a resolv.conf and re-read when it changes.
type NodeSearch struct {
	domains atomic.Pointer[[]string]

	path     string        // resolv.conf to watch; empty for a listed set
	interval time.Duration // how often the file is checked

	mu   sync.Mutex
	stop chan struct{} // protected by mu; non-nil while the watcher runs
	seen fileStamp     // protected by mu
}

type fileStamp struct {
	mtime time.Time
	size  int64
	ino   uint64
	ok    bool
}

// NewNodeSearch returns a NodeSearch with a fixed list of domains.
func NewNodeSearch(domains []string) *NodeSearch {
	n := &NodeSearch{}
	n.set(domains)
	return n
}

// NewNodeSearchFile returns a NodeSearch that reads path now and, once started, again whenever
// the file changes. A file that cannot be read yields no domains and one logged line.
func NewNodeSearchFile(path string) *NodeSearch {
	n := &NodeSearch{path: path, interval: 2 * time.Second}
	n.reload()
	return n
}

// Domains returns the node's search domains, fully qualified and lower-cased.
func (n *NodeSearch) Domains() []string {
	if p := n.domains.Load(); p != nil {
		return *p
	}
	return nil
}

func (n *NodeSearch) set(domains []string) {
	d := slices.Clone(domains)
	n.domains.Store(&d)
}

// reload re-reads the file if it changed since the last read.
func (n *NodeSearch) reload() {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := stamp(n.path)
	if st == n.seen {
		return
	}
	n.seen = st
	if !st.ok {
		log.Warningf("Cannot read %s: search completion continues without node search domains", n.path)
		n.set(nil)
		return
	}
	domains, err := ReadSearch(n.path)
	if err != nil {
		log.Warningf("%v; search completion continues without node search domains", err)
		n.set(nil)
		return
	}
	n.set(domains)
}

// ReadSearch returns the search domains of the resolv.conf at path, as a client of it would try
// them: fully qualified, lower-cased, in the file's order, each once. The root and names that are
// not host names (see dnsname.Host) are left out: no resolver completes a name with them.
func ReadSearch(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, err)
	}
	var domains []string
	for _, d := range cc.Search {
		if fq, ok := dnsname.Host(d); ok && fq != "." && !slices.Contains(domains, fq) {
			domains = append(domains, fq)
		}
	}
	return domains, nil
}

func stamp(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{mtime: fi.ModTime(), size: fi.Size(), ino: inode(fi), ok: true}
}

// Start watches the file, if any, until Stop.
func (n *NodeSearch) Start() {
	if n.path == "" {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stop != nil {
		return
	}
	stop := make(chan struct{})
	n.stop = stop
	go func() {
		t := time.NewTicker(n.interval)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n.reload()
			}
		}
	}()
}

// Stop ends the watcher started by Start.
func (n *NodeSearch) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stop != nil {
		close(n.stop)
		n.stop = nil
	}
}
