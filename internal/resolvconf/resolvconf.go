// Package resolvconf reads the search domains of a resolv.conf, as a glibc or musl client of it
// would try them, and watches the file: the node's own search domains, which follow the cluster
// domains in a pod's search list, are whatever the node's resolv.conf says now (a DHCP client or
// an operator may rewrite it). A Watcher holds a list that is either listed once or read from a
// file and read again within its interval of a change (modification time, size or inode, so a
// file replaced by a rename counts); readers never block on it.
package resolvconf

import (
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"

	"github.com/miekg/dns"
	"github.com/raceguard/raceguard/internal/module"
)

var log = clog.NewWithPlugin(module.Name)

// DefaultInterval is how often a Watcher of a file looks at it.
const DefaultInterval = 2 * time.Second

// Watcher holds a list of search domains: listed once, or read from a resolv.conf and read again
// when it changes.
type Watcher struct {
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

// New returns a Watcher of a fixed list of domains.
func New(domains []string) *Watcher {
	n := &Watcher{}
	n.set(domains)
	return n
}

// NewFile returns a Watcher that reads path now and, once started, again whenever the file
// changes. A file that cannot be read yields no domains and one logged line.
func NewFile(path string) *Watcher {
	n := &Watcher{path: path, interval: DefaultInterval}
	n.reload()
	return n
}

// Domains returns the search domains, fully qualified and lower-cased. The slice is never
// modified: a change replaces it.
func (n *Watcher) Domains() []string {
	if p := n.Current(); p != nil {
		return *p
	}
	return nil
}

// Current returns the list as a pointer that changes with it, so that a reader can keep what it
// derived from one list until the pointer moves; nil before a list was set.
func (n *Watcher) Current() *[]string { return n.domains.Load() }

func (n *Watcher) set(domains []string) {
	d := slices.Clone(domains)
	n.domains.Store(&d)
}

// reload re-reads the file if it changed since the last read.
func (n *Watcher) reload() {
	n.mu.Lock()
	defer n.mu.Unlock()
	st := stamp(n.path)
	if st == n.seen {
		return
	}
	n.seen = st
	if !st.ok {
		log.Warningf("Cannot read %s: going on without its search domains", n.path)
		n.set(nil)
		return
	}
	domains, err := ReadSearch(n.path)
	if err != nil {
		log.Warningf("%v; going on without its search domains", err)
		n.set(nil)
		return
	}
	n.set(domains)
}

// ReadSearch returns the search domains of the resolv.conf at path, as a client of it would try
// them: fully qualified, lower-cased, in the file's order, each once. The root and names that are
// not host names (see Host) are left out: no resolver completes a name with them.
func ReadSearch(path string) ([]string, error) {
	cc, err := dns.ClientConfigFromFile(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, err)
	}
	var domains []string
	for _, d := range cc.Search {
		if fq, ok := Host(d); ok && fq != "." && !slices.Contains(domains, fq) {
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
func (n *Watcher) Start() {
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
func (n *Watcher) Stop() {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.stop != nil {
		close(n.stop)
		n.stop = nil
	}
}
