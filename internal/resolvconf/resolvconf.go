// Package resolvconf reads the search domains of a resolv.conf, as a glibc or musl client of it
// would try them, and watches the file: the node's own search domains, which follow the cluster
// domains in a pod's search list, are whatever the node's resolv.conf says now (a DHCP client or
// an operator may rewrite it). A Watcher holds a list that is either listed once or read from a
// file and read again within its interval of a change (modification time, size or inode, so a
// file replaced by a rename counts); readers never block on it.
//
// A Watcher also keeps the file as the kubelet reads it (Parse), as a Version for each content it
// has seen, with the window in which that content replaced the one before: the kubelet writes a
// pod's resolv.conf from the node's when it makes the pod's sandbox, so a pod made in that window
// may have either.
package resolvconf

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"reflect"
	"slices"
	"strings"
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
	version atomic.Pointer[Version]

	path     string           // resolv.conf to watch; empty for a listed set
	interval time.Duration    // how often the file is checked
	now      func() time.Time // the clock of Version's times

	mu   sync.Mutex
	stop chan struct{} // protected by mu; non-nil while the watcher runs
	done chan struct{} // closed when the watcher ended; protected by mu
	seen fileStamp     // protected by mu
	last time.Time     // the last check that found the current Version's content; protected by mu
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
	c := &Conf{Searches: make([]string, 0, len(domains))}
	for _, d := range domains {
		c.Searches = append(c.Searches, strings.TrimSuffix(d, "."))
	}
	n.version.Store(&Version{Conf: c})
	return n
}

// NewFile returns a Watcher that reads path now and, once started, again whenever the file
// changes. A file that cannot be read yields no domains and one logged line.
func NewFile(path string) *Watcher {
	n := &Watcher{path: path, interval: DefaultInterval, now: time.Now}
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

// Check reads the file now if it changed since the last read; a started Watcher does at every
// interval.
func (n *Watcher) Check() {
	if n.path != "" {
		n.reload()
	}
}

// reload re-reads the file if it changed since the last read.
func (n *Watcher) reload() {
	n.mu.Lock()
	defer n.mu.Unlock()
	now := n.now()
	st := stamp(n.path)
	if st == n.seen && n.version.Load() != nil {
		n.last = now
		return
	}
	n.seen = st
	raw, err := os.ReadFile(n.path)
	n.setVersion(raw, err, now)
	if err != nil {
		log.Warningf("Cannot read %s: going on without its search domains", n.path)
		n.set(nil)
		return
	}
	// The node's domains are what the kubelet appends to a pod's list: the file as the kubelet
	// reads it (its last search line; no domain line), not as a resolver would.
	v := n.version.Load()
	if v.Err != nil {
		log.Warningf("%v; going on without its search domains", v.Err)
		n.set(nil)
		return
	}
	var domains []string
	for _, d := range v.Conf.Searches {
		if fq, ok := Host(d); ok && fq != "." && !slices.Contains(domains, fq) {
			domains = append(domains, fq)
		}
	}
	n.set(domains)
}

// setVersion publishes what the kubelet reads of raw (or of a file it cannot read) as a new
// Version, unless the current one has the same. n.mu is held.
func (n *Watcher) setVersion(raw []byte, err error, now time.Time) {
	v := &Version{replaced: make(chan struct{})}
	if err == nil {
		v.Conf, err = Parse(bytes.NewReader(raw))
	}
	if err != nil {
		v.Err = fmt.Errorf("cannot read %s as the kubelet does: %w", n.path, err)
	}
	old := n.version.Load()
	if old != nil && reflect.DeepEqual(old.Conf, v.Conf) && fmt.Sprint(old.Err) == fmt.Sprint(v.Err) {
		n.last = now
		return
	}
	if old != nil {
		v.Since, v.Before = now, n.last
	}
	n.last = now
	n.version.Store(v)
	if old != nil {
		close(old.replaced)
	}
}

// Version returns the configuration as the kubelet reads it now.
func (n *Watcher) Version() *Version { return n.version.Load() }

// ReadSearch returns the search domains of the resolv.conf at path, as a client of it would try
// them: fully qualified, lower-cased, in the file's order, each once. The root and names that are
// not host names (see Host) are left out: no resolver completes a name with them.
func ReadSearch(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, err)
	}
	defer f.Close()
	domains, err := readSearch(f)
	if err != nil {
		return nil, fmt.Errorf("cannot read %q: %w", path, err)
	}
	return domains, nil
}

func readSearch(r io.Reader) ([]string, error) {
	cc, err := dns.ClientConfigFromReader(r)
	if err != nil {
		return nil, err
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
	stop, done := make(chan struct{}), make(chan struct{})
	n.stop, n.done = stop, done
	go func() {
		defer close(done)
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

// Stop ends the watcher started by Start, and waits for it (outside mu, which its reload takes).
func (n *Watcher) Stop() {
	n.mu.Lock()
	stop, done := n.stop, n.done
	n.stop, n.done = nil, nil
	n.mu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
}
