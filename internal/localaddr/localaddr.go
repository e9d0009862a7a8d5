// Package localaddr tells whether an address is one of this machine's own.
//
// A node-local raceguard runs in the node's network namespace. A query whose source is one of the
// node's own addresses comes from the node itself: a hostNetwork pod, or a process of the node,
// any number of which share that address. Such an address is no single client whose search list
// can be learned (package searchpath). Loopback addresses are not counted: the node's pods reach
// raceguard at its link-local or service address, from which the kernel answers, and processes
// that send from loopback (tests, a local resolver) are one client each.
//
// The set is read from the kernel (net.InterfaceAddrs) and read again when it is older than
// Refresh, by the first caller to find it so; the others use the old set meanwhile.
package localaddr

import (
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/coredns/plugin/pkg/log"
)

// Refresh is how long a read of the machine's addresses is used.
const Refresh = 10 * time.Second

// Set is the machine's own addresses.
type Set struct {
	addrs   atomic.Pointer[map[netip.Addr]struct{}]
	read    atomic.Int64 // unix nanoseconds of the last read
	reading sync.Mutex   // held by the caller that reads them again
	now     func() time.Time
	list    func() ([]net.Addr, error)
}

// New returns a Set of this machine's addresses.
func New() *Set { return &Set{now: time.Now, list: net.InterfaceAddrs} }

// Has reports whether a is one of the machine's own addresses, loopback ones aside.
func (s *Set) Has(a netip.Addr) bool {
	a = a.Unmap()
	if a.IsLoopback() || !a.IsValid() {
		return false
	}
	if now := s.now().UnixNano(); now-s.read.Load() > int64(Refresh) && s.reading.TryLock() {
		s.load(now)
		s.reading.Unlock()
	}
	m := s.addrs.Load()
	if m == nil {
		return false
	}
	_, ok := (*m)[a]
	return ok
}

// load reads the machine's addresses. Called with s.reading held.
func (s *Set) load(now int64) {
	s.read.Store(now)
	list, err := s.list()
	if err != nil {
		log.Warningf("Cannot read this machine's addresses: %v; the last ones read stand", err)
		return
	}
	m := make(map[netip.Addr]struct{}, len(list))
	for _, a := range list {
		if p, err := netip.ParsePrefix(a.String()); err == nil {
			m[p.Addr().Unmap()] = struct{}{}
		}
	}
	s.addrs.Store(&m)
}
